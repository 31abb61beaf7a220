//! The SMTP services (crate `postfach-smtp`): the inbound MX on the `smtp` listeners and
//! submission on the `submission` (STARTTLS) and `submissions` (implicit TLS) listeners.
//! Submission hands accepted messages to the outbound queue.

use std::sync::Arc;

use postfach_net::{ConnectionLimiter, TlsAcceptor};
use postfach_smtp::{Smtp, SpfFailAction, Submission, SubmissionSink, SubmitError, SubmitFuture};

use crate::config::SpfFail;
use crate::listeners::Handler;
use crate::{Registrar, ServerError, Shared};

/// The outbound queue as the submission server's sink.
#[derive(Debug, Clone)]
struct OutboundSink(postfach_outbound::Outbound);

impl SubmissionSink for OutboundSink {
    fn submit(&self, submission: Submission) -> SubmitFuture<'_> {
        Box::pin(async move {
            let Submission { mailbox_id, return_path, recipients, message } = submission;
            self.0
                .submit(postfach_outbound::Submission { mailbox_id, return_path, recipients, message })
                .await
                .map(|id| id.to_string())
                .map_err(|e| match e {
                    postfach_outbound::OutboundError::RateLimited { retry_after_secs } => {
                        SubmitError::RateLimited { retry_after_secs }
                    }
                    postfach_outbound::OutboundError::Unavailable(why) => SubmitError::Unavailable(why),
                })
        })
    }
}

/// Binds `smtp`, `submission` and `submissions`. The two submission services share one
/// per-address connection limit.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(shared: &Shared<'_>, reg: &mut Registrar<'_>) -> Result<(), ServerError> {
    let Shared { config, store, blobs, deliveries, auth, tls, outbound } = *shared;
    let settings = postfach_smtp::Settings::new(
        config.hostname.clone(),
        config.limits.max_message_size,
        config.limits.max_recipients,
        match config.smtp.spf_fail {
            SpfFail::Tag => SpfFailAction::Tag,
            SpfFail::Reject => SpfFailAction::Reject,
        },
    );
    let services = postfach_smtp::Services {
        store: store.clone(),
        blobs: blobs.clone(),
        deliveries: deliveries.clone(),
        auth: auth.clone(),
        tls: TlsAcceptor::new(tls.clone()),
        dns_resolver: config.dns.resolver,
        submissions: Arc::new(OutboundSink(outbound.clone())),
    };
    let smtp = Smtp::new(settings, services)?;
    let per_ip = config.limits.max_connections_per_ip as usize;

    let mx = smtp.clone();
    let handler: Handler = Arc::new(move |tcp, peer, slot| {
        let mx = mx.clone();
        Box::pin(async move { mx.serve_mx(tcp, peer, slot).await })
    });
    reg.listen("smtp", &config.listen.smtp, ConnectionLimiter::new(per_ip), handler).await?;

    let limiter = ConnectionLimiter::new(per_ip);
    let starttls = smtp.clone();
    let handler: Handler = Arc::new(move |tcp, peer, slot| {
        let smtp = starttls.clone();
        Box::pin(async move { smtp.serve_submission(tcp, peer, slot).await })
    });
    reg.listen("submission", &config.listen.submission, limiter.clone(), handler).await?;
    let handler: Handler = Arc::new(move |tcp, peer, slot| {
        let smtp = smtp.clone();
        Box::pin(async move { smtp.serve_submissions(tcp, peer, slot).await })
    });
    reg.listen("submissions", &config.listen.submissions, limiter, handler).await?;
    Ok(())
}
