//! Taking a backup ([`backup`]) and the copying that restoring shares with it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{Context, SHA256};
use postfach_blob::{Backend, BlobStore, Namespace};
use postfach_store::Store;
use postfach_store::backup::BlobSet;
use postfach_types::{BlobId, UnixTime};

use crate::manifest::{
    BlobsDigest, BlobsEntry, DATABASE_FILE, FileEntry, Manifest, Vanished, file_digest, hex, sync_dir,
};
use crate::{BackupError, Place, create_private_dir, io, is_empty_or_missing, sqlite_url};

/// Blobs listed from the index at once.
const PAGE: i64 = 1000;

/// What a finished backup holds.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub manifest: Manifest,
}

/// Copies the running node's data (`live` is its open database, `place` where it lives)
/// into `target`, which must be missing or empty (crate documentation).
pub async fn backup(live: &Store, place: &Place, target: &Path) -> Result<BackupSummary, BackupError> {
    if !is_empty_or_missing(target)? {
        return Err(BackupError::Refused(format!(
            "{} is not empty: give a new or empty folder for each backup",
            target.display()
        )));
    }
    if target.starts_with(&place.data_dir) {
        return Err(BackupError::Refused("the backup folder must be outside data_dir".into()));
    }
    create_private_dir(target)?;
    let created_at = UnixTime::now().0;
    let database = target.join(DATABASE_FILE);
    live.snapshot_into(&database).await?;

    let copy = Store::open(&sqlite_url(&database)).await?;
    let mut vanished = Vanished::default();
    let messages = copy_blobs(&copy, BlobSet::Mailboxes, &place.data_dir, target, Some((live, &mut vanished))).await;
    let queue = match messages {
        Ok(_) => copy_blobs(&copy, BlobSet::Queue, &place.data_dir, target, Some((live, &mut vanished))).await,
        Err(_) => Ok(BlobsEntry::default()),
    };
    copy.close().await;
    let (messages, queue) = (messages?, queue?);
    for leftover in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(target.join(format!("{DATABASE_FILE}{leftover}")));
    }

    let files = copy_files(&place.data_dir, target, &skipped(place))?;
    let (bytes, sha256) = file_digest(&database)?;
    let database = FileEntry { path: DATABASE_FILE.into(), bytes, sha256, mode: 0o600 };
    let manifest = Manifest::new(created_at, database, messages, queue, files, vanished);
    sync_dir(target)?;
    manifest.write(target)?;
    Ok(BackupSummary { manifest })
}

/// The entries of `data_dir` that are not copied as plain files: the blob folders (copied
/// by reference from the index) and the live database with its journal.
fn skipped(place: &Place) -> Vec<PathBuf> {
    let mut skip = vec![Namespace::Mailboxes.folder(&place.data_dir), Namespace::Queue.folder(&place.data_dir)];
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = place.database.clone().into_os_string();
        name.push(suffix);
        skip.push(PathBuf::from(name));
    }
    skip
}

/// Copies the blobs of `set` that `index` refers to from `from_dir` to `to_dir`, in id
/// order, and returns their count, bytes and checksum. With `live` (a backup), a blob that
/// vanished from `from_dir` is forgotten in `index` if the live database no longer refers
/// to it either; otherwise a missing blob is an error.
pub(crate) async fn copy_blobs(
    index: &Store,
    set: BlobSet,
    from_dir: &Path,
    to_dir: &Path,
    mut live: Option<(&Store, &mut Vanished)>,
) -> Result<BlobsEntry, BackupError> {
    let namespace = match set {
        BlobSet::Mailboxes => Namespace::Mailboxes,
        BlobSet::Queue => Namespace::Queue,
    };
    let from = BlobStore::open(&Backend::Fs, from_dir, namespace)?;
    let to = BlobStore::open(&Backend::Fs, to_dir, namespace)?;
    let mut digest = BlobsDigest::new();
    let mut after: Option<BlobId> = None;
    loop {
        let page = index.referenced_blobs(set, after.as_ref(), PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (blob, _) in page {
            let mut context = Context::new(&SHA256);
            match from.copy_to(&blob, &to, &mut |chunk| context.update(chunk)).await {
                Ok(bytes) => digest.add(blob.as_str(), bytes, &hex(context.finish().as_ref())),
                Err(e) if e.is_missing() => match live.as_mut() {
                    Some((live, vanished)) if !live.blob_referenced(set, &blob).await? => {
                        let forgotten = index.forget_vanished_blob(set, &blob).await?;
                        match set {
                            BlobSet::Mailboxes => vanished.messages += forgotten,
                            BlobSet::Queue => vanished.queued += forgotten,
                        }
                    }
                    _ => {
                        return Err(BackupError::Damaged(format!(
                            "the message file {} that the database refers to is missing",
                            blob.as_str()
                        )));
                    }
                },
                Err(e) => return Err(e.into()),
            }
        }
    }
    to.sync().await?;
    Ok(digest.finish())
}

/// Copies every regular file under `from` but those in `skip` to `to`, keeping its mode,
/// and lists them.
fn copy_files(from: &Path, to: &Path, skip: &[PathBuf]) -> Result<Vec<FileEntry>, BackupError> {
    let mut files = Vec::new();
    let mut pending = vec![from.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir).map_err(io(&dir))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if skip.contains(&path) {
                continue;
            }
            let Ok(kind) = entry.file_type() else { continue };
            let relative = path.strip_prefix(from).unwrap_or(&path).to_path_buf();
            if kind.is_dir() {
                create_private_dir(&to.join(&relative))?;
                pending.push(path);
            } else if kind.is_file() {
                let destination = to.join(&relative);
                files.push(copy_file(&path, &destination, &relative)?);
            }
        }
    }
    Ok(files)
}

/// Copies one file durably, keeping its mode, and describes it.
pub(crate) fn copy_file(from: &Path, to: &Path, relative: &Path) -> Result<FileEntry, BackupError> {
    let mode = std::fs::metadata(from).map_err(io(from))?.permissions().mode() & 0o777;
    std::fs::copy(from, to).map_err(io(to))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).map_err(io(to))?;
    std::fs::File::open(to).and_then(|f| f.sync_all()).map_err(io(to))?;
    let (bytes, sha256) = file_digest(to)?;
    Ok(FileEntry { path: relative.to_string_lossy().into_owned(), bytes, sha256, mode })
}
