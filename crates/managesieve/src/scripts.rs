//! The script commands as administrative operations of the logged-in mailbox user.
//! (Filled in over `admin::sieve` once the SIEVE part is merged.)

use postfach_admin::Who;
use postfach_types::MailboxId;

use crate::ManageSieveServer;
use crate::command::Command;

/// A command's successful outcome.
pub(crate) enum Done {
    Ok(&'static str),
    Warnings(String),
    List(Vec<(String, bool)>),
    Script(String),
}

/// A command's refusal: an RFC 5804 §1.3 response code where one fits, and words.
pub(crate) struct Refused {
    pub code: Option<&'static str>,
    pub text: String,
}

/// The extensions scripts may use, for the SIEVE capability.
pub(crate) fn extensions() -> String {
    String::new()
}

pub(crate) async fn run(
    _server: &ManageSieveServer,
    _who: &Who,
    _mailbox: MailboxId,
    _command: Command,
) -> Result<Done, Refused> {
    Err(Refused { code: None, text: "not yet".into() })
}
