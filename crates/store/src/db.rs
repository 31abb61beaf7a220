//! The connection pool, the two dialects, and helpers shared by the directory modules.

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Transaction};

use postfach_types::BlobId;

use crate::StoreError;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle to the directory. Cheap to clone; all clones share one pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// Message changes, announced after commit (see `messages` and `changes`).
    pub(crate) changes: tokio::sync::broadcast::Sender<crate::messages::MailboxChange>,
    /// This handle's name in change announcements between nodes (random per open), so
    /// that a node's relay skips what it announced itself.
    pub(crate) origin: u64,
    /// The PostgreSQL URL, for the connections outside the pool (the change listener and
    /// the session-lock connection); `None` on SQLite.
    pub(crate) postgres_url: Option<std::sync::Arc<postfach_types::Secret<String>>>,
    /// The hand-over of warning events to the task that writes warning mails
    /// (`warnings`), shared by every clone.
    pub(crate) warnings: crate::warnings::Warnings,
    /// Bumped whenever an app password is revoked, here or on another node
    /// (`app_passwords::Revocations`).
    pub(crate) revocations: crate::app_passwords::Revocations,
}

pub(crate) type Tx = Transaction<'static, sqlx::Any>;

impl Store {
    /// The one row `sql` selects by id (`$1`) within `scope` (`$2` is the scope's customer
    /// filter: `($2 IS NULL OR ….customer_id = $2)`), read by `read`; `NotFound` names
    /// `what` and the id. Every scoped lookup by id goes through here.
    pub(crate) async fn one_in_scope<T, I>(
        &self,
        sql: String,
        id: I,
        scope: crate::Scope,
        what: &str,
        read: fn(&sqlx::any::AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError>
    where
        I: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + std::fmt::Display + Copy + Send + 'static,
    {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(scope.customer_filter())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(read(&row)?),
            None => Err(StoreError::NotFound(format!("there is no {what} with id {id}"))),
        }
    }
}

impl Store {
    /// Opens (and for SQLite creates) the database at `url` and brings its schema up to
    /// date. `url` is `sqlite:///absolute/path` or `postgres://user:pass@host/db`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, connect_url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::BadUrl("the SQLite URL has no file path".into()));
            }
            if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|source| StoreError::Io { path: parent.display().to_string(), source })?;
            }
            (Backend::Sqlite, format!("sqlite://{path}?mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::BadUrl("use sqlite:///path/to/file or postgres://user@host/database".into()));
        };
        let options = AnyConnectOptions::from_str(&connect_url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; FULL makes every commit
                        // durable on return; the CLI and the server share the file.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        let postgres_url =
            (backend == Backend::Postgres).then(|| std::sync::Arc::new(postfach_types::Secret::new(url.to_string())));
        let store = Store {
            pool,
            backend,
            changes,
            origin: rand::random(),
            postgres_url,
            warnings: Default::default(),
            revocations: Default::default(),
        };
        crate::migrations::run(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether several nodes may share this database (PostgreSQL). Then the state they
    /// must agree on (throttle counts, sending allowances, change announcements, POP3
    /// locks) lives in the database; on SQLite (one node) it stays in memory.
    pub fn is_shared(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers queue instead of failing on lock upgrade.
    pub(crate) async fn begin_write(&self) -> Result<Tx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A PostgreSQL connection of its own, outside the pool, for state that lives as long as a
/// session (advisory locks): named `application_name` in `pg_stat_activity`, connected
/// within `within` or refused. The one way the store opens such a connection.
pub(crate) async fn dedicated_connection(
    url: &str,
    application_name: &str,
    within: std::time::Duration,
) -> Result<sqlx::PgConnection, StoreError> {
    use sqlx::ConnectOptions;
    let options: sqlx::postgres::PgConnectOptions =
        url.parse().map_err(|e: sqlx::Error| StoreError::BadUrl(e.to_string()))?;
    let options = options.application_name(application_name);
    match tokio::time::timeout(within, options.connect()).await {
        Ok(connected) => Ok(connected?),
        Err(_) => Err(StoreError::Database(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the database did not answer in time",
        )))),
    }
}

/// A random token of 32 lower-case hex digits (128 bits).
pub(crate) fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// Parses a value the database holds back into its type; a failure means the row was
/// written by something other than Postfach.
pub(crate) fn decode<T, E>(value: String, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<T, sqlx::Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    parse(&value).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Of `candidates`, those for which `used` (a query taking the blob id as `$1` and
/// returning a row while anything still refers to it) returns nothing.
pub(crate) async fn unreferenced_blobs(
    conn: &mut sqlx::AnyConnection,
    used: &'static str,
    candidates: Vec<BlobId>,
) -> Result<Vec<BlobId>, sqlx::Error> {
    let mut orphans = Vec::new();
    for blob in candidates {
        if sqlx::query(used).bind(blob.as_str()).fetch_optional(&mut *conn).await?.is_none() {
            orphans.push(blob);
        }
    }
    Ok(orphans)
}
