//! The login list: every attempt on the caller's mailboxes and accounts, newest first.

use postfach_store::logins::LoginRecord;
use postfach_types::MailboxId;

use crate::input::LoginQuery;
use crate::{Admin, AdminError, Who, manager};

impl Admin {
    /// Attempts on every mailbox in the caller's scope (managers only).
    pub async fn logins(&self, who: &Who, query: LoginQuery) -> Result<Vec<LoginRecord>, AdminError> {
        Ok(self.store.logins(manager(who)?, query.filter(None)).await?)
    }

    /// Attempts on one visible mailbox (also for its own user).
    pub async fn mailbox_logins(
        &self,
        who: &Who,
        id: MailboxId,
        query: LoginQuery,
    ) -> Result<Vec<LoginRecord>, AdminError> {
        let mailbox = self.mailbox(who, id).await?;
        Ok(self.store.logins(who.scope(), query.filter(Some(mailbox.id))).await?)
    }
}
