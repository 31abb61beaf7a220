//! Sieve filter scripts of a mailbox: the mailbox user manages their own, a customer
//! those of all its mailboxes, admins and the operator every mailbox's (the same scope
//! as the other mailbox operations). Every script is checked by `postfach_sieve::check`
//! before it is stored; its count and size are bounded by `[sieve]`.

use postfach_store::sieve::{Put, SieveScript, SieveScriptInfo};
use postfach_types::MailboxId;

use crate::{Admin, AdminError, Who, input};

/// The limits of `[sieve]` for every mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SieveLimits {
    /// The most scripts one mailbox may have.
    pub max_scripts: u32,
    /// The longest script, in bytes.
    pub max_script_bytes: usize,
}

impl Default for SieveLimits {
    fn default() -> SieveLimits {
        SieveLimits { max_scripts: 8, max_script_bytes: 65_536 }
    }
}

impl Admin {
    /// The limits scripts are held to (ManageSieve tells them to clients).
    pub fn sieve_limits(&self) -> SieveLimits {
        self.sieve
    }

    /// A visible mailbox's scripts, by name, without their text.
    pub async fn list_scripts(&self, who: &Who, mailbox: MailboxId) -> Result<Vec<SieveScriptInfo>, AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        Ok(self.store.sieve_scripts(who.scope(), mailbox.id).await?)
    }

    /// One script with its text.
    pub async fn script(&self, who: &Who, mailbox: MailboxId, name: &str) -> Result<SieveScript, AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        Ok(self.store.sieve_script(who.scope(), mailbox.id, name).await?)
    }

    /// The active script, if any.
    pub async fn active_script(&self, who: &Who, mailbox: MailboxId) -> Result<Option<SieveScript>, AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        Ok(self.store.active_sieve_script(who.scope(), mailbox.id).await?)
    }

    /// Whether `text` would be accepted as a script (size and syntax), without storing it
    /// (ManageSieve `CHECKSCRIPT`, the panel's preview).
    pub fn check_script(&self, text: &str) -> Result<(), AdminError> {
        if text.len() > self.sieve.max_script_bytes {
            return Err(AdminError::SieveScriptTooBig { size: text.len(), limit: self.sieve.max_script_bytes });
        }
        postfach_sieve::check(text).map_err(AdminError::SieveScriptInvalid)
    }

    /// Stores a script under `name`: new (within `max_scripts`) or replacing the text of
    /// the script of that name (an active one stays active and filters with the new
    /// text). A script that does not compile is refused with its line and column.
    pub async fn put_script(&self, who: &Who, mailbox: MailboxId, name: &str, text: &str) -> Result<Put, AdminError> {
        let name = input::sieve_script_name(name)?;
        let mailbox = self.mailbox(who, mailbox).await?;
        self.check_script(text)?;
        Ok(self.store.put_sieve_script(who.scope(), mailbox.id, name, text, self.sieve.max_scripts).await?)
    }

    /// Renames a script.
    pub async fn rename_script(
        &self,
        who: &Who,
        mailbox: MailboxId,
        name: &str,
        new_name: &str,
    ) -> Result<(), AdminError> {
        let new_name = input::sieve_script_name(new_name)?;
        let mailbox = self.mailbox(who, mailbox).await?;
        Ok(self.store.rename_sieve_script(who.scope(), mailbox.id, name, new_name).await?)
    }

    /// Removes a script that is not active.
    pub async fn delete_script(&self, who: &Who, mailbox: MailboxId, name: &str) -> Result<(), AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        Ok(self.store.delete_sieve_script(who.scope(), mailbox.id, name).await?)
    }

    /// Makes `name` the script that filters the mailbox's mail; `None` switches filtering
    /// off. The script is checked again, so one stored by an older version that no
    /// longer compiles is not activated.
    pub async fn activate_script(&self, who: &Who, mailbox: MailboxId, name: Option<&str>) -> Result<(), AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        if let Some(name) = name {
            let script = self.store.sieve_script(who.scope(), mailbox.id, name).await?;
            postfach_sieve::check(&script.text).map_err(AdminError::SieveScriptInvalid)?;
        }
        Ok(self.store.activate_sieve_script(who.scope(), mailbox.id, name).await?)
    }
}
