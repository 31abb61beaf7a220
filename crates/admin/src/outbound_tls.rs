//! "Always require TLS to other servers" (docs/dns.md, "Outbound TLS policy"): mail from
//! the mailbox, or from every mailbox of the customer, is never sent in plaintext; where
//! the receiving server cannot encrypt, the sender gets a notice. The mailbox user may
//! switch it for their own mailbox; the customer for its mailboxes and itself; the
//! operator and admins for all.

use postfach_types::{CustomerId, MailboxId};

use crate::spam::own_customer;
use crate::{Admin, AdminError, Who};

impl Admin {
    /// Switches the mailbox's own "always require TLS" (the customer's may be on as well).
    pub async fn set_mailbox_outbound_tls(&self, who: &Who, mailbox: MailboxId, on: bool) -> Result<(), AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        Ok(self.store.set_mailbox_outbound_tls(who.scope(), mailbox.id, on).await?)
    }

    /// Whether the customer's "always require TLS" is on.
    pub async fn customer_outbound_tls(&self, who: &Who, customer: CustomerId) -> Result<bool, AdminError> {
        own_customer(who, customer)?;
        Ok(self.store.customer_by_id(customer).await?.outbound_tls_required)
    }

    /// Switches the customer's "always require TLS", for all its mailboxes.
    pub async fn set_customer_outbound_tls(&self, who: &Who, customer: CustomerId, on: bool) -> Result<(), AdminError> {
        own_customer(who, customer)?;
        Ok(self.store.set_customer_outbound_tls(customer, on).await?)
    }
}
