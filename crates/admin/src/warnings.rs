//! Warning mails (`postfach_store::warnings`): which kinds a mailbox gets (its managers and
//! its own user switch them), and the customer's contact address that gets a copy of
//! each (the customer itself, the operator and admins set it).

use postfach_store::warnings::WarningKind;
use postfach_types::{CustomerId, EmailAddress, MailboxId};

use crate::{Admin, AdminError, Who, platform};

/// One kind's switch on a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarningSwitch {
    pub kind: WarningKind,
    pub on: bool,
}

impl Admin {
    /// Every kind a mailbox can switch, with its state (all on by default).
    pub async fn mailbox_warnings(&self, who: &Who, id: MailboxId) -> Result<Vec<WarningSwitch>, AdminError> {
        let mailbox = self.mailbox(who, id).await?;
        let off = self.store.mailbox_warnings_off(who.scope(), mailbox.id).await?;
        Ok(WarningKind::ALL
            .iter()
            .filter(|k| k.is_mailbox_kind())
            .map(|&kind| WarningSwitch { kind, on: !off.contains(&kind) })
            .collect())
    }

    /// Switches one kind of warning mail of a mailbox on or off.
    pub async fn set_mailbox_warning(
        &self,
        who: &Who,
        id: MailboxId,
        kind: WarningKind,
        on: bool,
    ) -> Result<Vec<WarningSwitch>, AdminError> {
        if !kind.is_mailbox_kind() {
            return Err(AdminError::InvalidWarningSwitch);
        }
        let mailbox = self.mailbox(who, id).await?;
        self.store.set_mailbox_warning(who.scope(), mailbox.id, kind, on).await?;
        self.mailbox_warnings(who, id).await
    }

    /// A customer's contact address for copies of warning mails.
    pub async fn customer_contact(&self, who: &Who, id: CustomerId) -> Result<Option<EmailAddress>, AdminError> {
        own_customer(who, id)?;
        Ok(self.store.customer_contact(id).await?)
    }

    /// Sets (`None`: removes) a customer's contact address.
    pub async fn set_customer_contact(
        &self,
        who: &Who,
        id: CustomerId,
        contact: Option<&EmailAddress>,
    ) -> Result<Option<EmailAddress>, AdminError> {
        own_customer(who, id)?;
        self.store.set_customer_contact(id, contact).await?;
        Ok(self.store.customer_contact(id).await?)
    }
}

/// The customer itself, the operator or an admin.
fn own_customer(who: &Who, id: CustomerId) -> Result<(), AdminError> {
    match who {
        Who::Customer { id: own, .. } if *own == id => Ok(()),
        _ => platform(who),
    }
}
