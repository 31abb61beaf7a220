//! `postfach queue list | retry ID | remove ID`: the operator's view of the outbound
//! queue. The running server notices a retry within seconds (it polls the queue); a
//! removed message's file is deleted from the queue spool here.

use std::process::ExitCode;

use anyhow::Context;
use postfach_admin::{Admin, Who};
use postfach_blob::{BlobStore, Namespace};
use postfach_server::config::Config;
use postfach_store::queue::RecipientState;

use crate::QueueCommand;
use crate::commands::explain;
use crate::output::{json, table};
use crate::views::{self, QueuedMessageView};

pub async fn run(command: QueueCommand, config: &Config, admin: &Admin) -> anyhow::Result<ExitCode> {
    let operator = &Who::Operator;
    match command {
        QueueCommand::List { json: true } => {
            json(&views::all::<_, QueuedMessageView>(&admin.queue(operator).await.map_err(explain)?))?
        }
        QueueCommand::List { json: false } => {
            let messages = admin.queue(operator).await.map_err(explain)?;
            let now = postfach_types::UnixTime::now();
            let mut rows = Vec::new();
            for m in &messages {
                for (i, r) in m.recipients.iter().enumerate() {
                    let (id, from, queued) = if i == 0 {
                        (
                            m.queue_id.clone(),
                            m.return_path.as_ref().map_or("<>".to_string(), ToString::to_string),
                            m.created_at.rfc3339(),
                        )
                    } else {
                        (String::new(), String::new(), String::new())
                    };
                    let next = if r.state == RecipientState::Queued { r.next_attempt_at.rfc3339() } else { "-".into() };
                    let problem = match (&r.status, &r.diagnostic) {
                        (Some(status), Some(text)) if r.state != RecipientState::Delivered => {
                            format!("{status} {}", text.replace(['\r', '\n'], " "))
                        }
                        _ => String::new(),
                    };
                    // The node delivering it now; a lease that ran out means that node
                    // stopped (another node takes the recipient over).
                    let claimed_by = match &r.claim {
                        Some(claim) if claim.holds_at(now) => claim.node.to_string(),
                        Some(claim) => format!("{} (lease ran out)", claim.node),
                        None => "-".into(),
                    };
                    rows.push(vec![
                        id,
                        queued,
                        from,
                        r.address.to_string(),
                        r.state.as_str().to_string(),
                        r.attempts.to_string(),
                        next,
                        claimed_by,
                        r.tls_policy.clone().unwrap_or_else(|| "-".into()),
                        r.tls.clone().unwrap_or_else(|| "-".into()),
                        problem,
                    ]);
                }
            }
            table(
                &[
                    "ID",
                    "QUEUED",
                    "FROM",
                    "TO",
                    "STATE",
                    "ATTEMPTS",
                    "NEXT ATTEMPT",
                    "CLAIMED BY",
                    "TLS POLICY",
                    "TLS",
                    "LAST PROBLEM",
                ],
                &rows,
            );
            if messages.is_empty() {
                println!("the queue is empty");
            }
        }
        QueueCommand::Retry { id } => {
            let n = admin.retry_queued(operator, &id).await.map_err(explain)?;
            if n == 0 {
                println!("{id} has no recipient waiting; nothing to retry");
            } else {
                println!("{id}: {n} recipient(s) will be tried again within a few seconds if the server is running");
            }
        }
        QueueCommand::Remove { id } => {
            let blob = admin.remove_queued(operator, &id).await.map_err(explain)?;
            let spool = BlobStore::open(&config.blobs, &config.data_dir, Namespace::Queue)
                .context("cannot open the queue's message storage")?;
            spool.delete(&blob).await.context("cannot delete the queued message file")?;
            println!("removed {id} from the queue; it will not be delivered");
        }
    }
    Ok(ExitCode::SUCCESS)
}
