//! The `BlobStore` contract, run on every backend: the filesystem and S3 (a real Garage
//! on loopback, `postfach_testgarage`).

use std::path::Path;
use std::time::Duration;

use postfach_blob::{Backend, BlobStore, Content, Namespace, S3Settings};
use postfach_testgarage::Garage;
use postfach_types::Secret;
use tokio::io::AsyncReadExt;

fn s3(garage: &Garage) -> Backend {
    Backend::S3(S3Settings {
        endpoint: garage.endpoint.clone(),
        bucket: garage.bucket.clone(),
        region: garage.region.clone(),
        access_key_id: garage.access_key_id.clone(),
        secret_access_key: Secret::new(garage.secret_access_key.clone()),
    })
}

/// Bytes that differ from position to position, so a misplaced part shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 65_536) as u8).collect()
}

async fn contract(backend: &Backend, data_dir: &Path) {
    let store = BlobStore::open(backend, data_dir, Namespace::Mailboxes).expect("open");
    store.check().await.expect("the store answers");
    let id = store.put(b"Subject: hi\r\n\r\nbody\r\n".to_vec()).await.expect("put");
    assert_eq!(store.get(&id).await.expect("get"), b"Subject: hi\r\n\r\nbody\r\n");
    assert_eq!(store.get_sized(&id, 21).await.expect("get"), b"Subject: hi\r\n\r\nbody\r\n");
    assert!(store.exists(&id).await.expect("exists"));
    assert_eq!(store.get_range(&id, 9, 4).await.expect("range"), b"hi\r\n");
    assert_eq!(store.get_range(&id, 15, 100).await.expect("range"), b"body\r\n");
    assert!(store.get_range(&id, 100, 10).await.expect("past the end").is_empty());
    let mut read = Vec::new();
    store.reader(&id).await.expect("reader").read_to_end(&mut read).await.expect("read");
    assert_eq!(read, b"Subject: hi\r\n\r\nbody\r\n");

    let big = pattern(300_000);
    let other = store.put(big.clone()).await.expect("put");
    assert_ne!(id, other);
    let empty = store.put(Vec::new()).await.expect("an empty blob");
    let batch = store.get_batch(vec![(other.clone(), 300_000), (empty.clone(), 0), (id.clone(), 1)]).await;
    let batch: Vec<Vec<u8>> = batch.into_iter().map(|r| r.expect("batch read")).collect();
    assert_eq!(batch, [big, Vec::new(), b"Subject: hi\r\n\r\nbody\r\n".to_vec()]);

    // The sweep's listing: nothing is an hour old yet; after a moment all three are.
    assert!(store.older_than(Duration::from_secs(3600)).await.expect("list").is_empty());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut listed = store.older_than(Duration::ZERO).await.expect("list");
    listed.sort();
    let mut all = vec![id.clone(), other.clone(), empty.clone()];
    all.sort();
    assert_eq!(listed, all);

    // The queue is its own namespace: it sees none of the mailboxes' blobs.
    let queue = BlobStore::open(backend, data_dir, Namespace::Queue).expect("open the queue");
    assert!(!queue.exists(&id).await.expect("exists"));
    assert!(queue.older_than(Duration::ZERO).await.expect("list").is_empty());
    let queued = queue.put(b"queued".to_vec()).await.expect("put");
    assert!(!store.exists(&queued).await.expect("exists"));
    assert_eq!(queue.get(&queued).await.expect("get"), b"queued");

    store.delete(&id).await.expect("delete");
    store.delete(&id).await.expect("deleting twice is fine");
    assert!(store.get(&id).await.is_err());
    assert!(store.get_sized(&id, 21).await.is_err());
    assert!(store.reader(&id).await.is_err());
    assert!(!store.exists(&id).await.expect("exists"));
    // Another handle (a restarted server, another node) reads the same blobs.
    let again = BlobStore::open(backend, data_dir, Namespace::Mailboxes).expect("reopen");
    assert_eq!(again.get(&other).await.expect("get").len(), 300_000);
}

/// A message larger than two upload parts, spooled and stored from its file.
async fn streamed(backend: &Backend, data_dir: &Path) {
    let store = BlobStore::open(backend, data_dir, Namespace::Mailboxes).expect("open");
    let bytes = pattern(17 * 1024 * 1024 + 12_345);
    let mut spool = store.spool().await.expect("spool");
    for chunk in bytes.chunks(64 * 1024) {
        spool.write(chunk).await.expect("write");
    }
    let file = spool.finish().await.expect("finish");
    let id = store.put(Content::Spooled(file)).await.expect("a streamed put");
    assert!(store.get(&id).await.expect("get") == bytes, "the bytes read back are the bytes spooled");
    let mut read = Vec::new();
    store.reader(&id).await.expect("reader").read_to_end(&mut read).await.expect("read");
    assert!(read == bytes);
    let at = 8 * 1024 * 1024 - 3;
    assert_eq!(store.get_range(&id, at as u64, 10).await.expect("range"), bytes[at..at + 10]);
    // A large message in memory goes up in parts too.
    let id = store.put(bytes.clone()).await.expect("a large put");
    assert!(store.get(&id).await.expect("get") == bytes);
    // Nothing is left in the spool folder.
    let tmp = data_dir.join("blobs/tmp");
    assert_eq!(std::fs::read_dir(&tmp).expect("tmp").count(), 0);
}

#[tokio::test]
async fn the_contract_holds_on_files() {
    let dir = tempfile::tempdir().expect("tmp");
    contract(&Backend::Fs, dir.path()).await;
}

#[tokio::test]
async fn the_contract_holds_on_s3() {
    let garage = Garage::start();
    let dir = tempfile::tempdir().expect("tmp");
    contract(&s3(&garage), dir.path()).await;
}

#[tokio::test]
async fn large_messages_are_streamed_on_files() {
    let dir = tempfile::tempdir().expect("tmp");
    streamed(&Backend::Fs, dir.path()).await;
}

#[tokio::test]
async fn large_messages_are_streamed_on_s3() {
    let garage = Garage::start();
    let dir = tempfile::tempdir().expect("tmp");
    streamed(&s3(&garage), dir.path()).await;
}

#[tokio::test]
async fn a_store_that_does_not_answer_fails_the_put_and_recovers() {
    let mut garage = Garage::start();
    let dir = tempfile::tempdir().expect("tmp");
    let store = BlobStore::open(&s3(&garage), dir.path(), Namespace::Mailboxes).expect("open");
    let kept = store.put(b"before".to_vec()).await.expect("put");
    garage.stop();
    assert!(store.put(b"while down".to_vec()).await.is_err(), "no put succeeds while the store is down");
    assert!(store.check().await.is_err());
    garage.restart();
    assert_eq!(store.get(&kept).await.expect("kept across the restart"), b"before");
    let id = store.put(b"after".to_vec()).await.expect("put after the restart");
    assert_eq!(store.get(&id).await.expect("get"), b"after");
}

#[tokio::test]
async fn wrong_credentials_are_refused_at_the_check() {
    let garage = Garage::start();
    let dir = tempfile::tempdir().expect("tmp");
    let Backend::S3(mut settings) = s3(&garage) else { unreachable!() };
    settings.secret_access_key = Secret::new("0".repeat(64));
    let store = BlobStore::open(&Backend::S3(settings), dir.path(), Namespace::Mailboxes).expect("open");
    let error = store.check().await.expect_err("refused").to_string();
    assert!(!error.contains(&"0".repeat(64)), "{error}");
}
