//! The panel's and the API's IMAP import jobs: one row per job, with the old server
//! (never its password), who started it, the node that runs it, its state and progress,
//! and a text for the customer when it ends.
//!
//! A mailbox has at most one queued or running job (a partial unique index, so two
//! requests at once cannot both start one). A job is run by the node that took the
//! request; when that node starts again, its jobs still marked queued or running were cut
//! off and become [`JobState::Interrupted`] ([`Store::interrupt_import_jobs`]).
//!
//! A lease, so that a node gone for good does not block its mailboxes: the node renews
//! each of its active jobs well within [`JOB_LEASE_SECS`] ([`Store::renew_import_job`];
//! every progress write renews too). A job not renewed for that long is abandoned: a new
//! start for its mailbox takes its place, and the leader's upkeep marks it interrupted
//! ([`Store::interrupt_abandoned_import_jobs`]). A node that finds its job no longer
//! active stops it.

use postfach_types::{CustomerId, ImportJobId, NodeName, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conflict, MailboxId, Scope, Store, StoreError};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for one of the node's import slots.
    Queued,
    Running,
    Done,
    Failed,
    /// The node stopped while the job ran; starting again (with the password) resumes.
    Interrupted,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> Option<JobState> {
        [JobState::Queued, JobState::Running, JobState::Done, JobState::Failed, JobState::Interrupted]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Queued or running: the job still goes on.
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
}

/// The old server of a job, as the customer gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSource {
    pub host: String,
    pub port: u16,
    /// STARTTLS on a plain connection; else TLS from the first byte.
    pub starttls: bool,
    pub login: String,
}

/// Marks active jobs interrupted at `$1`; the caller adds which (`AND …`, from `$2`).
const INTERRUPT: &str = "UPDATE import_jobs SET state = 'interrupted', current_folder = NULL, finished_at = $1 \
     WHERE state IN ('queued', 'running')";

/// One import job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportJob {
    pub id: ImportJobId,
    pub customer_id: CustomerId,
    pub mailbox_id: MailboxId,
    pub source: JobSource,
    /// Who started it (the panel's display name of the caller).
    pub started_by: String,
    pub node: String,
    pub state: JobState,
    /// Source folders finished.
    pub folders: u64,
    pub copied: u64,
    pub skipped: u64,
    /// Our folder being copied while running.
    pub current_folder: Option<String>,
    pub created_at: UnixTime,
    pub started_at: Option<UnixTime>,
    pub finished_at: Option<UnixTime>,
    /// What happened, for the customer (when it ended).
    pub result: Option<String>,
}

/// Counts and the current folder, written while a job runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobProgress {
    pub folders: u64,
    pub copied: u64,
    pub skipped: u64,
    pub current_folder: Option<String>,
}

/// How long an active job stays its node's without being renewed.
pub const JOB_LEASE_SECS: i64 = 120;

/// The most jobs listed per mailbox (newest first).
pub const MAX_LISTED: i64 = 20;

const SELECT: &str = "SELECT id, customer_id, mailbox_id, host, port, starttls, login, started_by, node, state, \
     folders, copied, skipped, current_folder, created_at, started_at, finished_at, result FROM import_jobs";

fn job_from_row(row: &AnyRow) -> Result<ImportJob, sqlx::Error> {
    let count = |column: &str| -> Result<u64, sqlx::Error> {
        u64::try_from(row.try_get::<i64, _>(column)?).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    let state: String = row.try_get("state")?;
    let state = JobState::parse(&state).ok_or_else(|| sqlx::Error::Decode(format!("job state {state}").into()))?;
    let port = u16::try_from(row.try_get::<i64, _>("port")?).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let time = |column: &str| -> Result<Option<UnixTime>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(column)?.map(UnixTime))
    };
    Ok(ImportJob {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        mailbox_id: row.try_get("mailbox_id")?,
        source: JobSource {
            host: row.try_get("host")?,
            port,
            starttls: row.try_get::<i64, _>("starttls")? != 0,
            login: row.try_get("login")?,
        },
        started_by: row.try_get("started_by")?,
        node: row.try_get("node")?,
        state,
        folders: count("folders")?,
        copied: count("copied")?,
        skipped: count("skipped")?,
        current_folder: row.try_get("current_folder")?,
        created_at: UnixTime(row.try_get("created_at")?),
        started_at: time("started_at")?,
        finished_at: time("finished_at")?,
        result: row.try_get("result")?,
    })
}

