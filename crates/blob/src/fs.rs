//! The filesystem backend: writing, reading, deleting and listing message files under
//! the namespace's folder (`objects/xy/<id>`, `tmp/`).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustix::fs::{Mode, OFlags};

use crate::spool::SpoolFile;
use crate::store::{BlobError, BlobId};

/// The blob folder. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct FsStore {
    root: PathBuf,
    /// The `objects` folder, held open: reads open `xy/<id>` relative to it, which spares
    /// the kernel the walk of the whole path for every message a FETCH sends.
    objects: Arc<OwnedFd>,
}

impl FsStore {
    /// Opens (and on first use creates) the store under `root`, with all 256 fan-out
    /// folders made and synced up front, so a `put` only ever syncs one folder.
    pub(crate) fn open(root: &Path) -> Result<Self, BlobError> {
        let objects = root.join("objects");
        for dir in [root.join("tmp"), objects.clone()] {
            std::fs::create_dir_all(&dir).map_err(|source| BlobError::Io { path: dir.clone(), source })?;
        }
        for i in 0..=255u8 {
            let dir = objects.join(format!("{i:02x}"));
            // Another process (a CLI call, a restarting server) may create it at the same time.
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(BlobError::Io { path: dir, source }),
            }
        }
        sync_dir(&objects)?;
        sync_dir(root)?;
        let dir = rustix::fs::open(&objects, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| BlobError::Io { path: objects.clone(), source: e.into() })?;
        Ok(Self { root: root.to_path_buf(), objects: Arc::new(dir) })
    }

    /// Writes `bytes` durably and returns the new blob's id.
    pub(crate) async fn put(&self, bytes: Vec<u8>) -> Result<BlobId, BlobError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.put_blocking(&bytes))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))?
    }

    fn put_blocking(&self, bytes: &[u8]) -> Result<BlobId, BlobError> {
        let id = BlobId::from_bytes(rand::random());
        let tmp = self.root.join("tmp").join(id.as_str());
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BlobError::Io { path, source }
        };
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        let path = self.path(&id);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(path.parent().unwrap_or(&self.root))?;
        Ok(id)
    }

    /// A finished spool file becomes a blob: synced and renamed into place (copied where
    /// the spool lives on another filesystem), never read into memory.
    pub(crate) async fn put_spooled(&self, file: SpoolFile) -> Result<BlobId, BlobError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.put_spooled_blocking(&file))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))?
    }

    fn put_spooled_blocking(&self, file: &SpoolFile) -> Result<BlobId, BlobError> {
        let spool = file.path();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BlobError::Io { path, source }
        };
        std::fs::File::open(spool).and_then(|f| f.sync_all()).map_err(io(spool))?;
        let id = BlobId::from_bytes(rand::random());
        let path = self.path(&id);
        if std::fs::rename(spool, &path).is_err() {
            let tmp = self.root.join("tmp").join(id.as_str());
            std::fs::copy(spool, &tmp).map_err(io(&tmp))?;
            std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
        }
        sync_dir(path.parent().unwrap_or(&self.root))?;
        Ok(id)
    }

    /// Writes what `reader` yields durably as the blob `id` (a copy from another store;
    /// blobs are write-once, so an existing one is replaced by the same bytes).
    pub(crate) async fn put_named(
        &self,
        id: &BlobId,
        mut reader: impl tokio::io::AsyncRead + Unpin,
        observe: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<u64, BlobError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tmp = self.root.join("tmp").join(format!("copy-{}", id.as_str()));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BlobError::Io { path, source }
        };
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io(&tmp))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).await.map_err(io(&self.path(id)))?;
            if n == 0 {
                break;
            }
            observe(&buf[..n]);
            file.write_all(&buf[..n]).await.map_err(io(&tmp))?;
            total += n as u64;
        }
        file.sync_all().await.map_err(io(&tmp))?;
        drop(file);
        let path = self.path(id);
        tokio::fs::rename(&tmp, &path).await.map_err(io(&path))?;
        Ok(total)
    }

    /// Syncs the fan-out folders (after [`FsStore::put_named`] copies).
    pub(crate) async fn sync_folders(&self) -> Result<(), BlobError> {
        let objects = self.root.join("objects");
        tokio::task::spawn_blocking(move || {
            for i in 0..=255u8 {
                sync_dir(&objects.join(format!("{i:02x}")))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| BlobError::Task(e.to_string()))?
    }

    /// The whole blob.
    pub(crate) async fn get(&self, id: &BlobId) -> Result<Vec<u8>, BlobError> {
        let path = self.path(id);
        tokio::fs::read(&path).await.map_err(|source| BlobError::Io { path, source })
    }

    /// The whole blob, read on the calling thread: for small blobs (from the page cache
    /// this costs less than a hand-off to the blocking pool) and inside `spawn_blocking`.
    /// `size` is the size recorded for it; it sizes the buffer (a wrong one costs only
    /// speed).
    pub(crate) fn get_blocking(&self, id: &BlobId, size: u64) -> Result<Vec<u8>, BlobError> {
        let relative = relative(id);
        let io = |source: std::io::Error| BlobError::Io { path: self.path(id), source };
        let fd = rustix::fs::openat(&*self.objects, &relative, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| io(e.into()))?;
        // Plain reads into a buffer of the expected size (std's `read_to_end` asks the
        // file for its size and position first: two more system calls per message).
        // One spare byte lets the first read show that the file ends where expected.
        // (A recorded size is trusted only so far: it sizes a buffer, nothing else.)
        let hint = usize::try_from(size.min(256 << 20)).unwrap_or(0);
        let mut bytes = Vec::with_capacity(hint + 1);
        loop {
            if bytes.len() == bytes.capacity() {
                bytes.reserve(bytes.capacity());
            }
            let asked = bytes.capacity() - bytes.len();
            let n = rustix::io::retry_on_intr(|| rustix::io::read(&fd, rustix::buffer::spare_capacity(&mut bytes)))
                .map_err(|e| io(e.into()))?;
            // A short read from a regular file is its end.
            if n == 0 || n < asked {
                break;
            }
        }
        Ok(bytes)
    }

    /// The blob's file, open for reading.
    pub(crate) async fn reader(&self, id: &BlobId) -> Result<tokio::fs::File, BlobError> {
        let path = self.path(id);
        tokio::fs::File::open(&path).await.map_err(|source| BlobError::Io { path, source })
    }

    /// At most `len` bytes from `offset` on (fewer where the blob ends): for partial
    /// reads of large messages. `len` is the caller's bound; nothing more is read.
    pub(crate) async fn get_range(&self, id: &BlobId, offset: u64, len: u64) -> Result<Vec<u8>, BlobError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.path(id);
        let io = |source| BlobError::Io { path: path.clone(), source };
        let mut file = tokio::fs::File::open(&path).await.map_err(io)?;
        file.seek(std::io::SeekFrom::Start(offset)).await.map_err(io)?;
        let mut bytes = Vec::new();
        file.take(len).read_to_end(&mut bytes).await.map_err(io)?;
        Ok(bytes)
    }

    /// Where a blob lives: nobody outside this crate knows.
    fn path(&self, id: &BlobId) -> PathBuf {
        self.root.join("objects").join(relative(id))
    }

    /// Whether the blob exists.
    pub(crate) async fn exists(&self, id: &BlobId) -> Result<bool, BlobError> {
        let path = self.path(id);
        tokio::fs::try_exists(&path).await.map_err(|source| BlobError::Io { path, source })
    }

    /// Removes a blob; a missing one is not an error.
    pub(crate) async fn delete(&self, id: &BlobId) -> Result<(), BlobError> {
        let path = self.path(id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BlobError::Io { path, source }),
        }
    }

    /// Blobs (and leftover temporary files, which are removed right away) older than
    /// `age`: candidates for the orphan sweep.
    pub(crate) async fn older_than(&self, age: Duration) -> Result<Vec<BlobId>, BlobError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.older_than_blocking(age))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))?
    }

    fn older_than_blocking(&self, age: Duration) -> Result<Vec<BlobId>, BlobError> {
        let cutoff = SystemTime::now().checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
        let old = |entry: &std::fs::DirEntry| is_older(entry, cutoff);
        remove_old_files(&self.root.join("tmp"), age)?;
        let mut found = Vec::new();
        let objects = self.root.join("objects");
        for dir in
            std::fs::read_dir(&objects).map_err(|source| BlobError::Io { path: objects.clone(), source })?.flatten()
        {
            for entry in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                if let Some(id) = entry.file_name().to_str().and_then(|n| BlobId::parse(n).ok())
                    && old(&entry)
                {
                    found.push(id);
                }
            }
        }
        Ok(found)
    }
}

