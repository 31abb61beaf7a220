//! The outbound queue: accepted messages waiting for delivery, with a state per recipient.
//!
//! A message is one row (its bytes are a blob in the queue spool); each recipient is a
//! row of its own that moves from `queued` to `delivered` or `failed`.
//!
//! Several nodes may deliver from one queue. A node claims due recipients in one
//! transaction ([`Store::queue_claim_due`]): on PostgreSQL the rows are locked with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers pass each other by instead of waiting;
//! SQLite has one writer at a time and needs no row locks. A claim is a lease
//! (`locked_until`) held by a node (`locked_by`): the node renews it while the attempt runs
//! ([`Store::queue_renew_claims`]), records the outcome only while it still holds it, and
//! at start releases only its own claims ([`Store::queue_release_claims`]). A claim of a
//! node that died runs out with its lease, and another node takes the recipient then.
//!
//! A recipient that needs a delivery status
//! notification (RFC 3464) carries `notify` until the notice has been handed on. A message
//! whose recipients are all final and notified is removed with [`Store::queue_delete`].
//!
//! Operator and panel calls ([`Store::queue_list`], [`Store::queue_retry`],
//! [`Store::queue_remove`]) take a [`Scope`]; the worker calls act for the platform.

use std::collections::BTreeMap;

use postfach_types::{BlobId, EmailAddress, NodeName, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::decode;
use crate::{CustomerId, MailboxId, QueueMessageId, QueueRecipientId, Scope, Store, StoreError};

/// Where a recipient is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientState {
    /// Waiting for its (next) attempt.
    Queued,
    /// Accepted by the destination (or stored in a local mailbox).
    Delivered,
    /// Given up: refused for good, or not delivered within the queue lifetime.
    Failed,
}

impl RecipientState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Queued => "queued",
            RecipientState::Delivered => "delivered",
            RecipientState::Failed => "failed",
        }
    }
}

/// A delivery status notification still owed to the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The recipient failed for good (RFC 3464 action "failed").
    Failed,
    /// Still trying after the warning time (RFC 3464 action "delayed").
    Delayed,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Failed => "failed",
            Notice::Delayed => "delayed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a queue state")]
pub struct BadState(String);

fn parse_state(s: &str) -> Result<RecipientState, BadState> {
    match s {
        "queued" => Ok(RecipientState::Queued),
        "delivered" => Ok(RecipientState::Delivered),
        "failed" => Ok(RecipientState::Failed),
        other => Err(BadState(other.to_string())),
    }
}

fn parse_notice(s: &str) -> Result<Notice, BadState> {
    match s {
        "failed" => Ok(Notice::Failed),
        "delayed" => Ok(Notice::Delayed),
        other => Err(BadState(other.to_string())),
    }
}

/// A message to put into the queue; its blob is already durable in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueuedMessage {
    /// The id shown to people and in logs (unique).
    pub queue_id: String,
    pub customer_id: Option<CustomerId>,
    /// The mailbox that submitted it; `None` for notices the server writes itself.
    pub mailbox_id: Option<MailboxId>,
    /// `None`: the null reverse-path; no notice is ever sent about this message.
    pub return_path: Option<EmailAddress>,
    pub blob: BlobId,
    pub size: u64,
    pub created_at: UnixTime,
    /// When delivery is given up.
    pub expires_at: UnixTime,
    pub recipients: Vec<EmailAddress>,
    /// What TLS the sender asked for: `requiretls` (REQUIRETLS), `encrypted` ("always
    /// require TLS"); `None`: nothing.
    pub tls_demand: Option<String>,
}

/// A queued message with all its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: QueueMessageId,
    pub queue_id: String,
    pub customer_id: Option<CustomerId>,
    pub mailbox_id: Option<MailboxId>,
    pub return_path: Option<EmailAddress>,
    pub blob: BlobId,
    pub size: u64,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub recipients: Vec<QueuedRecipient>,
    /// As in [`NewQueuedMessage::tls_demand`].
    pub tls_demand: Option<String>,
}

