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
    create_private_dir(target)?;
    let inside = match (std::fs::canonicalize(target), std::fs::canonicalize(&place.data_dir)) {
        (Ok(target), Ok(data_dir)) => target.starts_with(data_dir),
        _ => false,
    };
    if inside {
        return Err(BackupError::Refused("the backup folder must be outside data_dir: give another one".into()));
    }
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
    // Closing the copy's last connection folded its write-ahead log into the file.
    let wal = target.join(format!("{DATABASE_FILE}-wal"));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(BackupError::Damaged("the copied database was not closed cleanly".into()));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use postfach_store::local::{LocalTarget, deliver_local};
    use postfach_store::mailboxes::MailboxSettings;
    use postfach_store::messages::Flags;
    use postfach_types::{CustomerName, DomainName, EmailAddress, Role};

    /// A message expunged and swept between the snapshot and the copy of its file is
    /// forgotten in the copy as an expunge; a file missing that the live database still
    /// needs stops the backup.
    #[tokio::test]
    async fn a_blob_that_vanished_after_the_snapshot() {
        let dir = tempfile::tempdir().expect("tmp");
        let data = dir.path().join("data");
        let live = Store::open(&sqlite_url(&data.join("postfach.sqlite"))).await.expect("open");
        let customer = live
            .add_customer(&CustomerName::parse("acme").expect("name"), "x", Role::Customer)
            .await
            .expect("customer");
        live.add_domain(customer.id, &DomainName::parse("acme.example").expect("domain"), true).await.expect("domain");
        let address = EmailAddress::parse("max@acme.example").expect("address");
        let mailbox = live
            .add_mailbox(postfach_store::Scope::Platform, &address, "x", MailboxSettings::default())
            .await
            .expect("mailbox");
        let inbox = live.folder(mailbox.id, "INBOX").await.expect("folder").expect("inbox");
        let blobs = BlobStore::open(&Backend::Fs, &data, Namespace::Mailboxes).expect("blobs");
        let mut stored = Vec::new();
        for i in 0..3 {
            let target = LocalTarget::Folder {
                store: &live,
                mailbox: mailbox.id,
                folder: inbox.id,
                internal_date: UnixTime(1_700_000_000),
                flags: Flags::default(),
                keywords: Vec::new(),
            };
            let bytes = format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes();
            stored.push(deliver_local(&blobs, bytes, target).await.expect("deliver"));
        }
        let target = dir.path().join("backup");
        std::fs::create_dir_all(&target).expect("backup dir");
        let copy_file = target.join(DATABASE_FILE);
        live.snapshot_into(&copy_file).await.expect("snapshot");
        let copy = Store::open(&sqlite_url(&copy_file)).await.expect("open copy");

        // After the snapshot: message 2 is expunged and its file swept.
        live.remove_messages(mailbox.id, inbox.id, &[stored[1].placed[0].uid]).await.expect("remove");
        blobs.delete(&stored[1].blob).await.expect("sweep");
        let mut vanished = Vanished::default();
        let entry = copy_blobs(&copy, BlobSet::Mailboxes, &data, &target, Some((&live, &mut vanished)))
            .await
            .expect("backup goes on");
        assert_eq!((entry.count, vanished.messages), (2, 1));
        let uids: Vec<u32> =
            copy.messages(mailbox.id, inbox.id).await.expect("messages").iter().map(|m| m.uid).collect();
        assert_eq!(uids, [1, 3]);
        let expunged = copy.expunged_since(mailbox.id, inbox.id, 0).await.expect("expunged");
        assert!(!expunged.is_empty(), "the copy records the expunge");

        // A file the live database still refers to is damage, not a race.
        blobs.delete(&stored[2].blob).await.expect("lose a file");
        let target2 = dir.path().join("backup2");
        std::fs::create_dir_all(&target2).expect("backup dir");
        let result = copy_blobs(&copy, BlobSet::Mailboxes, &data, &target2, Some((&live, &mut vanished))).await;
        assert!(matches!(result, Err(BackupError::Damaged(_))), "{result:?}");
        copy.close().await;
        live.close().await;
    }
}