/// Removes the files in `dir` older than `age` (temporary and spool files a crash left).
pub(crate) fn remove_old_files(dir: &Path, age: Duration) -> Result<(), BlobError> {
    let cutoff = SystemTime::now().checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
    for entry in std::fs::read_dir(dir).map_err(|source| BlobError::Io { path: dir.to_path_buf(), source })?.flatten() {
        if is_older(&entry, cutoff) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

fn is_older(entry: &std::fs::DirEntry, cutoff: SystemTime) -> bool {
    entry.metadata().and_then(|m| m.modified()).map(|t| t < cutoff).unwrap_or(false)
}

/// `xy/<id>` under `objects`.
fn relative(id: &BlobId) -> String {
    let id = id.as_str();
    format!("{}/{id}", &id[..2])
}

fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| BlobError::Io { path: dir.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use postfach_types::BlobIdError;

    #[tokio::test]
    async fn put_get_delete_and_sweep_candidates() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = FsStore::open(dir.path()).expect("open");
        let id = store.put(b"Subject: hi\r\n\r\nbody\r\n".to_vec()).await.expect("put");
        assert_eq!(store.get(&id).await.expect("get"), b"Subject: hi\r\n\r\nbody\r\n");
        assert!(store.path(&id).starts_with(dir.path().join("objects").join(&id.as_str()[..2])));
        assert!(store.exists(&id).await.expect("exists"));
        assert_eq!(store.get_range(&id, 9, 4).await.expect("range"), b"hi\r\n");
        assert_eq!(store.get_range(&id, 15, 100).await.expect("range"), b"body\r\n");
        assert!(store.get_range(&id, 100, 10).await.expect("past the end").is_empty());
        let other = store.put(vec![0u8; 100_000]).await.expect("put");
        assert_ne!(id, other);
        assert!(store.older_than(Duration::from_secs(3600)).await.expect("list").is_empty());
        let all = store.older_than(Duration::ZERO).await.expect("list");
        assert_eq!(all.len(), 2);
        store.delete(&id).await.expect("delete");
        store.delete(&id).await.expect("deleting twice is fine");
        assert!(store.get(&id).await.is_err());
        assert!(!store.exists(&id).await.expect("exists"));
        // Reopening keeps the data.
        let again = FsStore::open(dir.path()).expect("reopen");
        assert_eq!(again.get(&other).await.expect("get").len(), 100_000);
    }

    #[tokio::test]
    async fn reads_whole_files_whatever_size_was_recorded() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = FsStore::open(dir.path()).expect("open");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let id = store.put(bytes.clone()).await.expect("put");
        for size in [300_000, 0, 1, 4096, 299_999, 300_001, 10_000_000, u64::MAX] {
            assert_eq!(store.get_blocking(&id, size).expect("read"), bytes, "recorded size {size}");
        }
        let empty = store.put(Vec::new()).await.expect("put");
        assert!(store.get_blocking(&empty, 0).expect("read").is_empty());
        store.delete(&id).await.expect("delete");
        assert!(store.get_blocking(&id, 300_000).is_err());
    }

    #[test]
    fn ids_are_validated() {
        assert!(matches!(BlobId::parse("../../etc/passwd"), Err(BlobIdError(_))));
        assert!(BlobId::parse(&"a".repeat(32)).is_ok());
    }
}
