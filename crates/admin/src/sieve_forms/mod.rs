//! The panel's vacation and filter forms: both are kept in ONE Sieve script
//! ([`SCRIPT_NAME`]) that [`generate`] writes and [`read_back`] recognises, stored and
//! activated through the mailbox's script operations (`crate::sieve`), so the same
//! limits and checks apply as for ManageSieve.
//!
//! A script the forms did not write (by hand, over ManageSieve, or edited in the "edit as
//! Sieve" view) is never replaced silently: saving a form while such a script is active
//! is refused with [`AdminError::HandWrittenScript`] until the caller asks to replace it.
//! Replacing activates the forms' script and leaves the other script stored under its
//! name; if it carried the forms' own name, it is first kept as [`KEPT_NAME`].

pub mod generate;

use postfach_types::{EmailAddress, MailboxId};

use crate::{Admin, AdminError, Who};
pub use generate::{
    Action, Day, Field, FormError, Forms, Match, Rule, RuleInput, SCRIPT_NAME, Vacation, VacationInput, read_back,
    recorded_state,
};

/// Where a hand-written script that carried the forms' own name is kept when the forms
/// replace it.
pub const KEPT_NAME: &str = "postfach-by-hand";

/// Which script is active, as the forms see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveScript {
    /// No script is active: every message goes to the inbox (or Junk).
    Nothing,
    /// The forms' own script.
    Forms,
    /// Another script, or the forms' script changed by hand.
    HandWritten { name: String },
}

/// The forms of one mailbox.
#[derive(Debug, Clone)]
pub struct SieveForms {
    /// What the forms hold: from the forms' script if it is stored (active or not).
    pub forms: Forms,
    pub active: ActiveScript,
    /// The mailbox's own address and its aliases: the addresses a vacation may name.
    pub addresses: Vec<EmailAddress>,
}

impl Admin {
    /// The vacation and filter forms of a mailbox.
    pub async fn sieve_forms(&self, who: &Who, mailbox: MailboxId) -> Result<SieveForms, AdminError> {
        let addresses = self.own_addresses(who, mailbox).await?;
        let active = self.active_script_text(who, mailbox).await?;
        let (forms, active) = match active {
            None => (self.stored_forms(who, mailbox).await?, ActiveScript::Nothing),
            Some((name, text)) => match read_back(&text) {
                Some(forms) if name == SCRIPT_NAME => (forms, ActiveScript::Forms),
                _ => (self.stored_forms(who, mailbox).await?, ActiveScript::HandWritten { name }),
            },
        };
        Ok(SieveForms { forms, active, addresses })
    }

    /// Saves the vacation form. `replace`: the caller saw that a hand-written script is
    /// active and wants the forms' script instead.
    pub async fn set_vacation(
        &self,
        who: &Who,
        mailbox: MailboxId,
        input: &VacationInput,
        replace: bool,
    ) -> Result<SieveForms, AdminError> {
        let current = self.sieve_forms(who, mailbox).await?;
        let vacation = Vacation::parse(input, Some(&current.addresses))?;
        let forms = Forms { vacation: Some(vacation), rules: current.forms.rules.clone() };
        self.write_forms(who, mailbox, current, forms, replace).await
    }

    /// Saves the filter list, in order, replacing the one before.
    pub async fn set_filters(
        &self,
        who: &Who,
        mailbox: MailboxId,
        rules: &[RuleInput],
        replace: bool,
    ) -> Result<SieveForms, AdminError> {
        let current = self.sieve_forms(who, mailbox).await?;
        let rules = generate::parse_rules(rules)?;
        let forms = Forms { vacation: current.forms.vacation.clone(), rules };
        self.write_forms(who, mailbox, current, forms, replace).await
    }

    /// The "edit as Sieve" save: `text` replaces the active script (under its name, or
    /// the forms' name when none is active) and is activated. The script operations
    /// check it first, so a script with an error is never stored. Answers the name.
    pub async fn set_active_script_text(
        &self,
        who: &Who,
        mailbox: MailboxId,
        text: &str,
    ) -> Result<String, AdminError> {
        let name = match self.active_script_text(who, mailbox).await? {
            Some((name, _)) => name,
            None => SCRIPT_NAME.to_string(),
        };
        self.put_script(who, mailbox, &name, text).await?;
        self.activate_script(who, mailbox, Some(&name)).await?;
        Ok(name)
    }

    async fn write_forms(
        &self,
        who: &Who,
        mailbox: MailboxId,
        current: SieveForms,
        forms: Forms,
        replace: bool,
    ) -> Result<SieveForms, AdminError> {
        if let ActiveScript::HandWritten { name } = &current.active {
            if !replace {
                return Err(AdminError::HandWrittenScript { name: name.clone() });
            }
            if name == SCRIPT_NAME
                && let Some(text) = self.script_text(who, mailbox, SCRIPT_NAME).await?
            {
                self.put_script(who, mailbox, KEPT_NAME, &text).await?;
            }
        }
        let text = generate::generate(&forms);
        self.put_script(who, mailbox, SCRIPT_NAME, &text).await?;
        self.activate_script(who, mailbox, Some(SCRIPT_NAME)).await?;
        Ok(SieveForms { forms, active: ActiveScript::Forms, addresses: current.addresses })
    }

    /// The forms' state from their script when it is stored but not active, or was
    /// changed by hand since: what the forms held last, as it records it.
    async fn stored_forms(&self, who: &Who, mailbox: MailboxId) -> Result<Forms, AdminError> {
        let text = self.script_text(who, mailbox, SCRIPT_NAME).await?;
        Ok(text.and_then(|t| recorded_state(&t)).unwrap_or_default())
    }

    /// The active script's name and text, if one is active.
    pub async fn active_script_text(
        &self,
        who: &Who,
        mailbox: MailboxId,
    ) -> Result<Option<(String, String)>, AdminError> {
        Ok(self.active_script(who, mailbox).await?.map(|s| (s.name, s.text)))
    }

    /// A script's text; `None` when the mailbox has no script of that name.
    pub async fn script_text(&self, who: &Who, mailbox: MailboxId, name: &str) -> Result<Option<String>, AdminError> {
        match self.script(who, mailbox, name).await {
            Ok(script) => Ok(Some(script.text)),
            Err(AdminError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The mailbox's address and the aliases delivering into it.
    async fn own_addresses(&self, who: &Who, mailbox: MailboxId) -> Result<Vec<EmailAddress>, AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        let mut addresses = vec![mailbox.address.clone()];
        addresses.extend(self.aliases_of(who, &mailbox).await?.into_iter().map(|a| a.address));
        Ok(addresses)
    }
}

#[cfg(test)]
mod tests;
