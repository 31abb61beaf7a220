//! Moving in from the old provider, started from the panel or the API: an IMAP import
//! (`postfach_import::imap`) run as a background job on this node, with its row in
//! `postfach_store::import_jobs` for progress and the result.
//!
//! Who may: the operator, admins, the customer owning the mailbox and the mailbox user
//! (the same as for the mailbox's other settings). The old server's password lives only
//! in the job's task and is dropped when the job ends; the row never holds it. The old
//! server must be on the internet unless `[import] allow_private_targets` is set: checked
//! before the job is recorded, and again by the import right before it connects.
//!
//! Bounds: at most [`MAX_RUNNING`] jobs run on a node at once, at most [`MAX_WAITING`]
//! more wait for a slot (beyond that a start is refused); each job is bounded by the
//! import's own limits ([`ImapBounds`]); progress is written to the row at most every
//! [`PROGRESS_EVERY`]. A job runs on the node that took the request; when a node starts,
//! its jobs still marked queued or running become interrupted
//! ([`ImportRunner::interrupt_stale_jobs`]), and starting again resumes where the import
//! positions say. The node renews each job's lease every [`RENEW_EVERY`], waiting or
//! running, so a job of a node that is gone for good stops blocking its mailbox after
//! [`postfach_store::import_jobs::JOB_LEASE_SECS`]; a job found taken over stops.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use postfach_blob::BlobStore;
use postfach_import::imap::{FolderProgress, FolderReport, ImapBounds, ImapSource, Security, TargetError, resolve};
use postfach_import::{ImportError, Importer};
use postfach_store::Store;
use postfach_store::import_jobs::{ImportJob, JobProgress, JobSource, JobState};
use postfach_types::{ImportJobId, MailboxId, NodeName, Secret, UnixTime};
use tokio::sync::{Semaphore, watch};

use crate::{Admin, AdminError, Who};

/// Jobs running at once on one node.
pub const MAX_RUNNING: usize = 4;
/// Jobs waiting for a slot on one node.
pub const MAX_WAITING: usize = 16;
/// How often a running job's row is brought up to date (when something changed).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(3);
/// How often a job's lease is renewed: a quarter of the lease, so that a slow database
/// write or two do not lose it.
pub const RENEW_EVERY: Duration = Duration::from_secs(30);

/// What a customer asks to import.
#[derive(Debug)]
pub struct ImportRequest {
    pub server: postfach_import::imap::SourceUrl,
    pub login: String,
    pub password: Secret<String>,
}

/// This node's import jobs: where messages are stored and the node's slots. Cheap to
/// clone; one per server process.
#[derive(Clone)]
pub struct ImportRunner {
    blobs: BlobStore,
    node: NodeName,
    max_message_size: u64,
    /// `[import] allow_private_targets`.
    allow_private: bool,
    /// `[import] ca_file`: trusted instead of the system's roots.
    ca_file: Option<PathBuf>,
    bounds: ImapBounds,
    slots: Arc<Semaphore>,
    /// Jobs queued or running on this node.
    jobs: Arc<AtomicUsize>,
}

