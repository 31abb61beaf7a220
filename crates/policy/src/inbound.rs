//! Whether inbound mail (the MX, RFC 5321) is accepted, and into which folder, given what
//! SPF, DKIM and DMARC found and which domains are hosted here.
//!
//! Two moments, each one pure decision; SMTP only gathers the facts (SPF and DMARC with
//! mail-auth, hosted domains from the store) and turns the decision into its reply:
//!
//! - at `MAIL FROM` ([`SenderFacts::decide`]):
//!   1. a sender address in a hosted domain is accepted only when SPF passes for it (mail
//!      from our own domains comes from our own servers); an SPF lookup that failed
//!      temporarily defers instead;
//!   2. an SPF `fail` is refused when the operator says so (`spf_fail = "reject"`), else
//!      only recorded in `Authentication-Results:`.
//! - at the end of `DATA` ([`InboundFacts::decide`]):
//!   1. a `From:` that DMARC and our header view read differently is refused: it could not
//!      be judged;
//!   2. every hosted `From:` domain must be authenticated: DMARC pass, or SPF pass aligned
//!      with it, or a DKIM pass aligned with it; a DMARC lookup that failed temporarily
//!      defers; otherwise the message is refused (anti-spoofing);
//!   3. DMARC (RFC 7489 §6.3): `p=reject` failed: refused;
//!   4. spam (rspamd, [`Spam`]): not checked because rspamd could not be asked: deferred
//!      when the operator says so (`failure = "defer"`), else delivered as usual; a score
//!      at or above the recipient's refuse threshold: refused;
//!   5. DMARC `p=quarantine` failed, or a spam score at or above the Junk threshold: Junk;
//!      otherwise the INBOX.
//!
//! The folder decided here is where the message goes unless the mailbox's own filters
//! (Sieve, the implicit keep) file it elsewhere.

/// An SPF result (RFC 7208 §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spf {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

/// The DMARC verdict on a message (RFC 7489 §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dmarc {
    /// Aligned SPF or DKIM passed.
    Pass,
    /// The `From:` domain publishes this policy and the message fails it.
    Fail { domain: String, policy: DmarcPolicy },
    /// No policy applies.
    None,
    /// A DNS lookup failed: neither pass nor fail.
    TempError,
}

/// The `p=` a failing domain asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcPolicy {
    None,
    Quarantine,
    Reject,
}

/// What rspamd said about a message, with the thresholds of the recipient's customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spam {
    /// Not checked: no rspamd is configured (or the way in is not checked).
    Off,
    /// rspamd could not be asked (down, too slow, an unreadable answer); `defer` is the
    /// operator's `failure = "defer"`.
    Unreachable { defer: bool },
    /// The score, and the thresholds that apply (`None`: never).
    Scored { score: SpamScore, refuse_at: Option<SpamScore>, junk_at: Option<SpamScore> },
}

impl Spam {
    /// The verdict the headers show: refused or Junk by score (`Some(true)`), below both
    /// thresholds (`Some(false)`), not checked (`None`).
    pub fn is_spam(&self) -> Option<bool> {
        match *self {
            Spam::Scored { score, refuse_at, junk_at } => {
                Some(refuse_at.is_some_and(|t| score >= t) || junk_at.is_some_and(|t| score >= t))
            }
            _ => None,
        }
    }
}

/// Where an accepted message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Inbox,
    Junk,
}

/// Why inbound mail is refused (a permanent, 5xx answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundRefusal {
    /// The sender address is in a hosted domain but SPF did not pass for it.
    HostedSenderNotAuthenticated { spf: Spf },
    /// SPF failed and the operator refuses SPF failures.
    SpfFail,
    /// DMARC and our header view read different `From:` domains.
    AmbiguousFrom,
    /// A hosted `From:` domain, not authenticated by DMARC, SPF or DKIM.
    HostedFromNotAuthenticated { domain: String },
    /// The `From:` domain's DMARC policy is `reject` and the message fails it.
    DmarcReject { domain: String },
    /// The spam score reached the recipient's refuse threshold.
    Spam { score: SpamScore },
}

