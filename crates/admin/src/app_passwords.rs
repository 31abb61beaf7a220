//! App passwords of a mailbox: the mailbox user manages their own, a customer those of
//! all its mailboxes, admins and the operator every mailbox's. The server makes the
//! password (`postfach_auth::generate`); it is returned once and only its hash is kept.

use postfach_store::app_passwords::{AppPassword, NewAppPassword};
use postfach_store::mailboxes::Mailbox;
use postfach_types::{AccessMode, MailboxId, Secret, Service};

use crate::{Admin, AdminError, Who};

/// A new app password, with the password itself (shown this once).
#[derive(Debug)]
pub struct CreatedAppPassword {
    pub app_password: AppPassword,
    pub password: Secret<String>,
}

/// Whether the mailbox's settings allow a device to use `service`: IMAP or POP3 by the
/// access mode, submission by the sending switch; ManageSieve (its filters) always.
pub fn mailbox_allows(mailbox: &Mailbox, service: Service) -> bool {
    let settings = &mailbox.settings;
    match service {
        Service::Imap => settings.access == AccessMode::Imap,
        Service::Pop3 => settings.access == AccessMode::Pop3,
        Service::Submission => settings.submission,
        Service::ManageSieve => true,
        Service::Panel | Service::Api => false,
    }
}

impl Admin {
    /// A visible mailbox's app passwords, by name.
    pub async fn app_passwords(&self, who: &Who, mailbox: MailboxId) -> Result<Vec<AppPassword>, AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        Ok(self.store.app_passwords(who.scope(), mailbox.id).await?)
    }

    /// Makes a new app password for `services` (parsed by `input::app_password_services`),
    /// each of which the mailbox's settings must allow.
    pub async fn add_app_password(
        &self,
        who: &Who,
        mailbox: MailboxId,
        name: &str,
        services: &[Service],
    ) -> Result<CreatedAppPassword, AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        if let Some(service) = services.iter().find(|s| !mailbox_allows(&mailbox, **s)) {
            return Err(AdminError::ServiceNotForMailbox(*service));
        }
        let (password, lookup) = postfach_auth::generate::app_password();
        let hash = self.auth.hasher().hash(&password).await?;
        let new = NewAppPassword { name, services, lookup: &lookup, hash: &hash };
        let app_password = self.store.add_app_password(who.scope(), mailbox.id, new).await?;
        Ok(CreatedAppPassword { app_password, password })
    }

    /// Revokes an app password by name, at once (also on connections using it).
    pub async fn remove_app_password(&self, who: &Who, mailbox: MailboxId, name: &str) -> Result<(), AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        Ok(self.store.remove_app_password(who.scope(), mailbox.id, name).await?)
    }

    /// Switches whether the mailbox's devices must use app passwords (the main password
    /// then works only for the panel). The mailbox user may switch it for their own.
    pub async fn set_app_passwords_only(&self, who: &Who, mailbox: MailboxId, on: bool) -> Result<Mailbox, AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        self.store.set_app_passwords_only(who.scope(), mailbox.id, on).await?;
        self.mailbox(who, mailbox.id).await
    }
}
