//! The devices page: every client of a mailbox seen in the last [`DAYS`] days, grouped
//! by credential and service (`postfach_store::devices`). The mailbox user sees their
//! own, a customer those of all its mailboxes.

use postfach_store::devices::Device;
use postfach_types::{MailboxId, UnixTime};

use crate::{Admin, AdminError, Who};

/// How far back the devices page looks.
pub const DAYS: i64 = 90;

/// The most groups it lists.
pub const MAX_DEVICES: i64 = 200;

impl Admin {
    /// A visible mailbox's devices of the last [`DAYS`] days, most recently seen first.
    pub async fn devices(&self, who: &Who, mailbox: MailboxId) -> Result<Vec<Device>, AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        let since = UnixTime(UnixTime::now().0 - DAYS * 86_400);
        Ok(self.store.devices(who.scope(), mailbox.id, since, MAX_DEVICES).await?)
    }
}
