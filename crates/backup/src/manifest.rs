//! The manifest (`manifest.json`), written last: what a finished backup holds, with sizes
//! and SHA-256 checksums, so that a half-written or damaged backup is recognised.

use std::path::Path;

use aws_lc_rs::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

use crate::{BackupError, io};

/// The manifest's file name in a backup folder.
pub const MANIFEST: &str = "manifest.json";
/// The database file's name in a backup folder.
pub(crate) const DATABASE_FILE: &str = "postfach.sqlite";
const FORMAT: &str = "postfach-backup";
const VERSION: u32 = 1;
/// A manifest is read only up to this size (it lists counts and a few files).
const MAX_MANIFEST: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// The version of Postfach that wrote it.
    pub postfach: String,
    /// Seconds since 1970 when the database snapshot was taken.
    pub created_at: i64,
    pub database: FileEntry,
    /// The mailboxes' message files the database refers to.
    pub messages: BlobsEntry,
    /// The outbound queue's message files.
    pub queue: BlobsEntry,
    /// Everything else in `data_dir` (certificates, keys), by path relative to it.
    pub files: Vec<FileEntry>,
    /// Messages expunged (and their files swept) and queued messages delivered between the
    /// snapshot and the copy of their files: left out of the copy.
    pub vanished: Vanished,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    pub mode: u32,
}

/// A set of blobs: how many, their bytes, and one SHA-256 over `id size sha256` lines in
/// id order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobsEntry {
    pub count: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vanished {
    pub messages: u64,
    pub queued: u64,
}

impl Manifest {
    pub(crate) fn new(
        created_at: i64,
        database: FileEntry,
        messages: BlobsEntry,
        queue: BlobsEntry,
        files: Vec<FileEntry>,
        vanished: Vanished,
    ) -> Self {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            postfach: env!("CARGO_PKG_VERSION").into(),
            created_at,
            database,
            messages,
            queue,
            files,
            vanished,
        }
    }

    /// Reads the manifest of the backup in `dir`; a missing one means the backup did not
    /// finish (or `dir` is not a backup).
    pub fn read(dir: &Path) -> Result<Manifest, BackupError> {
        use std::io::Read;
        let path = dir.join(MANIFEST);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackupError::Refused(format!(
                    "{} holds no {MANIFEST}: it is not a backup, or its backup did not finish; use another backup",
                    dir.display()
                )));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let mut text = String::new();
        file.take(MAX_MANIFEST).read_to_string(&mut text).map_err(io(&path))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| BackupError::Damaged(format!("{MANIFEST} is unreadable: {e}")))?;
        if manifest.format != FORMAT {
            return Err(BackupError::Damaged(format!("{MANIFEST} is not a Postfach backup's")));
        }
        if manifest.version != VERSION {
            return Err(BackupError::Refused(format!(
                "the backup has format version {}, this Postfach reads version {VERSION}: restore it with Postfach {}",
                manifest.version, manifest.postfach
            )));
        }
        Ok(manifest)
    }

    /// Writes the manifest durably into `dir` (through a temporary name, so that it
    /// appears whole or not at all).
    pub(crate) fn write(&self, dir: &Path) -> Result<(), BackupError> {
        use std::io::Write;
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        let text = serde_json::to_vec_pretty(self).map_err(|e| BackupError::Damaged(e.to_string()))?;
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&text).and_then(|()| file.sync_all()).map_err(io(&tmp))?;
        let path = dir.join(MANIFEST);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(dir)
    }
}

/// The running checksum of a blob set ([`BlobsEntry`]).
pub(crate) struct BlobsDigest {
    entry: BlobsEntry,
    all: Context,
}

impl std::fmt::Debug for BlobsDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobsDigest").field("entry", &self.entry).finish_non_exhaustive()
    }
}

impl BlobsDigest {
    pub(crate) fn new() -> Self {
        BlobsDigest { entry: BlobsEntry::default(), all: Context::new(&SHA256) }
    }

    pub(crate) fn add(&mut self, id: &str, bytes: u64, sha256: &str) {
        self.entry.count += 1;
        self.entry.bytes += bytes;
        self.all.update(format!("{id} {bytes} {sha256}\n").as_bytes());
    }

    pub(crate) fn finish(self) -> BlobsEntry {
        BlobsEntry { sha256: hex(self.all.finish().as_ref()), ..self.entry }
    }
}

/// A file's size and SHA-256, read in pieces.
pub(crate) fn file_digest(path: &Path) -> Result<(u64, String), BackupError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut context = Context::new(&SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        context.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex(context.finish().as_ref())))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}
