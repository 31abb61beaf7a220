//! Locks held for the length of a session across every node (the POP3 `[IN-USE]` lock).
//!
//! On PostgreSQL a lock is a session-level advisory lock in the two-key form
//! `pg_try_advisory_lock(class, id)`, taken on ONE connection per node that only this
//! module uses (not a pool connection per session). PostgreSQL frees every lock of a
//! connection when it ends, so a node that dies frees its locks at once (a vanished
//! machine: when PostgreSQL's TCP keepalive gives up). The two-key form lives in its own
//! key space: it never collides with single-key advisory locks, and the class keeps
//! apart the users of the two-key form. On SQLite (one node) every lock is granted here;
//! the caller's in-process lock is the whole story.
//!
//! When the connection breaks, its locks are gone and are NOT taken again: every lock
//! taken on it is lost (its generation is over), and a session must [`SessionLock::confirm`]
//! before acting on its exclusivity (POP3 before deleting at QUIT). A lost lock is
//! refused there, and the session ends without acting. The next lock request connects
//! again.

use std::sync::Arc;
use std::time::Duration;

use postfach_types::Secret;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::{Store, StoreError};

/// The class of POP3 maildrop locks ("POP3" in ASCII); the second key is the mailbox id.
pub const POP3_LOCK_CLASS: i32 = 0x504F_5033;
/// The lock connection's `application_name`, as operators see it in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "postfach-session-locks";
/// The longest wait for the lock connection to connect or answer.
const DEADLINE: Duration = Duration::from_secs(10);

/// A node's session locks. Cheap to clone; all clones share one connection.
#[derive(Debug, Clone)]
pub struct SessionLocks {
    keeper: Option<Arc<Keeper>>,
}

/// A held lock; released when dropped, however the session ends.
#[derive(Debug)]
pub struct SessionLock {
    keeper: Option<Arc<Keeper>>,
    key: (i32, i32),
    generation: u64,
}

#[derive(Debug)]
struct Keeper {
    url: Arc<Secret<String>>,
    line: tokio::sync::Mutex<Line>,
}

/// The lock connection and its generation (counted up each time a connection ends).
struct Line {
    conn: Option<PgConnection>,
    generation: u64,
}

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Line").field("connected", &self.conn.is_some()).field("generation", &self.generation).finish()
    }
}

impl Store {
    /// This node's session locks: call once per node (each call opens its own connection
    /// on first use).
    pub fn session_locks(&self) -> SessionLocks {
        let keeper = self
            .postgres_url
            .clone()
            .map(|url| Arc::new(Keeper { url, line: tokio::sync::Mutex::new(Line { conn: None, generation: 0 }) }));
        SessionLocks { keeper }
    }
}

impl SessionLocks {
    /// Locks for a node that shares its database with no other (every lock granted).
    pub fn single_node() -> Self {
        Self { keeper: None }
    }

    /// The lock on (`class`, `id`) for every node, or `None` when a session anywhere
    /// holds it. Ids beyond 32 bits share a key with their low 32 bits (a needless
    /// refusal at worst).
    pub async fn try_lock(&self, class: i32, id: i64) -> Result<Option<SessionLock>, StoreError> {
        let Some(keeper) = self.keeper.clone() else {
            return Ok(Some(SessionLock { keeper: None, key: (class, 0), generation: 0 }));
        };
        #[allow(clippy::cast_possible_truncation)] // The low 32 bits, by design.
        let key = (class, id as u32 as i32);
        // Run apart from the caller: a session dropped mid-request must not leave a lock
        // taken on the server that nobody would release.
        tokio::spawn(keeper.try_lock(key))
            .await
            .map_err(|_| StoreError::Conflict("the session lock request was interrupted".into()))?
    }
}

impl Keeper {
    async fn try_lock(self: Arc<Self>, key: (i32, i32)) -> Result<Option<SessionLock>, StoreError> {
        let mut line = self.line.lock().await;
        // A connection that died while idle fails its first query: connect again, once.
        for retry in [true, false] {
            let conn = line.connected(&self.url).await?;
            let taken = tokio::time::timeout(
                DEADLINE,
                sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, $2)")
                    .bind(key.0)
                    .bind(key.1)
                    .fetch_one(&mut *conn),
            )
            .await;
            match taken {
                Ok(Ok(true)) => {
                    let generation = line.generation;
                    return Ok(Some(SessionLock { keeper: Some(self.clone()), key, generation }));
                }
                Ok(Ok(false)) => return Ok(None),
                Ok(Err(e)) if retry => tracing::warn!(error = %e, "the session-lock connection failed; reconnecting"),
                Ok(Err(e)) => {
                    line.hang_up();
                    return Err(e.into());
                }
                Err(_) if retry => tracing::warn!("the session-lock connection did not answer; reconnecting"),
                Err(_) => {
                    line.hang_up();
                    return Err(StoreError::Conflict("the database did not answer the lock request in time".into()));
                }
            }
            line.hang_up();
        }
        Ok(None)
    }

    async fn unlock(&self, key: (i32, i32), generation: u64) {
        let mut line = self.line.lock().await;
        if line.generation != generation {
            return; // That connection is gone, and its locks with it.
        }
        let Some(conn) = line.conn.as_mut() else { return };
        let done = tokio::time::timeout(
            DEADLINE,
            sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1, $2)").bind(key.0).bind(key.1).fetch_one(conn),
        )
        .await;
        match done {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => tracing::warn!(class = key.0, id = key.1, "a session lock was not held at release"),
            // Ending the connection frees the lock (and this node's other locks, whose
            // sessions then find them lost).
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "releasing a session lock failed; closing the lock connection");
                line.hang_up();
            }
            Err(_) => {
                tracing::warn!("releasing a session lock timed out; closing the lock connection");
                line.hang_up();
            }
        }
    }

    async fn confirm(&self, generation: u64) -> bool {
        let mut line = self.line.lock().await;
        if line.generation != generation {
            return false;
        }
        let Some(conn) = line.conn.as_mut() else { return false };
        // The connection that took the lock is still alive, so the lock is still held.
        match tokio::time::timeout(DEADLINE, conn.ping()).await {
            Ok(Ok(())) => true,
            _ => {
                line.hang_up();
                false
            }
        }
    }
}

impl Line {
    async fn connected(&mut self, url: &Secret<String>) -> Result<&mut PgConnection, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(crate::db::dedicated_connection(url.expose(), APPLICATION_NAME, DEADLINE).await?);
        }
        self.conn.as_mut().ok_or_else(|| StoreError::Conflict("no lock connection".into()))
    }

    /// Drops the connection: PostgreSQL frees its locks, and they are all lost here.
    fn hang_up(&mut self) {
        if self.conn.take().is_some() {
            self.generation += 1;
        }
    }
}

impl SessionLock {
    /// Whether the lock is still held (asks the database): call before acting on the
    /// exclusivity. `false` once its connection broke, even if it came back.
    pub async fn confirm(&self) -> bool {
        match &self.keeper {
            Some(keeper) => keeper.confirm(self.generation).await,
            None => true,
        }
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        let Some(keeper) = self.keeper.take() else { return };
        let (key, generation) = (self.key, self.generation);
        // Without a runtime the process is ending, and its connection with it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { keeper.unlock(key, generation).await });
        }
    }
}