/// Why inbound mail is deferred (a temporary, 4xx answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferral {
    /// SPF could not be checked for a hosted sender domain.
    SenderSpfTempError,
    /// DMARC could not be checked for a hosted `From:` domain.
    DmarcTempError,
    /// rspamd could not be asked and the operator defers unchecked mail.
    SpamUnchecked,
}

/// The decision on a sender or a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundDecision {
    /// At `MAIL FROM`: go on; at the end of `DATA`: deliver into this folder.
    Deliver(Folder),
    Refuse(InboundRefusal),
    Defer(Deferral),
}

/// What is known at `MAIL FROM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderFacts {
    /// SPF for the MAIL FROM identity (the HELO identity for the null sender).
    pub spf: Spf,
    /// The sender address is in a domain hosted here (false for the null sender).
    pub sender_hosted: bool,
    /// The operator's `spf_fail = "reject"`.
    pub reject_spf_fail: bool,
}

impl SenderFacts {
    /// `Deliver(Inbox)` means "accept the sender"; the folder is decided after `DATA`.
    pub fn decide(&self) -> InboundDecision {
        use InboundDecision::{Defer, Deliver, Refuse};
        if self.sender_hosted && self.spf != Spf::Pass {
            return match self.spf {
                Spf::TempError => Defer(Deferral::SenderSpfTempError),
                spf => Refuse(InboundRefusal::HostedSenderNotAuthenticated { spf }),
            };
        }
        if self.spf == Spf::Fail && self.reject_spf_fail {
            return Refuse(InboundRefusal::SpfFail);
        }
        Deliver(Folder::Inbox)
    }
}

/// One domain of the `From:` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromDomain {
    pub domain: String,
    /// Hosted here (then it must be authenticated).
    pub hosted: bool,
    /// The MAIL FROM domain is aligned with it (RFC 7489 §3.1.2, relaxed).
    pub mail_from_aligned: bool,
    /// A DKIM signature that passed is aligned with it (RFC 7489 §3.1.1, relaxed).
    pub dkim_aligned: bool,
}

/// What is known at the end of `DATA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFacts {
    /// DMARC and our header view read the same `From:` domains.
    pub from_unambiguous: bool,
    /// The `From:` domains, as our header view reads them.
    pub from: Vec<FromDomain>,
    /// SPF passed for the MAIL FROM identity.
    pub spf_pass: bool,
    pub dmarc: Dmarc,
    pub spam: Spam,
}

impl InboundFacts {
    pub fn decide(&self) -> InboundDecision {
        use InboundDecision::{Defer, Deliver, Refuse};
        if !self.from_unambiguous {
            return Refuse(InboundRefusal::AmbiguousFrom);
        }
        for from in self.from.iter().filter(|f| f.hosted) {
            let authenticated =
                self.dmarc == Dmarc::Pass || (self.spf_pass && from.mail_from_aligned) || from.dkim_aligned;
            if authenticated {
                continue;
            }
            if self.dmarc == Dmarc::TempError {
                return Defer(Deferral::DmarcTempError);
            }
            return Refuse(InboundRefusal::HostedFromNotAuthenticated { domain: from.domain.clone() });
        }
        if let Dmarc::Fail { domain, policy: DmarcPolicy::Reject } = &self.dmarc {
            return Refuse(InboundRefusal::DmarcReject { domain: domain.clone() });
        }
        let spam_junk = match self.spam {
            Spam::Off | Spam::Unreachable { defer: false } => false,
            Spam::Unreachable { defer: true } => return Defer(Deferral::SpamUnchecked),
            Spam::Scored { score, refuse_at, junk_at } => {
                if refuse_at.is_some_and(|t| score >= t) {
                    return Refuse(InboundRefusal::Spam { score });
                }
                junk_at.is_some_and(|t| score >= t)
            }
        };
        let quarantine = matches!(self.dmarc, Dmarc::Fail { policy: DmarcPolicy::Quarantine, .. });
        if quarantine || spam_junk { Deliver(Folder::Junk) } else { Deliver(Folder::Inbox) }
    }
}

use postfach_types::SpamScore;