/// One recipient of a queued message and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    pub id: QueueRecipientId,
    pub address: EmailAddress,
    pub state: RecipientState,
    pub attempts: u32,
    pub next_attempt_at: UnixTime,
    pub last_attempt_at: Option<UnixTime>,
    /// The enhanced status code of the last attempt (RFC 3463), like `4.4.1`.
    pub status: Option<String>,
    /// What went wrong last, for people: the remote server's reply or our reason.
    pub diagnostic: Option<String>,
    /// The server of the last attempt.
    pub remote_mta: Option<String>,
    /// The encryption of the last attempt, like `TLSv1.3 TLS13_AES_256_GCM_SHA384`; `None`
    /// when it was unencrypted (or never connected).
    pub tls: Option<String>,
    /// The TLS rule the last attempt followed: `none` (plaintext), `opportunistic`,
    /// `mta-sts`, `dane`; `None` before any attempt reached a server.
    pub tls_policy: Option<String>,
    pub notify: Option<Notice>,
    pub delay_warned: bool,
    /// The delivery attempt that holds this recipient, if any (it may have run out).
    pub claim: Option<Claim>,
}

/// A node's claim on a recipient: its lease runs until `until` unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub node: NodeName,
    pub until: UnixTime,
}

impl Claim {
    /// Whether the lease still runs at `now`; after it, another node may take the recipient.
    pub fn holds_at(&self, now: UnixTime) -> bool {
        self.until > now
    }
}

/// Recipients of one message at one domain, claimed for one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueGroup {
    pub message_id: QueueMessageId,
    pub domain: String,
    pub recipients: Vec<QueueRecipientId>,
}

/// The TLS of an attempt as recorded: the rule followed and `version cipher`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptTls {
    /// `none`, `opportunistic`, `mta-sts`, `dane`.
    pub policy: String,
    /// `TLSv1.3 TLS13_AES_256_GCM_SHA384`; `None` for plaintext.
    pub detail: Option<String>,
}

/// What an attempt came to for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        remote_mta: Option<String>,
        tls: Option<AttemptTls>,
    },
    Failed {
        status: String,
        diagnostic: String,
        remote_mta: Option<String>,
        tls: Option<AttemptTls>,
        /// Whether a failure notice goes to the sender (not for the null reverse-path).
        notify: bool,
    },
    Deferred {
        next_attempt_at: UnixTime,
        status: String,
        diagnostic: String,
        remote_mta: Option<String>,
        tls: Option<AttemptTls>,
        /// Whether a delay warning goes to the sender now (only once per recipient).
        warn_delay: bool,
    },
}

const MESSAGE_COLUMNS: &str =
    "id, queue_id, customer_id, mailbox_id, return_path, blob_id, size, created_at, expires_at, tls_demand";
const RECIPIENT_COLUMNS: &str = "id, message_id, address, state, attempts, next_attempt_at, last_attempt_at, \
     status, diagnostic, remote_mta, tls, tls_policy, notify, delay_warned, locked_by, locked_until";

fn message_from_row(row: &AnyRow) -> Result<QueuedMessage, sqlx::Error> {
    Ok(QueuedMessage {
        id: row.try_get("id")?,
        queue_id: row.try_get("queue_id")?,
        customer_id: row.try_get("customer_id")?,
        mailbox_id: row.try_get("mailbox_id")?,
        return_path: row
            .try_get::<Option<String>, _>("return_path")?
            .map(|a| decode(a, EmailAddress::parse))
            .transpose()?,
        blob: decode(row.try_get("blob_id")?, BlobId::parse)?,
        size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
        created_at: UnixTime(row.try_get("created_at")?),
        expires_at: UnixTime(row.try_get("expires_at")?),
        recipients: Vec::new(),
        tls_demand: row.try_get("tls_demand")?,
    })
}

fn recipient_from_row(row: &AnyRow) -> Result<(QueueMessageId, QueuedRecipient), sqlx::Error> {
    Ok((
        row.try_get("message_id")?,
        QueuedRecipient {
            id: row.try_get("id")?,
            address: decode(row.try_get("address")?, EmailAddress::parse)?,
            state: decode(row.try_get("state")?, parse_state)?,
            attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
            next_attempt_at: UnixTime(row.try_get("next_attempt_at")?),
            last_attempt_at: row.try_get::<Option<i64>, _>("last_attempt_at")?.map(UnixTime),
            status: row.try_get("status")?,
            diagnostic: row.try_get("diagnostic")?,
            remote_mta: row.try_get("remote_mta")?,
            tls: row.try_get("tls")?,
            tls_policy: row.try_get("tls_policy")?,
            notify: row.try_get::<Option<String>, _>("notify")?.map(|n| decode(n, parse_notice)).transpose()?,
            delay_warned: row.try_get::<i64, _>("delay_warned")? != 0,
            claim: match row.try_get::<Option<String>, _>("locked_by")? {
                Some(node) => {
                    Some(Claim { node: decode(node, NodeName::parse)?, until: UnixTime(row.try_get("locked_until")?) })
                }
                None => None,
            },
        },
    ))
}

