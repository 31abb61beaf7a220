//! Asking rspamd about an inbound message (`postfach_spam`), and what its answer becomes:
//! one more fact for `postfach_policy::inbound` per recipient (with the thresholds of the
//! recipient's customer) and the `X-Spam-Status` / `X-Spam-Score` fields stored with the
//! message. Only the MX asks; submission is not checked (`docs/spam.md`).

use postfach_metrics::SpamCheck;
use postfach_policy::inbound::Spam;
use postfach_spam::{Envelope, Rspamd, Verdict};
use postfach_store::customers::SpamThresholds;
use postfach_types::SpamScore;

/// `[spam]` as the MX uses it.
#[derive(Debug, Clone)]
pub struct SpamSettings {
    pub rspamd: Rspamd,
    /// `failure = "defer"`: unchecked mail is deferred (451 4.7.1), not accepted.
    pub defer_unchecked: bool,
    /// The platform's thresholds, for customers who set none (`None`: never).
    pub reject_score: Option<SpamScore>,
    pub junk_score: Option<SpamScore>,
}

/// What came of asking rspamd.
#[derive(Debug, Clone)]
pub(crate) enum Checked {
    /// No rspamd configured.
    Off,
    /// rspamd could not be asked.
    Unreachable,
    Scored(Verdict),
}

/// Asks rspamd; a failure is logged and counted, never returned.
pub(crate) async fn check(settings: Option<&SpamSettings>, message: &[u8], envelope: &Envelope<'_>) -> Checked {
    let Some(settings) = settings else { return Checked::Off };
    match settings.rspamd.check(message, envelope).await {
        Ok(verdict) => {
            postfach_metrics::spam_check(SpamCheck::Checked);
            tracing::info!(
                id = envelope.queue_id,
                score = %verdict.score,
                action = verdict.action,
                symbols = verdict.symbols.join(","),
                "spam check"
            );
            Checked::Scored(verdict)
        }
        Err(e) => {
            postfach_metrics::spam_check(SpamCheck::Unreachable);
            tracing::warn!(id = envelope.queue_id, error = %e, "spam check failed: the message is not checked");
            Checked::Unreachable
        }
    }
}

/// The spam fact for a recipient whose customer set `thresholds`.
pub(crate) fn fact(settings: Option<&SpamSettings>, checked: &Checked, thresholds: SpamThresholds) -> Spam {
    match (checked, settings) {
        (Checked::Scored(verdict), Some(settings)) => Spam::Scored {
            score: verdict.score,
            refuse_at: thresholds.reject.resolve(settings.reject_score),
            junk_at: thresholds.junk.resolve(settings.junk_score),
        },
        (Checked::Unreachable, Some(settings)) => Spam::Unreachable { defer: settings.defer_unchecked },
        _ => Spam::Off,
    }
}

/// The fields stored with the message: `X-Spam-Status: Yes|No, score=S` and
/// `X-Spam-Score: S`, or `X-Spam-Status: unchecked` when rspamd could not be asked.
pub(crate) fn fields(checked: &Checked, is_spam: bool) -> String {
    match checked {
        Checked::Off => String::new(),
        Checked::Unreachable => "X-Spam-Status: unchecked (the spam filter could not be reached)\r\n".into(),
        Checked::Scored(verdict) => {
            let yes = if is_spam { "Yes" } else { "No" };
            format!("X-Spam-Status: {yes}, score={}\r\nX-Spam-Score: {}\r\n", verdict.score, verdict.score)
        }
    }
}
