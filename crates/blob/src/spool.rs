//! Spool files: where a message being received (SMTP DATA, an IMAP APPEND literal) is
//! written as it arrives. A spool file lives in the namespace's local `tmp/` folder (also
//! with the S3 backend) and is removed when its handle is dropped; the orphan sweep
//! removes any a crash left behind.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

use crate::store::{BlobError, BlobId, BlobStore};

/// Bytes kept in memory before they are written to the file.
const BUFFER: usize = 32 * 1024;

/// A spool file being written.
#[derive(Debug)]
pub struct Spool {
    file: Option<BufWriter<tokio::fs::File>>,
    path: Removed,
    len: u64,
}

/// A complete spool file.
#[derive(Debug)]
pub struct SpoolFile {
    path: Removed,
    len: u64,
}

/// A path whose file is removed when this is dropped.
#[derive(Debug)]
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl BlobStore {
    /// Starts a spool file.
    pub async fn spool(&self) -> Result<Spool, BlobError> {
        let path = self.local.join("tmp").join(format!("spool-{}", BlobId::from_bytes(rand::random())));
        let file =
            tokio::fs::File::create(&path).await.map_err(|source| BlobError::Io { path: path.clone(), source })?;
        Ok(Spool { file: Some(BufWriter::with_capacity(BUFFER, file)), path: Removed(path), len: 0 })
    }
}

impl Spool {
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        let Some(file) = self.file.as_mut() else { return Err(self.error(std::io::ErrorKind::BrokenPipe.into())) };
        match file.write_all(bytes).await {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Ends writing. (Spool files are not synced: they become durable only as a blob.)
    pub async fn finish(mut self) -> Result<SpoolFile, BlobError> {
        if let Some(mut file) = self.file.take()
            && let Err(e) = file.flush().await
        {
            return Err(self.error(e));
        }
        Ok(SpoolFile { path: self.path, len: self.len })
    }

    fn error(&self, source: std::io::Error) -> BlobError {
        BlobError::Io { path: self.path.0.clone(), source }
    }
}

impl SpoolFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path.0
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole content; the caller reserves memory for it first.
    pub async fn read_all(&self) -> Result<Vec<u8>, BlobError> {
        let io = |source| BlobError::Io { path: self.path.0.clone(), source };
        let mut file = tokio::fs::File::open(&self.path.0).await.map_err(io)?;
        let mut bytes = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        file.read_to_end(&mut bytes).await.map_err(io)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spool_files_hold_what_was_written_and_vanish_when_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = BlobStore::open(&crate::Backend::Fs, dir.path(), crate::Namespace::Mailboxes).expect("open");
        let mut spool = store.spool().await.expect("spool");
        for _ in 0..100 {
            spool.write(&[b'x'; 1000]).await.expect("write");
        }
        spool.write(b"end").await.expect("write");
        let file = spool.finish().await.expect("finish");
        assert_eq!(file.len(), 100_003);
        let bytes = file.read_all().await.expect("read");
        assert_eq!(bytes.len(), 100_003);
        assert!(bytes.ends_with(b"xend"));
        let tmp = dir.path().join("blobs/tmp");
        assert_eq!(std::fs::read_dir(&tmp).expect("tmp").count(), 1);
        drop(file);
        assert_eq!(std::fs::read_dir(&tmp).expect("tmp").count(), 0, "removed when dropped");
        let unfinished = store.spool().await.expect("spool");
        drop(unfinished);
        assert_eq!(std::fs::read_dir(&tmp).expect("tmp").count(), 0);
    }
}
