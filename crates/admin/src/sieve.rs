//! TEMPORARY stand-in for the SIEVE engineer's script operations (branch wt-sieve), with
//! their signatures; removed at the merge.

use postfach_types::MailboxId;

use crate::{Admin, AdminError, Who};

#[derive(Debug)]
pub struct SieveScript {
    pub name: String,
    pub text: String,
}

fn missing() -> AdminError {
    AdminError::Unavailable(crate::Unavailable::Store(postfach_store::StoreError::NotFound("sieve".into())))
}

impl Admin {
    pub async fn active_script(&self, _who: &Who, _mailbox: MailboxId) -> Result<Option<SieveScript>, AdminError> {
        Err(missing())
    }
    pub async fn script(&self, _who: &Who, _mailbox: MailboxId, _name: &str) -> Result<SieveScript, AdminError> {
        Err(missing())
    }
    pub async fn put_script(&self, _who: &Who, _mailbox: MailboxId, _name: &str, _text: &str) -> Result<(), AdminError> {
        Err(missing())
    }
    pub async fn activate_script(&self, _who: &Who, _mailbox: MailboxId, _name: Option<&str>) -> Result<(), AdminError> {
        Err(missing())
    }
}
