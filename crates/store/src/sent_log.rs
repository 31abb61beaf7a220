//! What happened to each recipient of mail sent from a mailbox, kept after the queue has
//! forgotten the message: when, to whom, delivered or not, the receiving server and the
//! encryption used. The panel's "Sent mail" list and the API show it, flagging every
//! delivery to another server without encryption (as the login list flags logins).
//!
//! One row per recipient that ended (delivered, or failed for good), written in the
//! transaction that records the attempt (`Store::queue_record`); mail the platform writes
//! itself (notices, reports) has no mailbox and is not listed. Kept as long as the login
//! log (`[security] login_log_retention_days`), pruned by the leader's upkeep.

use postfach_types::{MailboxId, UnixTime};
use sqlx::Row;

use crate::{QueueRecipientId, Scope, Store, StoreError};

/// The most entries listed per mailbox (newest first).
pub const MAX_LISTED: i64 = 100;

/// One recipient of a sent message, once its delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEntry {
    pub at: UnixTime,
    pub recipient: String,
    pub delivered: bool,
    /// The enhanced status code (`2.0.0`, `5.1.1` …).
    pub status: Option<String>,
    /// Why it failed (the receiving server's reply, or ours).
    pub diagnostic: Option<String>,
    /// The receiving server (`mx.example.net[192.0.2.1]`); `None`: delivered here, to a
    /// mailbox of this platform, or failed before a server was reached.
    pub remote_mta: Option<String>,
    /// The TLS version and cipher used; `None`: no encryption (or no network).
    pub tls: Option<String>,
    /// The rule followed (`opportunistic`, `mta-sts`, `dane`, …).
    pub tls_policy: Option<String>,
}

impl SentEntry {
    /// Went to another server without encryption.
    pub fn unencrypted(&self) -> bool {
        self.remote_mta.is_some() && self.tls.is_none()
    }
}

/// Logs the recipient `id` if its delivery has ended (called right after recording it) and
/// its mailbox still exists: mail that outlives its mailbox is not written to the list of
/// a later mailbox that got the same id.
pub(crate) async fn log_ended(
    conn: &mut sqlx::AnyConnection,
    id: QueueRecipientId,
    now: UnixTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sent_log (customer_id, mailbox_id, recipient, at, delivered, status, diagnostic, remote_mta, \
         tls, tls_policy) \
         SELECT m.customer_id, m.mailbox_id, r.address, $1, CASE WHEN r.state = 'delivered' THEN 1 ELSE 0 END, \
         r.status, r.diagnostic, r.remote_mta, r.tls, r.tls_policy \
         FROM queue_recipients r JOIN queue_messages m ON m.id = r.message_id \
         JOIN mailboxes mb ON mb.id = m.mailbox_id AND mb.customer_id = m.customer_id \
         WHERE r.id = $2 AND r.state IN ('delivered', 'failed')",
    )
    .bind(now.0)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// The mailbox's sent mail in `scope`, newest first, at most [`MAX_LISTED`].
    pub async fn sent_mail(&self, scope: Scope, mailbox: MailboxId) -> Result<Vec<SentEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, recipient, delivered, status, diagnostic, remote_mta, tls, tls_policy FROM sent_log \
             WHERE mailbox_id = $1 AND ($2 IS NULL OR customer_id = $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(mailbox)
        .bind(scope.customer_filter())
        .bind(MAX_LISTED)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SentEntry {
                    at: UnixTime(r.try_get("at")?),
                    recipient: r.try_get("recipient")?,
                    delivered: r.try_get::<i64, _>("delivered")? != 0,
                    status: r.try_get("status")?,
                    diagnostic: r.try_get("diagnostic")?,
                    remote_mta: r.try_get("remote_mta")?,
                    tls: r.try_get("tls")?,
                    tls_policy: r.try_get("tls_policy")?,
                })
            })
            .collect()
    }

    /// Forgets entries older than `before`. Returns how many.
    pub async fn prune_sent_log(&self, before: UnixTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sent_log WHERE at < $1").bind(before.0).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
