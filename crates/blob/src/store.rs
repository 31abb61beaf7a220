//! [`BlobStore`]: one interface over the backends, and the one place that decides which
//! backend does what (the filesystem's in-place reads, S3's concurrent requests).

use std::path::{Path, PathBuf};
use std::time::Duration;

use postfach_types::Secret;
pub use postfach_types::{BlobId, BlobIdError};

use crate::fs::FsStore;
use crate::s3::S3Store;
use crate::spool::SpoolFile;

/// Where message bytes are kept (`[blobs] backend`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Backend {
    /// Files under `data_dir` (`blobs/`, `queue/`): one node.
    #[default]
    Fs,
    /// An S3 bucket that every node shares.
    S3(S3Settings),
}

/// An S3 bucket and the key to reach it. `Debug` redacts the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// Like `https://s3.example.net` or `http://127.0.0.1:3900`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
}

/// The two sets of blobs: each its own folder under `data_dir`, or its own prefix in the
/// bucket, so each sweep sees only its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// The mailboxes' messages (`data_dir/blobs`, keys `blobs/<id>`).
    Mailboxes,
    /// The outbound queue's copies (`data_dir/queue`, keys `queue/<id>`): every node must
    /// be able to deliver what another queued.
    Queue,
}

impl Namespace {
    /// The folder under `data_dir` and the key prefix in the bucket.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Mailboxes => "blobs",
            Namespace::Queue => "queue",
        }
    }

    /// The namespace's local folder: the blobs themselves on the filesystem backend, and
    /// spool files (`tmp/`) on every backend.
    pub fn folder(self, data_dir: &Path) -> PathBuf {
        data_dir.join(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("message storage error at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    BadId(#[from] BlobIdError),
    #[error("message storage task failed: {0}")]
    Task(String),
    /// The object store refused or did not answer in time (after the retries that are
    /// safe). The text names the bucket and key, never the credentials.
    #[error("object storage: {action} failed: {source}")]
    Remote { action: &'static str, source: object_store::Error },
    #[error("the object storage settings are unusable: {0}")]
    Settings(String),
}

impl BlobError {
    /// Whether the blob does not exist (as opposed to a store that did not answer): only
    /// then is a message lost; anything else is worth trying again.
    pub fn is_missing(&self) -> bool {
        match self {
            BlobError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            BlobError::Remote { source: object_store::Error::NotFound { .. }, .. } => true,
            _ => false,
        }
    }
}

/// What to store: bytes in memory, or a finished spool file (streamed, never read whole).
#[derive(Debug)]
pub enum Content {
    Bytes(Vec<u8>),
    Spooled(SpoolFile),
}

impl Content {
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(bytes) => bytes.len() as u64,
            Content::Spooled(file) => file.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<u8>> for Content {
    fn from(bytes: Vec<u8>) -> Self {
        Content::Bytes(bytes)
    }
}

impl From<SpoolFile> for Content {
    fn from(file: SpoolFile) -> Self {
        Content::Spooled(file)
    }
}

/// A blob being read in pieces ([`BlobStore::reader`]).
#[derive(Debug)]
pub struct BlobReader(pub(crate) ReaderKind);

#[derive(Debug)]
pub(crate) enum ReaderKind {
    File(tokio::fs::File),
    Remote(crate::s3::BodyReader),
}

impl tokio::io::AsyncRead for BlobReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match &mut self.0 {
            ReaderKind::File(file) => std::pin::Pin::new(file).poll_read(cx, buf),
            ReaderKind::Remote(body) => std::pin::Pin::new(body).poll_read(cx, buf),
        }
    }
}

/// The blob store of one namespace. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlobStore {
    /// The namespace's local folder; spool files go to its `tmp/`.
    pub(crate) local: PathBuf,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Fs(FsStore),
    S3(S3Store),
}

/// Messages up to this recorded size are read on the calling thread from the filesystem:
/// they come from the page cache in microseconds, less than a hand-off to the blocking
/// pool costs.
const READ_IN_PLACE: u64 = 64 * 1024;
/// Objects fetched at once for one batch ([`BlobStore::get_batch`]) from S3.
const REMOTE_READS_AT_ONCE: usize = 8;

impl BlobStore {
    /// THE way to open a store: the configured backend, the namespace's folder under
    /// `data_dir` (created on first use) and, for S3, its prefix in the bucket. Makes no
    /// request ([`BlobStore::check`] does).
    pub fn open(backend: &Backend, data_dir: &Path, namespace: Namespace) -> Result<Self, BlobError> {
        let local = namespace.folder(data_dir);
        let kind = match backend {
            Backend::Fs => Kind::Fs(FsStore::open(&local)?),
            Backend::S3(settings) => {
                let tmp = local.join("tmp");
                std::fs::create_dir_all(&tmp).map_err(|source| BlobError::Io { path: tmp, source })?;
                Kind::S3(S3Store::open(settings, namespace.name())?)
            }
        };
        Ok(Self { local, kind })
    }

    /// Whether the storage answers (for S3: one small listing of the prefix), so that a
    /// server with wrong settings stops at start instead of refusing mail later.
    pub async fn check(&self) -> Result<(), BlobError> {
        match &self.kind {
            Kind::Fs(_) => Ok(()),
            Kind::S3(s3) => s3.check().await,
        }
    }

    /// Stores the content durably and returns the new blob's id.
    pub async fn put(&self, content: impl Into<Content>) -> Result<BlobId, BlobError> {
        match (&self.kind, content.into()) {
            (Kind::Fs(fs), Content::Bytes(bytes)) => fs.put(bytes).await,
            (Kind::Fs(fs), Content::Spooled(file)) => fs.put_spooled(file).await,
            (Kind::S3(s3), Content::Bytes(bytes)) => s3.put(bytes).await,
            (Kind::S3(s3), Content::Spooled(file)) => s3.put_spooled(&file).await,
        }
    }

    /// The whole blob.
    pub async fn get(&self, id: &BlobId) -> Result<Vec<u8>, BlobError> {
        match &self.kind {
            Kind::Fs(fs) => fs.get(id).await,
            Kind::S3(s3) => s3.get(id).await,
        }
    }

    /// The whole blob, whose recorded size is `size` (it sizes buffers; a wrong one costs
    /// only speed). Small ones are read in place from the filesystem.
    pub async fn get_sized(&self, id: &BlobId, size: u64) -> Result<Vec<u8>, BlobError> {
        match &self.kind {
            Kind::Fs(fs) if size <= READ_IN_PLACE => fs.get_blocking(id, size),
            _ => self.get(id).await,
        }
    }

    /// Whole blobs for a batch of `(id, recorded size)`, in order: from the filesystem on
    /// one thread of the blocking pool, from S3 a few requests at a time.
    pub async fn get_batch(&self, batch: Vec<(BlobId, u64)>) -> Vec<Result<Vec<u8>, BlobError>> {
        use futures_util::StreamExt;
        match &self.kind {
            Kind::Fs(fs) => {
                let fs = fs.clone();
                tokio::task::spawn_blocking(move || batch.iter().map(|(id, size)| fs.get_blocking(id, *size)).collect())
                    .await
                    .unwrap_or_else(|e| vec![Err(BlobError::Task(e.to_string()))])
            }
            Kind::S3(s3) => {
                let reads = batch.into_iter().map(|(id, _)| {
                    let s3 = s3.clone();
                    async move { s3.get(&id).await }
                });
                futures_util::stream::iter(reads).buffered(REMOTE_READS_AT_ONCE).collect().await
            }
        }
    }

    /// A reader over the blob, for streaming large ones.
    pub async fn reader(&self, id: &BlobId) -> Result<BlobReader, BlobError> {
        match &self.kind {
            Kind::Fs(fs) => fs.reader(id).await.map(|f| BlobReader(ReaderKind::File(f))),
            Kind::S3(s3) => s3.reader(id).await.map(|r| BlobReader(ReaderKind::Remote(r))),
        }
    }

    /// At most `len` bytes from `offset` on (fewer where the blob ends): for partial
    /// reads of large messages. `len` is the caller's bound; nothing more is read.
    pub async fn get_range(&self, id: &BlobId, offset: u64, len: u64) -> Result<Vec<u8>, BlobError> {
        match &self.kind {
            Kind::Fs(fs) => fs.get_range(id, offset, len).await,
            Kind::S3(s3) => s3.get_range(id, offset, len).await,
        }
    }

    /// Whether the blob exists.
    pub async fn exists(&self, id: &BlobId) -> Result<bool, BlobError> {
        match &self.kind {
            Kind::Fs(fs) => fs.exists(id).await,
            Kind::S3(s3) => s3.exists(id).await,
        }
    }

    /// Copies the blob into `target` (a store on files, as a backup or a restored
    /// `data_dir` holds) under the same id, streamed; `observe` sees every chunk as it
    /// passes (for checksums). The file is synced; its folder is synced by [`BlobStore::sync`].
    /// Returns the number of bytes copied. A blob missing here is an error whose
    /// [`BlobError::is_missing`] is true.
    pub async fn copy_to(
        &self,
        id: &BlobId,
        target: &BlobStore,
        observe: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<u64, BlobError> {
        let Kind::Fs(fs) = &target.kind else {
            return Err(BlobError::Settings("a copy goes to files, not to a bucket".into()));
        };
        let reader = self.reader(id).await?;
        fs.put_named(id, reader, observe).await
    }

    /// Makes the copies written by [`BlobStore::copy_to`] into this store durable (syncs
    /// the folders they were renamed into).
    pub async fn sync(&self) -> Result<(), BlobError> {
        match &self.kind {
            Kind::Fs(fs) => fs.sync_folders().await,
            Kind::S3(_) => Ok(()),
        }
    }

    /// Removes a blob; a missing one is not an error.
    pub async fn delete(&self, id: &BlobId) -> Result<(), BlobError> {
        match &self.kind {
            Kind::Fs(fs) => fs.delete(id).await,
            Kind::S3(s3) => s3.delete(id).await,
        }
    }

    /// Blobs older than `age`: candidates for the orphan sweep. Leftover temporary and
    /// spool files of that age are removed right away. On S3 one call lists a bounded
    /// number of keys and the next call goes on where it stopped.
    pub async fn older_than(&self, age: Duration) -> Result<Vec<BlobId>, BlobError> {
        match &self.kind {
            Kind::Fs(fs) => fs.older_than(age).await,
            Kind::S3(s3) => {
                let tmp = self.local.join("tmp");
                tokio::task::spawn_blocking(move || crate::fs::remove_old_files(&tmp, age))
                    .await
                    .map_err(|e| BlobError::Task(e.to_string()))??;
                s3.older_than(age).await
            }
        }
    }
}
