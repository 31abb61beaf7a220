//! The S3 backend (object_store's `AmazonS3`): one object per blob, `<prefix>/<id>`.
//!
//! A put returns when S3 answered the PUT (or the multipart upload's completion) with
//! success: from then on the object is durable by the store's own guarantee. Every request
//! has a bounded time; object_store retries connection failures and server errors within
//! [`RETRY_WITHIN`], and timed-out requests only where they are idempotent. Every write goes
//! to a fresh random key, so a retried PUT or part can only write the same bytes again.

use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig};
use tokio::io::AsyncReadExt;

use crate::spool::SpoolFile;
use crate::store::{BlobError, BlobId, S3Settings};

/// Objects up to this size go up in one PUT; larger ones in parts of this size (S3 wants
/// at least 5 MiB per part but the last). At most two parts are in memory at once.
const PART: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once.
const PARTS_AT_ONCE: usize = 2;
/// How long one request may take, body included (an 8 MiB part at 2 Mbit/s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries of one request stop after this long (or three retries).
const RETRY_WITHIN: Duration = Duration::from_secs(20);
/// Keys one sweep listing reads before it stops; the next goes on from there.
const LIST_PER_SWEEP: usize = 20_000;

#[derive(Debug, Clone)]
pub(crate) struct S3Store {
    client: Arc<AmazonS3>,
    prefix: &'static str,
    /// Where the next sweep listing goes on (the last key the previous one read).
    sweep_from: Arc<Mutex<Option<Key>>>,
    /// Keys one sweep listing reads ([`LIST_PER_SWEEP`]; fewer in tests).
    list_per_sweep: usize,
}

fn remote(action: &'static str) -> impl FnOnce(object_store::Error) -> BlobError {
    move |source| BlobError::Remote { action, source }
}

impl S3Store {
    pub(crate) fn open(settings: &S3Settings, prefix: &'static str) -> Result<Self, BlobError> {
        let options = ClientOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_allow_http(settings.endpoint.starts_with("http://"));
        let retry = RetryConfig { backoff: BackoffConfig::default(), max_retries: 3, retry_timeout: RETRY_WITHIN };
        let client = AmazonS3Builder::new()
            .with_endpoint(&settings.endpoint)
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(settings.secret_access_key.expose())
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map_err(|e| BlobError::Settings(e.to_string()))?;
        Ok(Self {
            client: Arc::new(client),
            prefix,
            sweep_from: Arc::new(Mutex::new(None)),
            list_per_sweep: LIST_PER_SWEEP,
        })
    }

    fn key(&self, id: &BlobId) -> Key {
        Key::from(format!("{}/{}", self.prefix, id.as_str()))
    }

    pub(crate) async fn check(&self) -> Result<(), BlobError> {
        let prefix = Key::from(self.prefix);
        self.client.list_with_delimiter(Some(&prefix)).await.map(drop).map_err(remote("listing the bucket"))
    }

    pub(crate) async fn put(&self, bytes: Vec<u8>) -> Result<BlobId, BlobError> {
        let id = BlobId::from_bytes(rand::random());
        let key = self.key(&id);
        let bytes = Bytes::from(bytes);
        if bytes.len() <= PART {
            self.client.put(&key, bytes.into()).await.map_err(remote("storing a message"))?;
        } else {
            // Slices of one buffer: no copy.
            let parts: Vec<Result<Bytes, BlobError>> = (0..bytes.len())
                .step_by(PART)
                .map(|start| Ok(bytes.slice(start..(start + PART).min(bytes.len()))))
                .collect();
            self.upload_parts(&key, futures_util::stream::iter(parts)).await?;
        }
        Ok(id)
    }