#[cfg(test)]
mod tests {
    use super::*;
    use InboundDecision::{Defer, Deliver, Refuse};

    #[test]
    fn sender_table() {
        use Spf::*;
        let hosted_not = |spf| Refuse(InboundRefusal::HostedSenderNotAuthenticated { spf });
        #[rustfmt::skip]
        let table = [
            // SPF, sender hosted, operator rejects SPF fail => decision
            (Pass,      false, false, Deliver(Folder::Inbox)),
            (Pass,      true,  true,  Deliver(Folder::Inbox)),
            (Fail,      false, false, Deliver(Folder::Inbox)),
            (Fail,      false, true,  Refuse(InboundRefusal::SpfFail)),
            (SoftFail,  false, true,  Deliver(Folder::Inbox)),
            (None,      false, true,  Deliver(Folder::Inbox)),
            (TempError, false, true,  Deliver(Folder::Inbox)),
            // A hosted sender domain must pass SPF: our domains' mail comes from us.
            (Fail,      true,  false, hosted_not(Fail)),
            (Fail,      true,  true,  hosted_not(Fail)),
            (SoftFail,  true,  false, hosted_not(SoftFail)),
            (Neutral,   true,  false, hosted_not(Neutral)),
            (None,      true,  false, hosted_not(None)),
            (PermError, true,  false, hosted_not(PermError)),
            (TempError, true,  false, Defer(Deferral::SenderSpfTempError)),
        ];
        for (i, (spf, sender_hosted, reject_spf_fail, expected)) in table.into_iter().enumerate() {
            let facts = SenderFacts { spf, sender_hosted, reject_spf_fail };
            assert_eq!(facts.decide(), expected, "row {i}: {facts:?}");
        }
    }

    fn domain(name: &str, hosted: bool, mail_from_aligned: bool, dkim_aligned: bool) -> FromDomain {
        FromDomain { domain: name.into(), hosted, mail_from_aligned, dkim_aligned }
    }

    #[test]
    fn message_table() {
        let fail = |policy| Dmarc::Fail { domain: "other.example".into(), policy };
        let foreign = domain("other.example", false, false, false);
        let hosted_bare = domain("acme.example", true, false, false);
        let hosted_spf = domain("acme.example", true, true, false);
        let hosted_dkim = domain("acme.example", true, false, true);
        let unauthenticated = Refuse(InboundRefusal::HostedFromNotAuthenticated { domain: "acme.example".into() });
        let reject = Refuse(InboundRefusal::DmarcReject { domain: "other.example".into() });
        #[rustfmt::skip]
        let table = vec![
            // From: read the same, From: domains, SPF pass, DMARC => decision
            (true,  vec![foreign.clone()],       false, Dmarc::None,                      Deliver(Folder::Inbox)),
            (true,  vec![],                      false, Dmarc::None,                      Deliver(Folder::Inbox)),
            (false, vec![foreign.clone()],       true,  Dmarc::Pass,                      Refuse(InboundRefusal::AmbiguousFrom)),
            (true,  vec![foreign.clone()],       true,  Dmarc::Pass,                      Deliver(Folder::Inbox)),
            (true,  vec![foreign.clone()],       false, fail(DmarcPolicy::None),          Deliver(Folder::Inbox)),
            (true,  vec![foreign.clone()],       false, fail(DmarcPolicy::Quarantine),    Deliver(Folder::Junk)),
            (true,  vec![foreign.clone()],       false, fail(DmarcPolicy::Reject),        reject.clone()),
            (true,  vec![foreign.clone()],       false, Dmarc::TempError,                 Deliver(Folder::Inbox)),
            // Hosted From: domains must be authenticated one way or another.
            (true,  vec![hosted_bare.clone()],   false, Dmarc::Pass,                      Deliver(Folder::Inbox)),
            (true,  vec![hosted_spf.clone()],    true,  Dmarc::None,                      Deliver(Folder::Inbox)),
            (true,  vec![hosted_spf.clone()],    false, Dmarc::None,                      unauthenticated.clone()),
            (true,  vec![hosted_dkim.clone()],   false, Dmarc::None,                      Deliver(Folder::Inbox)),
            (true,  vec![hosted_bare.clone()],   true,  Dmarc::None,                      unauthenticated.clone()),
            (true,  vec![hosted_bare.clone()],   false, Dmarc::TempError,                 Defer(Deferral::DmarcTempError)),
            (true,  vec![foreign.clone(), hosted_bare.clone()], false, fail(DmarcPolicy::Quarantine), unauthenticated.clone()),
            (true,  vec![hosted_dkim.clone(), hosted_bare.clone()], false, Dmarc::None,   unauthenticated.clone()),
            // An authenticated hosted domain does not lift another domain's DMARC policy.
            (true,  vec![hosted_dkim.clone(), foreign.clone()], false, fail(DmarcPolicy::Reject), reject),
        ];
        for (i, (from_unambiguous, from, spf_pass, dmarc, expected)) in table.into_iter().enumerate() {
            let facts = InboundFacts { from_unambiguous, from, spf_pass, dmarc, spam: Spam::Off };
            assert_eq!(facts.decide(), expected, "row {i}: {facts:?}");
        }
    }

