//! Learning from the user's moves: a message moved into Junk is spam, one moved out of
//! Junk is ham. IMAP hands each over with [`Learner::learn`], which never waits: the job
//! goes into a bounded queue (a full queue drops it, with a log line) and one task reads
//! the message and teaches rspamd's controller, one message at a time.

use postfach_blob::{BlobId, BlobStore};
use postfach_metrics::SpamLearn;
use tokio::sync::mpsc;

use crate::Rspamd;

/// Jobs waiting to be learnt; more are dropped.
pub const LEARN_QUEUE: usize = 256;

/// What a message is to be learnt as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    Spam,
    Ham,
}

impl Learn {
    pub(crate) fn path(self) -> &'static str {
        match self {
            Learn::Spam => "/learnspam",
            Learn::Ham => "/learnham",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Learn::Spam => "spam",
            Learn::Ham => "ham",
        }
    }
}

struct Job {
    learn: Learn,
    blob: BlobId,
    size: u64,
}

/// The hand-over to the learning task. Cheap to clone; [`Learner::off`] learns nothing.
#[derive(Debug, Clone, Default)]
pub struct Learner {
    jobs: Option<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("learn", &self.learn).field("size", &self.size).finish_non_exhaustive()
    }
}

impl Learner {
    /// No learning (no rspamd, or no controller configured).
    pub fn off() -> Self {
        Learner { jobs: None }
    }

    /// Starts the learning task on the current runtime, when rspamd has a controller.
    pub fn spawn(rspamd: Rspamd, blobs: BlobStore) -> Self {
        if rspamd.settings().controller.is_none() {
            return Learner::off();
        }
        let (tx, mut rx) = mpsc::channel::<Job>(LEARN_QUEUE);
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let bytes = match blobs.get_sized(&job.blob, job.size).await {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        tracing::warn!(learn = job.learn.as_str(), error = %e, "spam learning: reading the message failed");
                        postfach_metrics::spam_learn(job.learn == Learn::Spam, SpamLearn::Failed);
                        continue;
                    }
                };
                let result = match rspamd.learn(job.learn, &bytes).await {
                    Ok(()) => {
                        tracing::info!(learn = job.learn.as_str(), "spam learning: rspamd learnt a message");
                        SpamLearn::Learnt
                    }
                    Err(e) => {
                        tracing::warn!(learn = job.learn.as_str(), error = %e, "spam learning failed");
                        SpamLearn::Failed
                    }
                };
                postfach_metrics::spam_learn(job.learn == Learn::Spam, result);
            }
        });
        Learner { jobs: Some(tx) }
    }

    pub fn is_on(&self) -> bool {
        self.jobs.is_some()
    }

    /// Queues one message to be learnt; never waits, never fails the caller.
    pub fn learn(&self, learn: Learn, blob: BlobId, size: u64) {
        let Some(jobs) = &self.jobs else { return };
        if jobs.try_send(Job { learn, blob, size }).is_err() {
            tracing::warn!(learn = learn.as_str(), "spam learning: the queue is full; a message was not learnt");
            postfach_metrics::spam_learn(learn == Learn::Spam, SpamLearn::Dropped);
        }
    }
}
