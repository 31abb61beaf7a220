//! Quotas: the operator (or an admin) sets a customer's total; the customer sets its
//! mailboxes' limits within that total. A mailbox user sees its use and chooses the
//! language of the notices it gets, nothing more.

use postfach_store::customers::Customer;
use postfach_store::mailboxes::Mailbox;
use postfach_store::quota::MailboxQuota;
use postfach_types::{CustomerId, Language, MailboxId, Space};

use crate::{Admin, AdminError, Who, manager, platform};

impl Admin {
    /// Sets a mailbox's byte and message limits (`None`: no limit). Managers only; a
    /// byte limit above the customer's total is refused.
    pub async fn set_mailbox_quota(
        &self,
        who: &Who,
        id: MailboxId,
        quota: MailboxQuota,
    ) -> Result<Mailbox, AdminError> {
        manager(who)?;
        let mailbox = self.mailbox(who, id).await?;
        self.store.set_mailbox_quota(who.scope(), &mailbox.address, quota).await?;
        Ok(self.store.mailbox_by_id(who.scope(), id).await?)
    }

    /// Sets the language of the notices Postfach writes into a mailbox; its managers and
    /// its own user may.
    pub async fn set_mailbox_language(
        &self,
        who: &Who,
        id: MailboxId,
        language: Language,
    ) -> Result<Mailbox, AdminError> {
        let mailbox = self.mailbox(who, id).await?;
        self.store.set_mailbox_language(who.scope(), &mailbox.address, language).await?;
        Ok(self.store.mailbox_by_id(who.scope(), id).await?)
    }

    /// Sets a customer's total limit (`None`: no limit). The operator and admins only: a
    /// customer cannot raise its own.
    pub async fn set_customer_quota(
        &self,
        who: &Who,
        id: CustomerId,
        bytes: Option<u64>,
    ) -> Result<Customer, AdminError> {
        let customer = self.customer(who, id).await?;
        platform(who)?;
        self.store.set_customer_quota(&customer.name, bytes).await?;
        Ok(self.store.customer_by_id(id).await?)
    }

    /// A visible mailbox's use and limits (its customer's total included).
    pub async fn mailbox_space(&self, who: &Who, id: MailboxId) -> Result<Space, AdminError> {
        let mailbox = self.mailbox(who, id).await?;
        Ok(self.store.mailbox_space(mailbox.id).await?)
    }

    /// What a customer's mailboxes store together, with its limit: for the operator and
    /// admins about any customer, for a customer (or its mailbox users) about itself.
    pub async fn customer_space(&self, who: &Who, id: CustomerId) -> Result<(u64, Option<u64>), AdminError> {
        let own = match who {
            Who::Customer { id: own, .. } => Some(*own),
            Who::Mailbox { mailbox } => Some(mailbox.customer_id),
            Who::Operator | Who::Admin { .. } => None,
        };
        if own.is_some_and(|own| own != id) {
            return Err(AdminError::NotFound(format!("there is no customer with id {id}")));
        }
        let customer = self.store.customer_by_id(id).await?;
        Ok((self.store.customer_usage(id).await?, customer.quota_bytes))
    }
}