    #[test]
    fn spam_table() {
        let score = |s: i64| SpamScore::from_hundredths(s * 100);
        let scored = |s, refuse: Option<i64>, junk: Option<i64>| Spam::Scored {
            score: score(s),
            refuse_at: refuse.map(score),
            junk_at: junk.map(score),
        };
        let quarantine = Dmarc::Fail { domain: "other.example".into(), policy: DmarcPolicy::Quarantine };
        let reject = Dmarc::Fail { domain: "other.example".into(), policy: DmarcPolicy::Reject };
        let refused = |s| Refuse(InboundRefusal::Spam { score: score(s) });
        #[rustfmt::skip]
        let table = vec![
            // DMARC, spam => decision
            (Dmarc::None,       Spam::Off,                              Deliver(Folder::Inbox)),
            (Dmarc::None,       Spam::Unreachable { defer: false },     Deliver(Folder::Inbox)),
            (Dmarc::None,       Spam::Unreachable { defer: true },      Defer(Deferral::SpamUnchecked)),
            (Dmarc::None,       scored(2, Some(15), Some(6)),           Deliver(Folder::Inbox)),
            (Dmarc::None,       scored(6, Some(15), Some(6)),           Deliver(Folder::Junk)),
            (Dmarc::None,       scored(14, Some(15), Some(6)),          Deliver(Folder::Junk)),
            (Dmarc::None,       scored(15, Some(15), Some(6)),          refused(15)),
            (Dmarc::None,       scored(99, None, Some(6)),              Deliver(Folder::Junk)),
            (Dmarc::None,       scored(99, None, None),                 Deliver(Folder::Inbox)),
            (Dmarc::None,       scored(7, Some(5), None),               refused(7)),
            // A clean score does not lift DMARC's quarantine; DMARC's reject comes first.
            (quarantine.clone(), scored(0, Some(15), Some(6)),          Deliver(Folder::Junk)),
            (quarantine,        Spam::Unreachable { defer: false },     Deliver(Folder::Junk)),
            (reject.clone(),    scored(99, Some(15), Some(6)),          Refuse(InboundRefusal::DmarcReject { domain: "other.example".into() })),
            (reject,            Spam::Unreachable { defer: true },      Refuse(InboundRefusal::DmarcReject { domain: "other.example".into() })),
        ];
        for (i, (dmarc, spam, expected)) in table.into_iter().enumerate() {
            let facts = InboundFacts { from_unambiguous: true, from: vec![], spf_pass: false, dmarc, spam };
            assert_eq!(facts.decide(), expected, "row {i}: {facts:?}");
        }
        // Spoofing of a hosted domain is refused before the spam score is looked at.
        let spoofed = InboundFacts {
            from_unambiguous: true,
            from: vec![domain("acme.example", true, false, false)],
            spf_pass: false,
            dmarc: Dmarc::None,
            spam: Spam::Unreachable { defer: true },
        };
        assert_eq!(
            spoofed.decide(),
            Refuse(InboundRefusal::HostedFromNotAuthenticated { domain: "acme.example".into() })
        );
    }
}