impl std::fmt::Debug for ImportRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportRunner")
            .field("node", &self.node)
            .field("allow_private", &self.allow_private)
            .field("jobs", &self.jobs.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ImportRunner {
    pub fn new(
        blobs: BlobStore,
        node: NodeName,
        max_message_size: u64,
        allow_private: bool,
        ca_file: Option<PathBuf>,
    ) -> ImportRunner {
        ImportRunner {
            blobs,
            node,
            max_message_size,
            allow_private,
            ca_file,
            bounds: ImapBounds::default(),
            slots: Arc::new(Semaphore::new(MAX_RUNNING)),
            jobs: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// At start-up: this node's jobs left queued or running by its last run (the process
    /// ended under them) become interrupted. Other nodes' jobs are theirs.
    pub async fn interrupt_stale_jobs(&self, store: &Store) -> Result<u64, postfach_store::StoreError> {
        store.interrupt_import_jobs(&self.node).await
    }
}

/// Counts a job on this node until dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admin {
    /// Starts importing a visible mailbox's mail from another IMAP server (module
    /// documentation); the job's row as recorded, queued.
    pub async fn start_import(
        &self,
        who: &Who,
        mailbox: MailboxId,
        request: ImportRequest,
    ) -> Result<ImportJob, AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        let runner = self.imports.as_ref().ok_or(AdminError::ImportsBusy)?;
        resolve(&request.server, runner.allow_private, runner.bounds.read_timeout).await.map_err(|e| match e {
            TargetError::SlowLookup { host } | TargetError::Unknown { host } => {
                AdminError::ImportServerUnknown { host }
            }
            TargetError::NotPublic { host, .. } => AdminError::ImportServerNotPublic { host },
        })?;
        if runner.jobs.fetch_add(1, Ordering::AcqRel) >= MAX_RUNNING + MAX_WAITING {
            runner.jobs.fetch_sub(1, Ordering::AcqRel);
            return Err(AdminError::ImportsBusy);
        }
        let counted = Counted(runner.jobs.clone());
        let source = JobSource {
            host: request.server.host.clone(),
            port: request.server.port,
            starttls: request.server.security == Security::StartTls,
            login: request.login.clone(),
        };
        let (scope, by, node) = (who.scope(), who.display_name(), &runner.node);
        let job = self.store.create_import_job(scope, mailbox.id, &source, &by, node, UnixTime::now()).await?;
        let imap = ImapSource {
            url: request.server,
            login: request.login,
            password: request.password,
            ca_file: runner.ca_file.clone(),
            allow_private: runner.allow_private,
        };
        tokio::spawn(run_job(self.store.clone(), runner.clone(), job.id, mailbox.id, imap, counted));
        Ok(job)
    }

    /// A visible mailbox's import jobs, newest first.
    pub async fn import_jobs(&self, who: &Who, mailbox: MailboxId) -> Result<Vec<ImportJob>, AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        Ok(self.store.import_jobs(who.scope(), mailbox.id).await?)
    }
}

/// Runs one job to its end; `source` (with the password) is dropped with this task.
async fn run_job(
    store: Store,
    runner: ImportRunner,
    id: ImportJobId,
    mailbox: MailboxId,
    source: ImapSource,
    _counted: Counted,
) {
    // Waiting for a slot, the job keeps its lease.
    let mut renew = tokio::time::interval(RENEW_EVERY);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renew.tick().await;
    // One acquire for the whole wait: the job keeps its place among those waiting.
    let acquire = runner.slots.acquire();
    tokio::pin!(acquire);
    let _slot = loop {
        tokio::select! {
            slot = &mut acquire => match slot {
                Ok(slot) => break slot,
                Err(_) => return,
            },
            _ = renew.tick() => {
                if !still_ours(store.renew_import_job(id, UnixTime::now()).await, id) {
                    return;
                }
            }
        }
    };
    if !still_ours(store.start_import_job(id).await, id) {
        return;
    }
    let mut importer = Importer::new(&store, &runner.blobs, mailbox, runner.max_message_size);
    let mut reports = Vec::new();
    let (tell, told) = watch::channel(JobProgress::default());
    let mut tally = Tally::default();
    let mut progress = |p: FolderProgress| {
        tally.note(&p);
        tell.send_replace(tally.progress());
    };
    let import = postfach_import::imap::import_imap(&mut importer, &source, runner.bounds, &mut reports, &mut progress);
    let Some(result) = write_progress_until(import, &store, id, told).await else {
        tracing::warn!(job = %id, "an import job was taken over as abandoned; it stops here");
        return;
    };
    let skipped = importer.summary_mut().skipped.len() as u64;
    drop(source);
    let progress = final_progress(&reports, skipped);
    let (state, text) = match &result {
        Ok(()) => (JobState::Done, done_text(&reports, &progress)),
        Err(e) => (JobState::Failed, failed_text(e, &progress)),
    };
    if let Err(e @ (ImportError::Store(_) | ImportError::Local(_) | ImportError::Io { .. } | ImportError::Setup(_))) =
        &result
    {
        tracing::error!(error = %e, job = %id, "an import job stopped on a problem here");
    }
    if let Err(e) = store.finish_import_job(id, state, &progress, &text).await {
        tracing::error!(error = %e, job = %id, "an import job's result could not be recorded");
    }
}

