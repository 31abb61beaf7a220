//! The script commands (RFC 5804 §2.3–§2.12) as administrative operations of the
//! logged-in mailbox user (`admin::sieve`): the admin crate decides names, limits and
//! the check of a script, as for the panel and the API; this module turns its answers
//! into ManageSieve's response codes.

use postfach_admin::{Admin, AdminError, Conflict, Who};
use postfach_types::MailboxId;

use crate::ManageSieveServer;
use crate::command::Command;

/// A command's successful outcome.
pub(crate) enum Done {
    Ok(&'static str),
    /// LISTSCRIPTS: names and whether each is the active one.
    List(Vec<(String, bool)>),
    /// GETSCRIPT: the script's text.
    Script(String),
}

/// A command's refusal: an RFC 5804 §1.3 response code where one fits, and words.
pub(crate) struct Refused {
    pub code: Option<&'static str>,
    pub text: String,
}

impl Refused {
    fn new(code: &'static str, text: impl Into<String>) -> Refused {
        Refused { code: Some(code), text: text.into() }
    }
}

/// The extensions scripts may use, for the SIEVE capability (RFC 5804 §1.7).
pub(crate) fn extensions() -> String {
    postfach_sieve::SUPPORTED.join(" ")
}

/// Runs a script command for `who` on `mailbox`. Commands of the non-authenticated
/// state never get here.
pub(crate) async fn run(
    server: &ManageSieveServer,
    who: &Who,
    mailbox: MailboxId,
    command: Command,
) -> Result<Done, Refused> {
    let admin = &server.admin;
    let done = match command {
        Command::HaveSpace { name, size } => have_space(admin, who, mailbox, &name, size).await?,
        Command::PutScript { name, script } => {
            admin.put_script(who, mailbox, &name, &script).await.map_err(refused)?;
            Done::Ok("Script stored.")
        }
        Command::ListScripts => {
            let scripts = admin.list_scripts(who, mailbox).await.map_err(refused)?;
            Done::List(scripts.into_iter().map(|s| (s.name, s.active)).collect())
        }
        // RFC 5804 §2.8: the empty name switches filtering off.
        Command::SetActive { name } => {
            let name = Some(name.as_str()).filter(|n| !n.is_empty());
            admin.activate_script(who, mailbox, name).await.map_err(refused)?;
            Done::Ok(if name.is_some() { "Script activated." } else { "Filtering is off." })
        }
        Command::GetScript { name } => Done::Script(admin.script(who, mailbox, &name).await.map_err(refused)?.text),
        Command::DeleteScript { name } => {
            admin.delete_script(who, mailbox, &name).await.map_err(refused)?;
            Done::Ok("Script deleted.")
        }
        Command::RenameScript { from, to } => {
            admin.rename_script(who, mailbox, &from, &to).await.map_err(refused)?;
            Done::Ok("Script renamed.")
        }
        Command::CheckScript { script } => {
            admin.check_script(&script).map_err(refused)?;
            Done::Ok("The script is fine.")
        }
        Command::Capability
        | Command::StartTls
        | Command::Authenticate { .. }
        | Command::Logout
        | Command::Noop { .. }
        | Command::Unauthenticate => Done::Ok("Done."),
    };
    Ok(done)
}

/// RFC 5804 §2.3: whether a script of `size` bytes could be stored under `name` now,
/// by the same limits `put_script` applies.
async fn have_space(admin: &Admin, who: &Who, mailbox: MailboxId, name: &str, size: u64) -> Result<Done, Refused> {
    postfach_admin::input::sieve_script_name(name).map_err(refused)?;
    let limits = admin.sieve_limits();
    if size > limits.max_script_bytes as u64 {
        let text = format!("A script may have at most {} bytes.", limits.max_script_bytes);
        return Err(Refused::new("QUOTA/MAXSIZE", text));
    }
    let scripts = admin.list_scripts(who, mailbox).await.map_err(refused)?;
    let replaces = scripts.iter().any(|s| s.name == name);
    if !replaces && scripts.len() >= limits.max_scripts as usize {
        let text = format!("This mailbox already has {} scripts; delete one you no longer use first.", scripts.len());
        return Err(Refused::new("QUOTA/MAXSCRIPTS", text));
    }
    Ok(Done::Ok("There is room for the script."))
}

/// The response code and words for a refused operation.
fn refused(error: AdminError) -> Refused {
    let code = match &error {
        AdminError::NotFound(_) => Some("NONEXISTENT"),
        AdminError::Conflict(Conflict::SieveScriptNameTaken { .. }) => Some("ALREADYEXISTS"),
        AdminError::Conflict(Conflict::SieveScriptActive { .. }) => Some("ACTIVE"),
        AdminError::Conflict(Conflict::TooManySieveScripts { .. }) => Some("QUOTA/MAXSCRIPTS"),
        AdminError::SieveScriptTooBig { .. } => Some("QUOTA/MAXSIZE"),
        AdminError::Unavailable(e) => {
            tracing::warn!(error = %e, "managesieve: a script operation failed");
            let text = "Your filters cannot be reached right now. Please try again later.";
            return Refused::new("TRYLATER", text);
        }
        _ => None,
    };
    Refused { code, text: sentence(&error.to_string()) }
}

/// The admin crate's lower-case text as a sentence.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_the_rfc_5804_codes() {
        let code = |e| refused(e).code;
        assert_eq!(code(AdminError::NotFound("x".into())), Some("NONEXISTENT"));
        assert_eq!(code(Conflict::SieveScriptNameTaken { name: "a".into() }.into()), Some("ALREADYEXISTS"));
        assert_eq!(code(Conflict::SieveScriptActive { name: "a".into() }.into()), Some("ACTIVE"));
        assert_eq!(code(Conflict::TooManySieveScripts { limit: 3 }.into()), Some("QUOTA/MAXSCRIPTS"));
        assert_eq!(code(AdminError::SieveScriptTooBig { size: 9, limit: 5 }), Some("QUOTA/MAXSIZE"));
        assert_eq!(code(AdminError::InvalidSieveScriptName), None);
    }

    #[test]
    fn texts_are_sentences() {
        assert_eq!(sentence("the filter script is 9 bytes long"), "The filter script is 9 bytes long.");
        assert_eq!(sentence("Done."), "Done.");
    }
}
