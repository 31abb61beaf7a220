//! Message bytes ("blobs"), on the filesystem under `data_dir` or in an S3 bucket.
//!
//! A blob is written once and never changed. [`BlobStore::put`] returns only when the bytes
//! survive a crash: on the filesystem (fs.rs) the file is written to `tmp/`, fsync'd,
//! renamed to `objects/xy/<id>` and that folder fsync'd; in S3 (s3.rs) the object PUT (or
//! multipart upload) has completed. Invariant 8: nothing is acknowledged before its bytes
//! and metadata are durable, so metadata pointing at the blob is committed afterwards; if
//! that commit fails, the blob is an orphan that the sweep removes later
//! ([`BlobStore::older_than`] lists candidates, the store says which are unreferenced).
//!
//! Two [`Namespace`]s exist, the mailboxes' blobs and the outbound queue's spool, each its
//! own folder under `data_dir` or its own prefix in the bucket. [`BlobStore::open`], from
//! the configured [`Backend`], is the one way to get a store.
//!
//! Bytes arriving from the network are first written to a [`Spool`] file (always local, in
//! the namespace's `tmp/` folder), so a client sending a large message costs a small
//! buffer, not the message's size in memory; a [`SpoolFile`] is read back under the
//! caller's memory budget or stored as it is ([`Content::Spooled`]), streamed to S3 in
//! parts.

mod fs;
mod s3;
mod spool;
mod store;

pub use spool::{Spool, SpoolFile};
pub use store::{Backend, BlobError, BlobId, BlobIdError, BlobReader, BlobStore, Content, Namespace, S3Settings};
