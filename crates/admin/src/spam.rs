//! A customer's spam thresholds (rspamd scores from which its mail is refused or goes to
//! Junk; `docs/spam.md`): the customer itself, the operator and admins set them.

use postfach_store::customers::SpamThresholds;
use postfach_types::{CustomerId, SpamThreshold};

use crate::{Admin, AdminError, Who, platform};

impl Admin {
    /// A customer's spam thresholds.
    pub async fn customer_spam(&self, who: &Who, id: CustomerId) -> Result<SpamThresholds, AdminError> {
        own_customer(who, id)?;
        Ok(self.store.customer_by_id(id).await?.spam)
    }

    /// Changes one or both thresholds (`None`: unchanged). Two scores that would refuse
    /// mail before it could go to Junk are refused.
    pub async fn set_customer_spam(
        &self,
        who: &Who,
        id: CustomerId,
        reject: Option<SpamThreshold>,
        junk: Option<SpamThreshold>,
    ) -> Result<SpamThresholds, AdminError> {
        own_customer(who, id)?;
        let mut spam = self.store.customer_by_id(id).await?.spam;
        spam.reject = reject.unwrap_or(spam.reject);
        spam.junk = junk.unwrap_or(spam.junk);
        if let (SpamThreshold::At(reject), SpamThreshold::At(junk)) = (spam.reject, spam.junk)
            && junk >= reject
        {
            return Err(AdminError::SpamThresholdsReversed);
        }
        self.store.set_customer_spam(id, spam).await?;
        Ok(spam)
    }
}

/// The customer itself, the operator or an admin.
pub(crate) fn own_customer(who: &Who, id: CustomerId) -> Result<(), AdminError> {
    match who {
        Who::Customer { id: own, .. } if *own == id => Ok(()),
        _ => platform(who),
    }
}
