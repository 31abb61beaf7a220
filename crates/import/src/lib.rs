//! `postfach import maildir` and `postfach import mbox`: messages from local files into a
//! mailbox, with their flags, keywords, internal dates and folders.
//!
//! Each message is stored the way IMAP APPEND stores one ([`Importer::add`]): the intake
//! check, then `store::local::deliver_local`, so UIDs, modseqs and change announcements
//! are those of any other message. A message larger than the platform's maximum size, or
//! one the intake check refuses, is skipped and reported, never stored in part. The
//! sources are read as streams: memory stays bounded by the maximum message size.

mod folders;
pub mod imap;
mod maildir;
mod mbox;

use std::collections::HashMap;

use postfach_blob::BlobStore;
use postfach_message::{IntakeError, Message, check_intake, crlf_line_endings};
use postfach_store::Store;
use postfach_store::local::{LocalTarget, deliver_local};
use postfach_store::messages::Flags;
use postfach_types::{FolderId, MailboxId, UnixTime};

pub use folders::folder_name;
pub use maildir::import_maildir;
pub use mbox::import_mbox;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Refused(String),
    #[error("database: {0}")]
    Store(#[from] postfach_store::StoreError),
    #[error("message files: {0}")]
    Local(#[from] postfach_store::local::LocalError),
    /// The old server could not be reached, refused, or misbehaved (IMAP import).
    #[error("{0}")]
    Source(String),
    /// This server's own TLS setup for imports is unusable (a CA file that cannot be read,
    /// no system CA certificates): for the operator, not the customer.
    #[error("{0}")]
    Setup(String),
    /// A bound of one run (time, size) was reached; the next run goes on.
    #[error("{0}")]
    Limit(String),
    #[error("the mailbox is full: the import stopped; make room or raise the quota, then start it again to go on")]
    MailboxFull,
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ImportError {
    let path = path.display().to_string();
    move |source| ImportError::Io { path, source }
}

/// Why a message was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    TooLarge { size: u64, max: u64 },
    Refused(String),
    Unreadable(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::TooLarge { size, max } => {
                write!(f, "{size} bytes, larger than the maximum message size of {max} bytes")
            }
            SkipReason::Refused(why) => write!(f, "{why}"),
            SkipReason::Unreadable(why) => write!(f, "unreadable: {why}"),
        }
    }
}

/// A skipped message: where it was (file name, or the mbox's message number and line) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub source: String,
    pub reason: SkipReason,
}

/// How far an import has come, reported after every message.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    pub imported: u64,
    pub skipped: u64,
    /// Done so far, of `total` (messages for a Maildir, bytes for an mbox file).
    pub done: u64,
    pub total: u64,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub imported: u64,
    pub skipped: Vec<Skipped>,
    /// Folders that did not exist and were created.
    pub created_folders: Vec<String>,
}

/// One message read from a source.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub bytes: Vec<u8>,
    pub internal_date: UnixTime,
    pub flags: Flags,
    pub keywords: Vec<String>,
}

/// Stores messages into one mailbox's folders (module documentation).
#[derive(Debug)]
pub struct Importer<'a> {
    store: &'a Store,
    blobs: &'a BlobStore,
    mailbox: MailboxId,
    max_message_size: u64,
    /// Our folders by name, or why one cannot be made.
    folders: HashMap<String, Result<FolderId, String>>,
    summary: Summary,
}

impl<'a> Importer<'a> {
    pub fn new(store: &'a Store, blobs: &'a BlobStore, mailbox: MailboxId, max_message_size: u64) -> Self {
        Importer { store, blobs, mailbox, max_message_size, folders: HashMap::new(), summary: Summary::default() }
    }

    pub fn max_message_size(&self) -> u64 {
        self.max_message_size
    }

    /// What the import did so far.
    pub fn summary_mut(&mut self) -> &mut Summary {
        &mut self.summary
    }

    pub fn finish(self) -> Summary {
        self.summary
    }

    pub(crate) fn progress(&self, done: u64, total: u64) -> Progress {
        Progress { imported: self.summary.imported, skipped: self.summary.skipped.len() as u64, done, total }
    }

    pub(crate) fn skip(&mut self, source: String, reason: SkipReason) {
        self.summary.skipped.push(Skipped { source, reason });
    }

    /// The folder `name` (our name, `/`-separated), created if missing; `Err` with the
    /// reason when the store refuses such a folder (its messages are skipped).
    pub(crate) async fn folder(&mut self, name: &str) -> Result<Result<FolderId, String>, ImportError> {
        if let Some(known) = self.folders.get(name) {
            return Ok(known.clone());
        }
        let existing = self.store.folders(self.mailbox).await?;
        let found =
            match existing.iter().find(|f| f.name == name || (f.is_inbox() && name.eq_ignore_ascii_case("INBOX"))) {
                Some(folder) => Ok(folder.id),
                None => match self.store.create_folder(self.mailbox, name, None).await {
                    Ok(created) => {
                        self.summary.created_folders.push(created.name.clone());
                        Ok(created.id)
                    }
                    Err(postfach_store::StoreError::Conflict(why)) => Err(why),
                    Err(e) => return Err(e.into()),
                },
            };
        self.folders.insert(name.to_string(), found.clone());
        Ok(found)
    }

    /// Stores one message into `folder` (or skips it, recording why).
    pub(crate) async fn add(&mut self, folder: &str, source: String, message: Incoming) -> Result<(), ImportError> {
        let size = message.bytes.len() as u64;
        if size > self.max_message_size {
            self.skip(source, SkipReason::TooLarge { size, max: self.max_message_size });
            return Ok(());
        }
        let bytes = crlf_line_endings(&message.bytes).into_owned();
        drop(message.bytes);
        if let Err(e) = intake(&bytes) {
            self.skip(source, SkipReason::Refused(e.to_string()));
            return Ok(());
        }
        let folder = match self.folder(folder).await? {
            Ok(folder) => folder,
            Err(why) => {
                self.skip(source, SkipReason::Refused(why));
                return Ok(());
            }
        };
        let target = LocalTarget::Folder {
            store: self.store,
            mailbox: self.mailbox,
            folder,
            internal_date: message.internal_date,
            flags: message.flags,
            keywords: message.keywords,
        };
        deliver_local(self.blobs, bytes, target).await?;
        self.summary.imported += 1;
        Ok(())
    }
}

/// The intake check as IMAP APPEND applies it: the structure limits refuse; a header that
/// is merely unusual is stored as it is.
fn intake(bytes: &[u8]) -> Result<(), IntakeError> {
    match check_intake(&Message::parse(bytes)) {
        Err(IntakeError::HeaderSyntax { .. } | IntakeError::Duplicate { .. }) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}
