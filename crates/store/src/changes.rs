//! Change announcements between nodes: what one node commits, IDLE sessions on every
//! node hear about.
//!
//! Every message change ends in [`Store::commit_and_announce`]: on PostgreSQL it adds a
//! `NOTIFY` on [`CHANNEL`] to the committing transaction (PostgreSQL delivers it at
//! commit, never for a rollback), commits, and then wakes this node's subscribers at
//! once. Each node runs one [`Store::relay_changes`] task that listens on the channel and
//! feeds what other nodes announced into the same local broadcast. A lost listening
//! connection may have missed announcements, so after every (re)connection every
//! subscriber is woken ([`MailboxChange::Missed`]) to look for itself. On SQLite (one
//! node) there is nothing to relay.
//!
//! A payload is `ORIGIN MAILBOX:FOLDER …` (decimal numbers), at most [`PAYLOAD_MAX`]
//! bytes; longer lists go out as several notifications. The origin is the announcing
//! handle's random id, so a node skips its own announcements (it woke its sessions
//! already). Anything unreadable in a payload is ignored. `ORIGIN revoked` announces that
//! an app password was revoked (`app_passwords.rs`); a lost listening connection counts
//! as one too.

use std::collections::BTreeSet;
use std::time::Duration;

use postfach_types::{FolderId, MailboxId};
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::db::Tx;
use crate::messages::MailboxChange;
use crate::{Store, StoreError};

/// The `LISTEN`/`NOTIFY` channel of message changes.
pub const CHANNEL: &str = "postfach_changes";
/// The word announcing that an app password was revoked.
const REVOKED: &str = "revoked";
/// The longest payload sent (PostgreSQL allows just under 8000 bytes).
const PAYLOAD_MAX: usize = 7000;
/// The first wait before listening again after a lost connection; it doubles up to
/// [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

impl Store {
    /// Commits `tx` with the announcement that `changed` folders changed: to other nodes
    /// through the database (delivered at commit), then to this node's subscribers. Every
    /// message change ends here.
    pub(crate) async fn commit_and_announce(
        &self,
        mut tx: Tx,
        changed: &[(MailboxId, FolderId)],
    ) -> Result<(), StoreError> {
        let changed: BTreeSet<(MailboxId, FolderId)> = changed.iter().copied().collect();
        if self.is_shared() {
            for payload in payloads(self.origin, &changed) {
                sqlx::query("SELECT 1 AS sent FROM pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(payload)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        for (mailbox_id, folder_id) in changed {
            self.notify(MailboxChange::Folder { mailbox_id, folder_id });
        }
        Ok(())
    }

    /// Commits `tx`, which revoked an app password, and bumps the revocation counter
    /// here and (through the database, at commit) on every other node: the payload
    /// `ORIGIN revoked`.
    pub(crate) async fn announce_revocation(&self, mut tx: Tx) -> Result<(), StoreError> {
        if self.is_shared() {
            sqlx::query("SELECT 1 AS sent FROM pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(format!("{} {REVOKED}", self.origin))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.revocations.bump();
        Ok(())
    }

    /// Relays other nodes' announcements to this node's subscribers until `stopped`
    /// changes. Returns at once on SQLite. One per node (`Server::start` runs it).
    pub async fn relay_changes(self, mut stopped: watch::Receiver<bool>) {
        let Some(url) = self.postgres_url.clone() else { return };
        let mut wait = RECONNECT_FIRST;
        loop {
            match listen(url.expose()).await {
                Ok(mut listener) => {
                    wait = RECONNECT_FIRST;
                    // Whatever was announced while nobody listened is unknown.
                    self.notify(MailboxChange::Missed);
                    self.revocations.bump();
                    loop {
                        tokio::select! {
                            _ = stopped.changed() => return,
                            received = listener.try_recv() => match received {
                                Ok(Some(notification)) => self.relay(notification.payload()),
                                Ok(None) => {
                                    tracing::warn!("the change listener lost its database connection; reconnecting");
                                    break;
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "the change listener failed; reconnecting");
                                    break;
                                }
                            },
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for changes on other nodes; retrying"),
            }
            tokio::select! {
                _ = stopped.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(RECONNECT_MAX);
        }
    }

    /// Wakes the subscribers for each change another node announced in `payload`.
    fn relay(&self, payload: &str) {
        let mut words = payload.split(' ');
        if words.next().and_then(|w| w.parse::<u64>().ok()).is_none_or(|origin| origin == self.origin) {
            return;
        }
        for word in words {
            if word == REVOKED {
                self.revocations.bump();
                continue;
            }
            let Some((mailbox, folder)) = word.split_once(':') else { continue };
            if let (Ok(mailbox), Ok(folder)) = (mailbox.parse::<i64>(), folder.parse::<i64>()) {
                self.notify(MailboxChange::Folder {
                    mailbox_id: MailboxId::new(mailbox),
                    folder_id: FolderId::new(folder),
                });
            }
        }
    }
}

async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    // Bounded like every connection the store opens outside its pool (`db::dedicated_connection`).
    let connecting = tokio::time::timeout(std::time::Duration::from_secs(10), PgListener::connect(url));
    let mut listener = connecting.await.map_err(|_| {
        sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "the database did not answer in time"))
    })??;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// The payloads announcing `changed`, each at most [`PAYLOAD_MAX`] bytes.
fn payloads(origin: u64, changed: &BTreeSet<(MailboxId, FolderId)>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = origin.to_string();
    let mut pairs = 0;
    for (mailbox, folder) in changed {
        let pair = format!(" {}:{}", mailbox.get(), folder.get());
        if pairs > 0 && current.len() + pair.len() > PAYLOAD_MAX {
            out.push(std::mem::replace(&mut current, origin.to_string()));
            pairs = 0;
        }
        current.push_str(&pair);
        pairs += 1;
    }
    if pairs > 0 {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_split_into_bounded_payloads() {
        let changed: BTreeSet<_> = (1..=2000).map(|i| (MailboxId::new(i), FolderId::new(i * 10))).collect();
        let sent = payloads(42, &changed);
        assert!(sent.len() > 1);
        assert!(sent.iter().all(|p| p.len() <= PAYLOAD_MAX && p.starts_with("42 ")));
        let pairs: usize = sent.iter().map(|p| p.split(' ').count() - 1).sum();
        assert_eq!(pairs, 2000);
        assert!(payloads(42, &BTreeSet::new()).is_empty());
    }
}
