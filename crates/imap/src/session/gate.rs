//! Which command may run in which state (RFC 9051 §3, §6.1–§6.4): the one table, so no
//! handler checks the state itself. A command in the wrong state gets BAD and changes
//! nothing.

use super::State;
use crate::protocol::CommandBody;

/// The states a command is valid in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowed {
    /// Any state (RFC 9051 §6.1).
    Any,
    /// Not authenticated (§6.2).
    BeforeLogin,
    /// Authenticated or selected (§6.3).
    LoggedIn,
    /// Selected (§6.4).
    Selected,
}

fn allowed_in(body: &CommandBody) -> Allowed {
    use CommandBody as C;
    match body {
        C::Capability | C::Noop | C::Logout | C::Id(_) => Allowed::Any,
        C::StartTls | C::Authenticate { .. } | C::Login { .. } => Allowed::BeforeLogin,
        C::Enable(_)
        | C::Select(_)
        | C::Examine(_)
        | C::Create { .. }
        | C::Delete(_)
        | C::Rename { .. }
        | C::Subscribe(_)
        | C::Unsubscribe(_)
        | C::List(_)
        | C::Lsub { .. }
        | C::Namespace
        | C::Status { .. }
        | C::Append(_)
        | C::Idle
        | C::GetQuota(_)
        | C::GetQuotaRoot(_)
        | C::SetQuota { .. } => Allowed::LoggedIn,
        C::Check
        | C::Close
        | C::Unselect
        | C::Expunge { .. }
        | C::Search(_)
        | C::Fetch(_)
        | C::Store(_)
        | C::Copy(_)
        | C::Move(_) => Allowed::Selected,
    }
}

/// Whether `body` may run in `state`; the error is the BAD text.
pub(crate) fn allowed(state: &State, body: &CommandBody) -> Result<(), &'static str> {
    match (allowed_in(body), state) {
        (Allowed::Any, _)
        | (Allowed::BeforeLogin, State::NotAuthenticated)
        | (Allowed::LoggedIn, State::Authenticated { .. } | State::Selected { .. })
        | (Allowed::Selected, State::Selected { .. }) => Ok(()),
        (Allowed::BeforeLogin, _) => Err("you are logged in already"),
        (Allowed::LoggedIn | Allowed::Selected, State::NotAuthenticated) => Err("please log in first"),
        (Allowed::Selected, _) => Err("please select a folder first"),
    }
}

#[cfg(test)]
mod tests {
    use postfach_types::EmailAddress;

    use super::*;
    use crate::protocol::parse_command;

    #[test]
    fn the_state_table() {
        let address = EmailAddress::parse("max@acme.example").expect("address");
        let authed = State::Authenticated { mailbox: postfach_types::MailboxId::new(1), address };
        let none = State::NotAuthenticated;
        let cases = [
            ("a NOOP", true, true),
            ("a LOGIN x y", true, false),
            ("a STARTTLS", true, false),
            ("a SELECT INBOX", false, true),
            ("a LIST \"\" *", false, true),
            ("a APPEND INBOX {1+}\r\nx", false, true),
            ("a FETCH 1 FLAGS", false, false),
            ("a UID EXPUNGE 1", false, false),
            ("a CLOSE", false, false),
        ];
        for (line, before, after) in cases {
            let body = parse_command(format!("{line}\r\n").as_bytes()).expect("parse").body;
            assert_eq!(allowed(&none, &body).is_ok(), before, "{line} before login");
            assert_eq!(allowed(&authed, &body).is_ok(), after, "{line} after login");
        }
    }
}