impl Store {
    /// Puts a message into the queue, every recipient due at once. Durable on return.
    pub async fn enqueue(&self, message: &NewQueuedMessage) -> Result<QueueMessageId, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO queue_messages (queue_id, customer_id, mailbox_id, return_path, blob_id, size, created_at, \
             expires_at, tls_demand) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&message.queue_id)
        .bind(message.customer_id)
        .bind(message.mailbox_id)
        .bind(message.return_path.as_ref().map(ToString::to_string))
        .bind(message.blob.as_str())
        .bind(i64::try_from(message.size).unwrap_or(i64::MAX))
        .bind(message.created_at.0)
        .bind(message.expires_at.0)
        .bind(message.tls_demand.clone())
        .fetch_one(&mut *tx)
        .await?;
        let id: QueueMessageId = row.try_get("id")?;
        for recipient in &message.recipients {
            sqlx::query(
                "INSERT INTO queue_recipients (message_id, address, domain, state, next_attempt_at) \
                 VALUES ($1, $2, $3, 'queued', $4)",
            )
            .bind(id)
            .bind(recipient.to_string())
            .bind(recipient.domain().as_str())
            .bind(message.created_at.0)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Claims for `node` the due recipients of up to `messages` messages (the oldest due
    /// first), with a lease until `lease_until`, in one transaction; grouped by message and
    /// domain (one delivery attempt each). Recipients another node holds are passed by.
    pub async fn queue_claim_due(
        &self,
        node: &NodeName,
        now: UnixTime,
        lease_until: UnixTime,
        messages: u32,
    ) -> Result<Vec<DueGroup>, StoreError> {
        // The innermost select picks the messages; the middle one locks their due
        // recipients, skipping rows a concurrent claim has locked (PostgreSQL; SQLite's
        // BEGIN IMMEDIATE already keeps every other writer out). The outer conditions are
        // checked again on the newest row version, so a recipient claimed and committed
        // meanwhile is never claimed twice.
        let skip_locked = match self.backend() {
            crate::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let due = "state = 'queued' AND next_attempt_at <= $3 AND locked_until <= $3";
        let sql = format!(
            "UPDATE queue_recipients SET locked_until = $1, locked_by = $2 WHERE id IN (\
               SELECT id FROM queue_recipients WHERE {due} AND message_id IN (\
                 SELECT message_id FROM queue_recipients WHERE {due} ORDER BY next_attempt_at, id LIMIT $4) \
               {skip_locked}) \
             AND {due} RETURNING id, message_id, domain"
        );
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(lease_until.0)
            .bind(node.as_str())
            .bind(now.0)
            .bind(i64::from(messages))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut groups: BTreeMap<(QueueMessageId, String), Vec<QueueRecipientId>> = BTreeMap::new();
        for row in &rows {
            groups.entry((row.try_get("message_id")?, row.try_get("domain")?)).or_default().push(row.try_get("id")?);
        }
        Ok(groups
            .into_iter()
            .map(|((message_id, domain), mut recipients)| {
                recipients.sort();
                DueGroup { message_id, domain, recipients }
            })
            .collect())
    }

    /// Extends `node`'s claims on these recipients to `lease_until` (the heartbeat of
    /// running attempts). Returns how many it still held; a claim that ran out and was
    /// taken by another node is not renewed.
    pub async fn queue_renew_claims(
        &self,
        node: &NodeName,
        recipients: &[QueueRecipientId],
        lease_until: UnixTime,
    ) -> Result<u64, StoreError> {
        let mut renewed = 0;
        let mut tx = self.begin_write().await?;
        for chunk in recipients.chunks(100) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "UPDATE queue_recipients SET locked_until = $1 WHERE locked_by = $2 AND state = 'queued' AND id IN ({})",
                list.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(lease_until.0).bind(node.as_str());
            for id in chunk {
                query = query.bind(*id);
            }
            renewed += query.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(renewed)
    }

    /// Releases `node`'s claims, and claims from before claims named their node. Only for
    /// the start of that node's queue runner, when none of its attempts can be running: an
    /// attempt cut short by a crash is then retried at once. Other nodes' claims stay.
    pub async fn queue_release_claims(&self, node: &NodeName) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE queue_recipients SET locked_until = 0, locked_by = NULL \
             WHERE locked_until <> 0 AND (locked_by = $1 OR locked_by IS NULL)",
        )
        .bind(node.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// One queued message with its recipients, for the platform (delivery workers).
    pub async fn queue_message(&self, id: QueueMessageId) -> Result<Option<QueuedMessage>, StoreError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {MESSAGE_COLUMNS} FROM queue_messages WHERE id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let mut message = message_from_row(&row)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECIPIENT_COLUMNS} FROM queue_recipients WHERE message_id = $1 ORDER BY id"
        )))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            message.recipients.push(recipient_from_row(row)?.1);
        }
        Ok(Some(message))
    }

    /// Records the outcomes of one attempt by `node` and releases its claims, in one
    /// transaction. A recipient that is no longer queued, or that another node has claimed
    /// since (this node's lease ran out), is left as it is. The attempt's TLS outcome, if
    /// it tried TLS with a remote server, is counted for the destination's daily TLS report
    /// in the same transaction (`tls_rpt_out.rs`), and each recipient that ended goes into
    /// its mailbox's sent-mail log (`sent_log.rs`). Returns how many were recorded.
    pub async fn queue_record(
        &self,
        node: &NodeName,
        now: UnixTime,
        outcomes: &[(QueueRecipientId, Outcome)],
        tls_outcome: Option<&crate::tls_rpt_out::TlsOutcome>,
    ) -> Result<u64, StoreError> {
        let mut recorded = 0;
        let mut tx = self.begin_write().await?;
        for (id, outcome) in outcomes {
            let query = match outcome {
                Outcome::Delivered { remote_mta, tls } => sqlx::query(
                    "UPDATE queue_recipients SET state = 'delivered', attempts = attempts + 1, last_attempt_at = $1, \
                     finished_at = $1, status = '2.0.0', diagnostic = NULL, remote_mta = $2, tls = $3, \
                     tls_policy = $4, locked_until = 0, locked_by = NULL, notify = NULL WHERE id = $5 \
                     AND state = 'queued' AND (locked_by = $6 OR locked_by IS NULL)",
                )
                .bind(now.0)
                .bind(remote_mta.clone())
                .bind(tls.as_ref().and_then(|t| t.detail.clone()))
                .bind(tls.as_ref().map(|t| t.policy.clone())),
                Outcome::Failed { status, diagnostic, remote_mta, tls, notify } => sqlx::query(
                    "UPDATE queue_recipients SET state = 'failed', attempts = attempts + 1, last_attempt_at = $1, \
                     finished_at = $1, status = $2, diagnostic = $3, remote_mta = $4, tls = $5, tls_policy = $6, \
                     locked_until = 0, locked_by = NULL, notify = $7 WHERE id = $8 \
                     AND state = 'queued' AND (locked_by = $9 OR locked_by IS NULL)",
                )
                .bind(now.0)
                .bind(status.clone())
                .bind(diagnostic.clone())
                .bind(remote_mta.clone())
                .bind(tls.as_ref().and_then(|t| t.detail.clone()))
                .bind(tls.as_ref().map(|t| t.policy.clone()))
                .bind(notify.then_some(Notice::Failed.as_str())),
                Outcome::Deferred { next_attempt_at, status, diagnostic, remote_mta, tls, warn_delay } => sqlx::query(
                    "UPDATE queue_recipients SET attempts = attempts + 1, last_attempt_at = $1, \
                     next_attempt_at = $2, status = $3, diagnostic = $4, remote_mta = $5, tls = $6, tls_policy = $7, \
                     locked_until = 0, locked_by = NULL, notify = CASE WHEN $8 = 1 THEN 'delayed' ELSE notify END, \
                     delay_warned = CASE WHEN $8 = 1 THEN 1 ELSE delay_warned END WHERE id = $9 \
                     AND state = 'queued' AND (locked_by = $10 OR locked_by IS NULL)",
                )
                .bind(now.0)
                .bind(next_attempt_at.0)
                .bind(status.clone())
                .bind(diagnostic.clone())
                .bind(remote_mta.clone())
                .bind(tls.as_ref().and_then(|t| t.detail.clone()))
                .bind(tls.as_ref().map(|t| t.policy.clone()))
                .bind(crate::db::flag(*warn_delay)),
            };
            let done = query.bind(*id).bind(node.as_str()).execute(&mut *tx).await?.rows_affected();
            if done == 1 && !matches!(outcome, Outcome::Deferred { .. }) {
                crate::sent_log::log_ended(&mut tx, *id, now).await?;
            }
            recorded += done;
        }
        if let Some(outcome) = tls_outcome {
            crate::tls_rpt_out::count(&mut tx, crate::tls_rpt_out::day_of(now.0), outcome).await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Messages with recipients that owe the sender a notice, each with all its recipients.
    pub async fn queue_notices(&self, limit: u32) -> Result<Vec<QueuedMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT message_id FROM queue_recipients WHERE notify IS NOT NULL ORDER BY message_id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut messages = Vec::new();
        for row in &rows {
            if let Some(message) = self.queue_message(row.try_get("message_id")?).await? {
                messages.push(message);
            }
        }
        Ok(messages)
    }

    /// Marks the notices of these recipients as handed on.
    pub async fn queue_notices_sent(&self, recipients: &[QueueRecipientId]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for id in recipients {
            sqlx::query("UPDATE queue_recipients SET notify = NULL WHERE id = $1").bind(*id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Messages that are done: no recipient queued, no notice owed. Returns (id, blob).
    pub async fn queue_finished(&self, limit: u32) -> Result<Vec<(QueueMessageId, BlobId)>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.blob_id FROM queue_messages m WHERE NOT EXISTS (SELECT 1 FROM queue_recipients r \
             WHERE r.message_id = m.id AND (r.state = 'queued' OR r.notify IS NOT NULL)) ORDER BY m.id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, decode(r.try_get("blob_id")?, BlobId::parse)?))).collect()
    }

    /// Removes a message and its recipients (the caller deletes the blob afterwards).
    pub async fn queue_delete(&self, id: QueueMessageId) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM queue_recipients WHERE message_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM queue_messages WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Of the given spool blob ids, those no queued message refers to (for the sweep).
    pub async fn queue_unreferenced_blobs(&self, candidates: Vec<BlobId>) -> Result<Vec<BlobId>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let used = "SELECT 1 AS one FROM queue_messages WHERE blob_id = $1 LIMIT 1";
        Ok(crate::db::unreferenced_blobs(&mut conn, used, candidates).await?)
    }

    /// The queue as `scope` sees it, oldest first, with every recipient.
    pub async fn queue_list(&self, scope: Scope) -> Result<Vec<QueuedMessage>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM queue_messages WHERE ($1 IS NULL OR customer_id = $1) ORDER BY id"
        )))
        .bind(scope.customer_filter())
        .fetch_all(&self.pool)
        .await?;
        let mut messages: Vec<QueuedMessage> = rows.iter().map(message_from_row).collect::<Result<_, _>>()?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECIPIENT_COLUMNS} FROM queue_recipients WHERE message_id IN \
             (SELECT id FROM queue_messages WHERE ($1 IS NULL OR customer_id = $1)) ORDER BY id"
        )))
        .bind(scope.customer_filter())
        .fetch_all(&self.pool)
        .await?;
        let mut by_message: BTreeMap<QueueMessageId, Vec<QueuedRecipient>> = BTreeMap::new();
        for row in &rows {
            let (message_id, recipient) = recipient_from_row(row)?;
            by_message.entry(message_id).or_default().push(recipient);
        }
        for message in &mut messages {
            message.recipients = by_message.remove(&message.id).unwrap_or_default();
        }
        Ok(messages)
    }

    /// Makes every waiting recipient of the message `queue_id` due now. Returns how many.
    pub async fn queue_retry(&self, scope: Scope, queue_id: &str) -> Result<u64, StoreError> {
        let id = self.queue_find(scope, queue_id).await?;
        Ok(sqlx::query("UPDATE queue_recipients SET next_attempt_at = $1 WHERE message_id = $2 AND state = 'queued'")
            .bind(UnixTime::now().0)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Removes the message `queue_id` without notifying anyone. Returns its spool blob id,
    /// for the caller to delete.
    pub async fn queue_remove(&self, scope: Scope, queue_id: &str) -> Result<BlobId, StoreError> {
        let id = self.queue_find(scope, queue_id).await?;
        let blob: String = sqlx::query("SELECT blob_id FROM queue_messages WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?
            .try_get("blob_id")?;
        let blob = decode(blob, BlobId::parse)?;
        self.queue_delete(id).await?;
        Ok(blob)
    }

    async fn queue_find(&self, scope: Scope, queue_id: &str) -> Result<QueueMessageId, StoreError> {
        let row = sqlx::query("SELECT id FROM queue_messages WHERE queue_id = $1 AND ($2 IS NULL OR customer_id = $2)")
            .bind(queue_id)
            .bind(scope.customer_filter())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(row.try_get("id")?),
            None => Err(StoreError::NotFound(format!(
                "there is no message {queue_id} in the queue (delivered or removed already?); see: postfach queue list"
            ))),
        }
    }
}