fn number(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// Records a queued job for a mailbox in `scope`, run by `node`, leased from `now`.
    /// Refused with [`Conflict::ImportRunning`] while another job of the mailbox is queued
    /// or running and its lease holds; an abandoned one becomes interrupted.
    pub async fn create_import_job(
        &self,
        scope: Scope,
        mailbox: MailboxId,
        source: &JobSource,
        started_by: &str,
        node: &NodeName,
        now: UnixTime,
    ) -> Result<ImportJob, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT customer_id FROM mailboxes WHERE id = $1 AND ($2 IS NULL OR customer_id = $2)")
            .bind(mailbox)
            .bind(scope.customer_filter())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("there is no mailbox with id {mailbox}")));
        };
        let customer: CustomerId = row.try_get("customer_id")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("{INTERRUPT} AND heartbeat_at < $2 AND mailbox_id = $3")))
            .bind(now.0)
            .bind(now.0 - JOB_LEASE_SECS)
            .bind(mailbox)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO import_jobs (customer_id, mailbox_id, host, port, starttls, login, started_by, node, state, \
             created_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $9) RETURNING id",
        )
        .bind(customer)
        .bind(mailbox)
        .bind(&source.host)
        .bind(i64::from(source.port))
        .bind(i64::from(source.starttls))
        .bind(&source.login)
        .bind(started_by)
        .bind(node.as_str())
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await;
        let id: ImportJobId = match inserted {
            Ok(row) => row.try_get("id")?,
            Err(e) if StoreError::is_unique_violation(&e) => return Err(Conflict::ImportRunning.into()),
            Err(e) => return Err(e.into()),
        };
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = $1"))).bind(id).fetch_one(&mut *tx).await?;
        let job = job_from_row(&row)?;
        tx.commit().await?;
        Ok(job)
    }

    /// A mailbox's jobs in `scope`, newest first, at most [`MAX_LISTED`].
    pub async fn import_jobs(&self, scope: Scope, mailbox: MailboxId) -> Result<Vec<ImportJob>, StoreError> {
        let sql = format!(
            "{SELECT} WHERE mailbox_id = $1 AND ($2 IS NULL OR customer_id = $2) ORDER BY id DESC LIMIT {MAX_LISTED}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(mailbox)
            .bind(scope.customer_filter())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(job_from_row).collect::<Result<_, _>>()?)
    }

    /// The job is taken up: running from now. `false`: it is no longer active (taken
    /// over as abandoned).
    pub async fn start_import_job(&self, id: ImportJobId) -> Result<bool, StoreError> {
        let now = UnixTime::now().0;
        let done = sqlx::query(
            "UPDATE import_jobs SET state = 'running', started_at = $1, heartbeat_at = $1 \
             WHERE id = $2 AND state = 'queued'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How far a running job has come; renews its lease. `false`: it is no longer active.
    pub async fn set_import_job_progress(&self, id: ImportJobId, progress: &JobProgress) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE import_jobs SET folders = $1, copied = $2, skipped = $3, current_folder = $4, heartbeat_at = $5 \
             WHERE id = $6 AND state = 'running'",
        )
        .bind(number(progress.folders))
        .bind(number(progress.copied))
        .bind(number(progress.skipped))
        .bind(progress.current_folder.as_deref())
        .bind(UnixTime::now().0)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Renews an active job's lease at `now`. `false`: it is no longer active (ended, or
    /// taken over as abandoned): its node stops it.
    pub async fn renew_import_job(&self, id: ImportJobId, now: UnixTime) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE import_jobs SET heartbeat_at = $1 WHERE id = $2 AND state IN ('queued', 'running')")
                .bind(now.0)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The leader's upkeep: active jobs whose lease ran out by `now` (their node is gone)
    /// become interrupted. Returns how many.
    pub async fn interrupt_abandoned_import_jobs(&self, now: UnixTime) -> Result<u64, StoreError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!("{INTERRUPT} AND heartbeat_at < $2")))
            .bind(now.0)
            .bind(now.0 - JOB_LEASE_SECS)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The job ended as `state` (done or failed) with its last counts and `result`. A job
    /// no longer active (interrupted, or taken over as abandoned) is left as it is.
    pub async fn finish_import_job(
        &self,
        id: ImportJobId,
        state: JobState,
        progress: &JobProgress,
        result: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE import_jobs SET state = $1, folders = $2, copied = $3, skipped = $4, current_folder = NULL, \
             finished_at = $5, result = $6 WHERE id = $7 AND state IN ('queued', 'running')",
        )
        .bind(state.as_str())
        .bind(number(progress.folders))
        .bind(number(progress.copied))
        .bind(number(progress.skipped))
        .bind(UnixTime::now().0)
        .bind(result)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// At start-up: `node`'s jobs still queued or running were cut off by its stop; they
    /// become interrupted. Returns how many.
    pub async fn interrupt_import_jobs(&self, node: &NodeName) -> Result<u64, StoreError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!("{INTERRUPT} AND node = $2")))
            .bind(UnixTime::now().0)
            .bind(node.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
