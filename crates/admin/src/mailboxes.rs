//! Mailboxes, their settings and passwords, and aliases.

use postfach_auth::Connection;
use postfach_auth::accounts::{self, OwnPasswordChange};
use postfach_store::dns_checks::DomainReport;
use postfach_store::domains::Domain;
use postfach_store::mailboxes::{Alias, Mailbox, MailboxSettings, SettingsChange};
use postfach_types::{AliasId, DomainName, EmailAddress, MailboxId, Secret, SessionId};

use crate::{Admin, AdminError, Who, manager};

/// A new password for a mailbox. Mailbox users change their own and must give the
/// current one; customers and admins set it for a mailbox they manage.
#[derive(Debug)]
pub struct MailboxPassword {
    pub new: Secret<String>,
    pub current: Option<Secret<String>>,
    /// The panel session that asks (it stays signed in).
    pub session: Option<SessionId>,
    /// Where the request comes from, for the gate's throttle and log.
    pub connection: Connection,
}

impl Admin {
    /// The mailboxes in the caller's scope, optionally of one domain.
    pub async fn mailboxes(&self, who: &Who, domain: Option<&DomainName>) -> Result<Vec<Mailbox>, AdminError> {
        Ok(self.store.mailboxes(manager(who)?, domain).await?)
    }

    /// A mailbox by id if the caller may see it: managers within their scope, a mailbox
    /// user only their own.
    pub async fn mailbox(&self, who: &Who, id: MailboxId) -> Result<Mailbox, AdminError> {
        if let Who::Mailbox { mailbox } = who
            && mailbox.id != id
        {
            return Err(AdminError::NotFound(format!("there is no mailbox with id {id}")));
        }
        Ok(self.store.mailbox_by_id(who.scope(), id).await?)
    }

    pub async fn mailbox_named(&self, who: &Who, address: &EmailAddress) -> Result<Mailbox, AdminError> {
        let mailbox = self.store.mailbox(who.scope(), address).await?;
        self.mailbox(who, mailbox.id).await
    }

    /// The domain a visible mailbox lives in (also for its mailbox user).
    pub async fn mailbox_domain(&self, who: &Who, mailbox: &Mailbox) -> Result<Domain, AdminError> {
        let mailbox = self.mailbox(who, mailbox.id).await?;
        Ok(self.store.domain(who.scope(), mailbox.address.domain()).await?)
    }

    /// The last DNS check of a visible mailbox's domain.
    pub async fn mailbox_dns_report(&self, who: &Who, mailbox: &Mailbox) -> Result<Option<DomainReport>, AdminError> {
        let mailbox = self.mailbox(who, mailbox.id).await?;
        Ok(self.store.dns_report(who.scope(), mailbox.address.domain()).await?)
    }

    /// Creates a mailbox; the password must pass the rule (with the address and the
    /// customer as guessable words).
    pub async fn create_mailbox(
        &self,
        who: &Who,
        address: &EmailAddress,
        password: &Secret<String>,
        settings: MailboxSettings,
    ) -> Result<Mailbox, AdminError> {
        let scope = manager(who)?;
        accounts::create_mailbox(&self.store, self.auth.hasher(), scope, address, password, settings)
            .await
            .map_err(|e| AdminError::account(e, password))
    }

    /// Changes access mode, TLS-only and submission switches.
    pub async fn update_mailbox(
        &self,
        who: &Who,
        id: MailboxId,
        change: SettingsChange,
    ) -> Result<Mailbox, AdminError> {
        manager(who)?;
        let mailbox = self.mailbox(who, id).await?;
        Ok(self.store.set_mailbox_settings(who.scope(), &mailbox.address, change).await?)
    }

    /// Sets a mailbox's password. A mailbox user changes their own (current password
    /// required, checked by the authentication gate; their other sessions end). A
    /// manager sets it without the current one; the mailbox's panel sessions end.
    pub async fn set_mailbox_password(
        &self,
        who: &Who,
        id: MailboxId,
        change: MailboxPassword,
    ) -> Result<(), AdminError> {
        let mailbox = self.mailbox(who, id).await?;
        match who {
            Who::Mailbox { .. } => {
                let current = change.current.as_ref().ok_or(AdminError::CurrentPasswordMissing)?;
                let own = who.principal().ok_or(AdminError::Forbidden)?;
                let own_change = OwnPasswordChange {
                    current,
                    new: &change.new,
                    keep_api_tokens: false,
                    session: change.session,
                    connection: &change.connection,
                };
                accounts::change_own_password(&self.auth, &self.store, &own, own_change)
                    .await
                    .map_err(|e| AdminError::account(e, &change.new))
            }
            _ => accounts::change_mailbox_password(
                &self.store,
                self.auth.hasher(),
                who.scope(),
                &mailbox.address,
                &change.new,
            )
            .await
            .map_err(|e| AdminError::account(e, &change.new)),
        }
    }

    /// Removes a mailbox and its aliases; returns the aliases removed.
    pub async fn remove_mailbox(&self, who: &Who, id: MailboxId) -> Result<Vec<EmailAddress>, AdminError> {
        manager(who)?;
        let mailbox = self.mailbox(who, id).await?;
        Ok(self.store.remove_mailbox(who.scope(), &mailbox.address).await?)
    }

    /// The aliases in the caller's scope, optionally of one domain.
    pub async fn aliases(&self, who: &Who, domain: Option<&DomainName>) -> Result<Vec<Alias>, AdminError> {
        Ok(self.store.aliases(manager(who)?, domain).await?)
    }

    /// The aliases that deliver into a visible mailbox.
    pub async fn aliases_of(&self, who: &Who, mailbox: &Mailbox) -> Result<Vec<Alias>, AdminError> {
        let mailbox = self.mailbox(who, mailbox.id).await?;
        Ok(self.store.aliases_of(who.scope(), &mailbox.address).await?)
    }

    pub async fn alias(&self, who: &Who, id: AliasId) -> Result<Alias, AdminError> {
        Ok(self.store.alias_by_id(manager(who)?, id).await?)
    }

    /// Adds `address` as an alias delivering into the mailbox `mailbox` (of the same
    /// customer).
    pub async fn add_alias(
        &self,
        who: &Who,
        address: &EmailAddress,
        mailbox: &EmailAddress,
    ) -> Result<Alias, AdminError> {
        Ok(self.store.add_alias(manager(who)?, address, mailbox).await?)
    }

    pub async fn remove_alias(&self, who: &Who, id: AliasId) -> Result<Alias, AdminError> {
        let alias = self.alias(who, id).await?;
        self.store.remove_alias(who.scope(), &alias.address).await?;
        Ok(alias)
    }

    pub async fn remove_alias_named(&self, who: &Who, address: &EmailAddress) -> Result<(), AdminError> {
        Ok(self.store.remove_alias(manager(who)?, address).await?)
    }
}
