//! The SMTP services (crate `postfach-smtp`): the inbound MX on the `smtp` listeners and
//! submission on the `submission` (STARTTLS) and `submissions` (implicit TLS) listeners.
//! Submission hands accepted messages to the outbound queue.

use std::sync::Arc;

use postfach_net::Security;
use postfach_smtp::{Kind, Smtp, SpfFailAction, Submission, SubmissionSink, SubmitError, SubmitFuture};

use crate::config::SpfFail;
use crate::{Registrar, ServerError, Shared};

/// The outbound queue as the submission server's sink.
#[derive(Debug, Clone)]
struct OutboundSink(postfach_outbound::Outbound);

impl SubmissionSink for OutboundSink {
    fn submit(&self, submission: Submission) -> SubmitFuture<'_> {
        Box::pin(async move {
            let Submission { mailbox_id, return_path, recipients, message, client, require_tls } = submission;
            self.0
                .submit(postfach_outbound::Submission {
                    mailbox_id,
                    return_path,
                    recipients,
                    message,
                    client: Some(client),
                    require_tls,
                })
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
/// admission (per-address and per-service connection counts).
pub(crate) async fn serve(shared: &Shared<'_>, reg: &mut Registrar<'_>) -> Result<(), ServerError> {
    let Shared { config, store, blobs, deliveries, auth, outbound, budget, .. } = *shared;
    let mut settings = postfach_smtp::Settings::new(
        config.hostname.clone(),
        config.limits.max_message_size,
        config.limits.max_recipients,
        match config.smtp.spf_fail {
            SpfFail::Tag => SpfFailAction::Tag,
            SpfFail::Reject => SpfFailAction::Reject,
        },
    );
    settings.login_timeout = std::time::Duration::from_secs(config.limits.login_timeout_secs);
    settings.node = Some(config.cluster.node.clone());
    settings.spam = crate::spam::smtp_settings(config);
    settings.tls_reports = config.tls_report_address();
    let services = postfach_smtp::Services {
        store: store.clone(),
        blobs: blobs.clone(),
        deliveries: deliveries.clone(),
        auth: auth.clone(),
        budget: budget.clone(),
        dns_resolver: config.dns.resolver,
        submissions: Arc::new(OutboundSink(outbound.clone())),
        filter: outbound.filter().clone(),
    };
    let smtp = Smtp::new(settings, services)?;
    let mx = shared.admission();
    reg.listen(&config.listen.smtp, shared.endpoint("smtp", Security::Plain, &mx), smtp.protocol(Kind::Mx)).await?;
    let submission = shared.admission();
    let protocol = smtp.protocol(Kind::Submission);
    reg.listen(
        &config.listen.submission,
        shared.endpoint("submission", Security::Plain, &submission),
        protocol.clone(),
    )
    .await?;
    reg.listen(
        &config.listen.submissions,
        shared.endpoint("submissions", Security::ImplicitTls, &submission),
        protocol,
    )
    .await?;
    Ok(())
}
