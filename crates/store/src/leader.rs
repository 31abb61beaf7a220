//! Which node runs the cluster's periodic jobs (sweeps, DNS re-checks, notices).
//!
//! On PostgreSQL the leader is the node that holds the session advisory lock
//! `pg_try_advisory_lock(0x4C454144 ('LEAD'), 0)`, taken on a connection of its own (not
//! from the pool, so that no other query can release or share it). The leader pings that
//! connection every [`PING`]; when a ping fails or takes longer than [`PING_TIMEOUT`] it
//! stops being leader at once and contends again after a backoff longer than [`RETRY`], so
//! that another node takes over first. The server ends a
//! session that stays idle for [`IDLE_SESSION_TIMEOUT`] (longer than a ping timeout), so
//! a hung or cut-off leader loses the lock soon after it has stopped acting as leader.
//! Other nodes try for the lock every [`RETRY`]. On SQLite there is one node, always leader.
//!
//! Jobs ask [`Leader::is_leader`] before each round (and between the steps of a long one).
//! When leadership moves, a round may overlap the new leader's first one by at most a
//! step: the jobs are idempotent, only repeated.

use std::future::Future;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

use crate::{Backend, Store};

/// The advisory lock's key: class `'LEAD'` (0x4C454144) and object 0.
const LOCK_CLASS: i32 = 0x4C45_4144;
const LOCK_OBJECT: i32 = 0;
/// How often a node that is not leader tries for the lock.
pub const RETRY: Duration = Duration::from_secs(3);
/// How often the leader checks that its connection still holds the lock.
pub const PING: Duration = Duration::from_secs(1);
/// A ping (or a lock attempt) that takes longer counts as a broken connection.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// The leader connection's `application_name`, as operators see it in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "postfach-leader";
/// PostgreSQL ends the lock's session when it has heard nothing for this long.
pub const IDLE_SESSION_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest pause before reconnecting after a broken or failed connection.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Whether this node is the cluster's leader now. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Leader {
    state: watch::Receiver<bool>,
}

impl Leader {
    /// A node that is always leader: SQLite, or a test with one node.
    pub fn always() -> Leader {
        let (_, state) = watch::channel(true);
        Leader { state }
    }

    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// Waits until this node is leader (at once if it is). Never returns once the
    /// election has ended (the server stops) without it.
    pub async fn acquired(&mut self) {
        if self.is_leader() {
            return;
        }
        if self.state.wait_for(|leader| *leader).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Starts the election for this node: returns the [`Leader`] the jobs ask and the task
/// that must run (until `stopped`) for it to be decided. On SQLite the node is leader and
/// the task ends at once.
pub fn elect(store: &Store, stopped: watch::Receiver<bool>) -> (Leader, impl Future<Output = ()> + Send + 'static) {
    let (tx, state) = watch::channel(store.backend() == Backend::Sqlite);
    let url = (store.backend() == Backend::Postgres).then(|| store.pool.connect_options().database_url.clone());
    let task = async move {
        if let Some(url) = url {
            contend(url.as_str(), &tx, stopped).await;
            let _ = tx.send(false);
        }
    };
    (Leader { state }, task)
}

/// Connects, tries for the lock, holds it while the connection lives; again after a
/// broken connection, with a backoff that grows to [`MAX_BACKOFF`].
async fn contend(url: &str, leader: &watch::Sender<bool>, mut stopped: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(1);
    while !*stopped.borrow() {
        let mut conn = match crate::db::dedicated_connection(url, APPLICATION_NAME, PING_TIMEOUT).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_secs = backoff.as_secs(), "cannot connect for the leader election");
                if pause(backoff, &mut stopped).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        // A session nobody hears from is ended by the server, which frees the lock.
        let idle = format!("SET idle_session_timeout = '{}s'", IDLE_SESSION_TIMEOUT.as_secs());
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(idle)).execute(&mut conn).await {
            tracing::warn!(error = %e, "cannot bound the leader session's idle time (PostgreSQL 14 or newer has it)");
        }
        loop {
            match with_timeout(try_lock(&mut conn)).await {
                Ok(true) => {
                    let _ = leader.send(true);
                    tracing::info!("this node is now the cluster's leader: it runs the periodic jobs");
                    let lost = hold(&mut conn, &mut stopped).await;
                    let _ = leader.send(false);
                    if !lost {
                        // Stopping: give the lock back at once rather than when the
                        // server notices the closed connection.
                        let _ = conn.close().await;
                        return;
                    }
                    tracing::warn!("the leader's database connection broke: this node is no longer leader");
                    // Contend again only after the others had their turn: a node whose
                    // connection broke should not win the lock back from healthy ones.
                    backoff = backoff.max(RETRY * 2);
                    break;
                }
                Ok(false) => {
                    if pause(RETRY, &mut stopped).await {
                        let _ = conn.close().await;
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the leader election's connection broke; reconnecting");
                    break;
                }
            }
        }
        if pause(backoff, &mut stopped).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let sql = format!("SELECT pg_try_advisory_lock({LOCK_CLASS}, {LOCK_OBJECT})");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(conn).await
}

/// Pings the connection that holds the lock until it breaks (`true`) or the node stops
/// (`false`).
async fn hold(conn: &mut PgConnection, stopped: &mut watch::Receiver<bool>) -> bool {
    loop {
        if pause(PING, stopped).await {
            return false;
        }
        let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut *conn);
        if let Err(e) = with_timeout(ping).await {
            tracing::warn!(error = %e, "the leader's ping failed");
            return true;
        }
    }
}

async fn with_timeout<T>(query: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, sqlx::Error> {
    tokio::time::timeout(PING_TIMEOUT, query).await.unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

/// Sleeps for `duration`; `true` when the node stops meanwhile (or has stopped).
async fn pause(duration: Duration, stopped: &mut watch::Receiver<bool>) -> bool {
    if *stopped.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(duration) => *stopped.borrow(),
        _ = stopped.changed() => true,
    }
}
