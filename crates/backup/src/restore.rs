//! Bringing a backup into an empty `data_dir` ([`restore`]), checked against its manifest.

use std::path::{Path, PathBuf};

use postfach_store::Store;
use postfach_store::backup::BlobSet;

use crate::copy::{copy_blobs, copy_file};
use crate::manifest::{DATABASE_FILE, FileEntry, Manifest, sync_dir};
use crate::{BackupError, Place, create_private_dir, io, is_empty_or_missing, sqlite_url};

/// What was restored.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub manifest: Manifest,
}

/// Restores the backup in `source` into `place`, whose `data_dir` must be missing or empty
/// and whose database file must not exist. Every file is checked against the manifest; on
/// a mismatch the restore stops and says so (the partly restored `data_dir` must then be
/// emptied before trying again).
pub async fn restore(source: &Path, place: &Place) -> Result<RestoreSummary, BackupError> {
    let manifest = Manifest::read(source)?;
    if !is_empty_or_missing(&place.data_dir)? {
        return Err(BackupError::Refused(format!(
            "{} is not empty: a backup is restored only into an empty data_dir. Stop the server, move the \
             folder away (or set data_dir to a new folder) and run the restore again",
            place.data_dir.display()
        )));
    }
    if place.database.exists() {
        return Err(BackupError::Refused(format!(
            "the database {} exists: move it away and run the restore again",
            place.database.display()
        )));
    }
    let backup_database = source.join(DATABASE_FILE);
    check(&backup_database, &manifest.database)?;
    create_private_dir(&place.data_dir)?;
    if let Some(parent) = place.database.parent() {
        create_private_dir(parent)?;
    }
    let partly = |e: BackupError| partly_restored(e, &place.data_dir);
    let database = copy_file(&backup_database, &place.database, Path::new(DATABASE_FILE)).map_err(partly)?;
    check_entry(&database, &manifest.database).map_err(partly)?;
    set_private(&place.database).map_err(partly)?;

    let index = Store::open(&sqlite_url(&place.database)).await.map_err(|e| partly(e.into()))?;
    let messages = copy_blobs(&index, BlobSet::Mailboxes, source, &place.data_dir, None).await;
    let queue = match messages {
        Ok(_) => copy_blobs(&index, BlobSet::Queue, source, &place.data_dir, None).await,
        Err(_) => Ok(Default::default()),
    };
    index.close().await;
    let (messages, queue) = (messages.map_err(partly)?, queue.map_err(partly)?);
    if messages != manifest.messages || queue != manifest.queue {
        return Err(partly(BackupError::Damaged("the message files differ from those the manifest lists".into())));
    }
    for entry in &manifest.files {
        restore_file(source, &place.data_dir, entry).map_err(partly)?;
    }
    sync_dir(&place.data_dir)?;
    Ok(RestoreSummary { manifest })
}

/// One file listed in the manifest, copied and checked. Its path must stay inside the
/// backup and `data_dir` (a manifest is not trusted to name other places).
fn restore_file(source: &Path, data_dir: &Path, entry: &FileEntry) -> Result<(), BackupError> {
    let relative = PathBuf::from(&entry.path);
    if relative.is_absolute() || relative.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(BackupError::Damaged(format!("the manifest names an odd path: {}", entry.path)));
    }
    let destination = data_dir.join(&relative);
    if let Some(parent) = destination.parent() {
        create_private_dir(parent)?;
    }
    let copied = copy_file(&source.join(&relative), &destination, &relative)?;
    check_entry(&copied, entry)
}

fn check(path: &Path, expected: &FileEntry) -> Result<(), BackupError> {
    let (bytes, sha256) = crate::manifest::file_digest(path)?;
    check_entry(&FileEntry { path: expected.path.clone(), bytes, sha256, mode: expected.mode }, expected)
}

fn check_entry(found: &FileEntry, expected: &FileEntry) -> Result<(), BackupError> {
    if found.bytes != expected.bytes || found.sha256 != expected.sha256 {
        return Err(BackupError::Damaged(format!("{} differs from the manifest", expected.path)));
    }
    Ok(())
}

fn set_private(path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))
}

/// A failure after files were written: the operator must start again from an empty folder.
fn partly_restored(e: BackupError, data_dir: &Path) -> BackupError {
    BackupError::Refused(format!(
        "{e}. The restore stopped; {} now holds part of the backup: empty it before trying again",
        data_dir.display()
    ))
}