/// Whether a write to the job's row found it still active. A failed write keeps the job
/// going (the lease allows for a few).
fn still_ours(written: Result<bool, postfach_store::StoreError>, id: ImportJobId) -> bool {
    match written {
        Ok(active) => active,
        Err(e) => {
            tracing::warn!(error = %e, job = %id, "an import job's row could not be brought up to date");
            true
        }
    }
}

/// Drives `import`, writing the latest progress to the job's row every [`PROGRESS_EVERY`]
/// when it changed, and renewing its lease at least every [`RENEW_EVERY`]. `None`: the
/// row is no longer active (taken over as abandoned), and the import was stopped.
async fn write_progress_until<F>(
    import: F,
    store: &Store,
    id: ImportJobId,
    mut told: watch::Receiver<JobProgress>,
) -> Option<Result<(), ImportError>>
where
    F: std::future::Future<Output = Result<(), ImportError>>,
{
    tokio::pin!(import);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            result = &mut import => return Some(result),
            _ = tick.tick() => {
                let written = if told.has_changed().unwrap_or(false) {
                    let progress = told.borrow_and_update().clone();
                    store.set_import_job_progress(id, &progress).await
                } else if renewed.elapsed() >= RENEW_EVERY {
                    store.renew_import_job(id, UnixTime::now()).await
                } else {
                    continue;
                };
                renewed = tokio::time::Instant::now();
                if !still_ours(written, id) {
                    return None;
                }
            }
        }
    }
}

/// Progress while running, from the import's per-folder reports: folders finished and
/// messages handled so far.
#[derive(Debug, Default)]
struct Tally {
    finished_folders: u64,
    finished_messages: u64,
    folder: Option<String>,
    done: u64,
    total: u64,
}

impl Tally {
    fn note(&mut self, p: &FolderProgress) {
        if self.folder.as_deref() != Some(&p.folder) || p.done == 0 {
            if self.folder.is_some() {
                self.finished_folders += 1;
                self.finished_messages += self.done;
            }
            self.folder = Some(p.folder.clone());
        }
        self.done = p.done;
        self.total = p.total;
    }

    fn progress(&self) -> JobProgress {
        JobProgress {
            folders: self.finished_folders,
            copied: self.finished_messages + self.done,
            skipped: 0,
            current_folder: self.folder.as_ref().map(|f| format!("{f} ({} / {})", self.done, self.total)),
        }
    }
}

/// The counts once the import ended: copied messages, and the skipped ones (too large,
/// refused, gone on the old server) with those already here.
fn final_progress(reports: &[FolderReport], skipped: u64) -> JobProgress {
    let copied = reports.iter().map(|r| r.copied).sum();
    let duplicates: u64 = reports.iter().map(|r| r.duplicates).sum();
    let folders = reports.iter().filter(|r| r.not_copied.is_none()).count() as u64;
    JobProgress { folders, copied, skipped: skipped + duplicates, current_folder: None }
}

/// The result of a finished job, for the customer.
fn done_text(reports: &[FolderReport], progress: &JobProgress) -> String {
    let mut text = format!("{} messages copied from {} folders.", progress.copied, progress.folders);
    if progress.skipped > 0 {
        text.push_str(&format!(" {} messages were skipped (too large, unreadable or already here).", progress.skipped));
    }
    for report in reports {
        if let Some(why) = &report.not_copied {
            text.push_str(&format!(" The folder {} was not copied: {why}.", report.source));
        }
    }
    text
}

/// Why a job stopped, for the customer: the import's own words for what the old server
/// did or which limit was reached; problems on our side are not detailed.
fn failed_text(e: &ImportError, progress: &JobProgress) -> String {
    let why = match e {
        ImportError::Source(_) | ImportError::Limit(_) | ImportError::MailboxFull | ImportError::Refused(_) => {
            e.to_string()
        }
        ImportError::Store(_) | ImportError::Local(_) | ImportError::Io { .. } | ImportError::Setup(_) => {
            "the import stopped because of a problem on our side; start it again later to go on where it stopped"
                .to_string()
        }
    };
    format!("{why} ({} messages were copied before it stopped.)", progress.copied)
}