    /// Streams a spool file: one PUT when it is small, else a multipart upload reading
    /// one part at a time.
    pub(crate) async fn put_spooled(&self, file: &SpoolFile) -> Result<BlobId, BlobError> {
        let id = BlobId::from_bytes(rand::random());
        let key = self.key(&id);
        let (path, len) = (file.path().to_path_buf(), file.len());
        let io = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| BlobError::Io { path, source }
        };
        let mut reader = tokio::fs::File::open(&path).await.map_err(io(&path))?;
        if len <= PART as u64 {
            let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            reader.read_to_end(&mut bytes).await.map_err(io(&path))?;
            self.client.put(&key, Bytes::from(bytes).into()).await.map_err(remote("storing a message"))?;
            return Ok(id);
        }
        let parts = futures_util::stream::unfold(Some(reader), move |reader| {
            let path = path.clone();
            async move {
                let mut reader = reader?;
                let mut part = Vec::with_capacity(PART);
                match (&mut reader).take(PART as u64).read_to_end(&mut part).await {
                    Ok(0) => None,
                    Ok(_) => Some((Ok(Bytes::from(part)), Some(reader))),
                    Err(source) => Some((Err(BlobError::Io { path, source }), None)),
                }
            }
        });
        self.upload_parts(&key, parts).await?;
        Ok(id)
    }

    /// A multipart upload of `parts`, at most [`PARTS_AT_ONCE`] in flight; aborted (the
    /// parts removed) when anything fails.
    async fn upload_parts(
        &self,
        key: &Key,
        parts: impl Stream<Item = Result<Bytes, BlobError>>,
    ) -> Result<(), BlobError> {
        let mut upload = self.client.put_multipart(key).await.map_err(remote("starting an upload"))?;
        let mut parts = std::pin::pin!(parts);
        let mut in_flight: std::collections::VecDeque<object_store::UploadPart> = std::collections::VecDeque::new();
        let result = async {
            while let Some(part) = parts.next().await {
                if in_flight.len() >= PARTS_AT_ONCE
                    && let Some(oldest) = in_flight.pop_front()
                {
                    oldest.await.map_err(remote("uploading a part"))?;
                }
                in_flight.push_back(upload.put_part(part?.into()));
            }
            for part in in_flight.drain(..) {
                part.await.map_err(remote("uploading a part"))?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => upload.complete().await.map(drop).map_err(remote("completing an upload")),
            Err(e) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(error = %abort, "aborting a failed upload failed; the bucket's lifecycle rule must remove its parts");
                }
                Err(e)
            }
        }
    }

    pub(crate) async fn get(&self, id: &BlobId) -> Result<Vec<u8>, BlobError> {
        let result = self.client.get(&self.key(id)).await.map_err(remote("reading a message"))?;
        let bytes = result.bytes().await.map_err(remote("reading a message"))?;
        Ok(Vec::from(bytes))
    }

    pub(crate) async fn reader(&self, id: &BlobId) -> Result<BodyReader, BlobError> {
        let result = self.client.get(&self.key(id)).await.map_err(remote("reading a message"))?;
        Ok(BodyReader { body: result.into_stream(), chunk: Bytes::new() })
    }

    pub(crate) async fn get_range(&self, id: &BlobId, offset: u64, len: u64) -> Result<Vec<u8>, BlobError> {
        let key = self.key(id);
        if len == 0 {
            return self.client.head(&key).await.map(|_| Vec::new()).map_err(remote("reading a message"));
        }
        let range: Range<u64> = offset..offset.saturating_add(len);
        let options = GetOptions { range: Some(GetRange::Bounded(range)), ..GetOptions::default() };
        match self.client.get_opts(&key, options).await {
            Ok(result) => Ok(Vec::from(result.bytes().await.map_err(remote("reading a message"))?)),
            // A range past the end is refused (HTTP 416); like a file, it reads as empty.
            Err(e) => match self.client.head(&key).await {
                Ok(meta) if offset >= meta.size => Ok(Vec::new()),
                _ => Err(BlobError::Remote { action: "reading a message", source: e }),
            },
        }
    }

    pub(crate) async fn exists(&self, id: &BlobId) -> Result<bool, BlobError> {
        match self.client.head(&self.key(id)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(BlobError::Remote { action: "looking for a message", source: e }),
        }
    }

    pub(crate) async fn delete(&self, id: &BlobId) -> Result<(), BlobError> {
        match self.client.delete(&self.key(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BlobError::Remote { action: "removing a message", source: e }),
        }
    }

    /// Up to [`LIST_PER_SWEEP`] keys of the prefix, listed from where the previous call
    /// stopped (from the start again once the end is reached); those older than `age`.
    pub(crate) async fn older_than(&self, age: Duration) -> Result<Vec<BlobId>, BlobError> {
        let cutoff = SystemTime::now()
            .checked_sub(age)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let prefix = Key::from(self.prefix);
        let from = self.sweep_from.lock().map(|f| f.clone()).unwrap_or(None);
        let mut listing = match &from {
            Some(from) => self.client.list_with_offset(Some(&prefix), from),
            None => self.client.list(Some(&prefix)),
        };
        let (mut found, mut read, mut last) = (Vec::new(), 0, None);
        while read < self.list_per_sweep {
            let Some(meta) = listing.next().await else {
                last = None;
                break;
            };
            let meta = meta.map_err(remote("listing the bucket"))?;
            read += 1;
            if meta.last_modified.timestamp_millis() < cutoff
                && let Some(id) = meta.location.filename().and_then(|name| BlobId::parse(name).ok())
            {
                found.push(id);
            }
            last = Some(meta.location);
        }
        if let Ok(mut from) = self.sweep_from.lock() {
            *from = last;
        }
        Ok(found)
    }
}

/// An object's body as an `AsyncRead`.
pub(crate) struct BodyReader {
    body: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader").field("buffered", &self.chunk.len()).finish_non_exhaustive()
    }
}

impl tokio::io::AsyncRead for BodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.chunk.is_empty() {
            match self.body.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(std::io::Error::other(e))),
                Poll::Ready(Some(Ok(chunk))) => self.chunk = chunk,
            }
        }
        let n = self.chunk.len().min(buf.remaining());
        let chunk = self.chunk.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postfach_types::Secret;

    #[tokio::test]
    async fn the_sweep_listing_is_bounded_and_goes_on_where_it_stopped() {
        let garage = postfach_testgarage::Garage::start();
        let settings = S3Settings {
            endpoint: garage.endpoint.clone(),
            bucket: garage.bucket.clone(),
            region: garage.region.clone(),
            access_key_id: garage.access_key_id.clone(),
            secret_access_key: Secret::new(garage.secret_access_key.clone()),
        };
        let mut store = S3Store::open(&settings, "blobs").expect("open");
        store.list_per_sweep = 2;
        let mut all = Vec::new();
        for i in 0..5u8 {
            all.push(store.put(vec![i; 10]).await.expect("put"));
        }
        all.sort();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let runs: Vec<Vec<BlobId>> = futures_util::stream::iter(0..4)
            .then(|_| store.older_than(Duration::ZERO))
            .map(|r| r.expect("list"))
            .collect()
            .await;
        assert_eq!(runs.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1, 2], "bounded, then from the start again");
        let mut seen: Vec<BlobId> = runs[..3].concat();
        seen.sort();
        assert_eq!(seen, all, "three runs cover every key once");
        assert_eq!(runs[3], runs[0]);
    }
}
