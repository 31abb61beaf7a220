//! `postfach backup` and `postfach restore` for a single node: the SQLite database and the
//! files under `data_dir` (message blobs, the outbound queue, certificates and keys).
//!
//! A backup is taken while the server runs. The database is copied first, as one snapshot
//! ([`postfach_store::Store::snapshot_into`]); then the blobs that copy refers to. Blobs
//! are written once under random names and never changed, so copying them after the
//! snapshot is consistent: a blob the snapshot names exists until an expunge's grace period
//! (an hour) has passed or its queued message was delivered. One that vanished meanwhile
//! is forgotten in the copy the way the live server forgot it ([`copy`]). The manifest,
//! written last, names the format, the counts and the checksums: a folder without it is a
//! backup that did not finish.
//!
//! PostgreSQL and S3 are backed up with their own tools ([`UNSUPPORTED`]).

mod copy;
pub mod manifest;
mod restore;

pub use copy::{BackupSummary, backup};
pub use manifest::{MANIFEST, Manifest};
pub use restore::{RestoreSummary, restore};

use std::path::PathBuf;

/// What the commands say instead of a copy when the data is not (all) in `data_dir`.
pub const UNSUPPORTED: &str = "\
`postfach backup` and `postfach restore` copy a single node's SQLite database and files. \
With PostgreSQL or S3, back up with their own tools while the servers run: \
1. `pg_dump --format=custom --file=postfach.dump DATABASE_URL` (one consistent snapshot); \
2. afterwards copy the bucket's `blobs/` and `queue/` prefixes (e.g. `rclone copy` or `aws s3 sync`): \
message files are never changed and are deleted only an hour after their last message went, \
so a copy finished within the hour holds every file the dump refers to; \
3. copy `data_dir` (the TLS certificate and key). \
Restore with `pg_restore --dbname=NEW_DATABASE_URL postfach.dump` and the bucket copied back, \
before the first server starts. See docs/operations.md, \"Backups\".";

/// Where the data to back up or restore lives (from the configuration).
#[derive(Debug, Clone)]
pub struct Place {
    pub data_dir: PathBuf,
    /// The SQLite database file.
    pub database: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A refusal with what to do instead, for the operator.
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("database: {0}")]
    Store(#[from] postfach_store::StoreError),
    #[error("message files: {0}")]
    Blob(#[from] postfach_blob::BlobError),
    /// The backup does not match its manifest (damaged, or not finished).
    #[error("the backup is damaged: {0}")]
    Damaged(String),
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::Io { path, source }
}

/// Whether `dir` is missing or an empty folder.
pub(crate) fn is_empty_or_missing(dir: &std::path::Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(dir)(e)),
    }
}

/// Creates `dir` (mode 0700) if it is missing.
pub(crate) fn create_private_dir(dir: &std::path::Path) -> Result<(), BackupError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

/// The SQLite URL for a database file.
pub(crate) fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}
