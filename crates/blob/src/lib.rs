//! Message bytes ("blobs") on the filesystem under `data_dir/blobs`.
//!
//! A blob is written once and never changed. [`BlobStore::put`] writes it to `tmp/`,
//! fsyncs the file, renames it to `objects/xy/<id>` and fsyncs that folder, so when it
//! returns the bytes survive a crash (invariant 4: nothing is acknowledged before its bytes
//! and metadata are durable). Metadata pointing at the blob is committed afterwards; if
//! that commit fails, the blob is an orphan that the sweep removes later
//! ([`BlobStore::older_than`] lists candidates, the store says which are unreferenced).
//!
//! Bytes arriving from the network are first written to a [`Spool`] file (in `tmp/`), so
//! a client sending a large message costs a small buffer, not the message's size in
//! memory; [`SpoolFile`] is read back under the caller's memory budget.

mod spool;
mod store;

pub use spool::{Spool, SpoolFile};
pub use store::{BlobError, BlobId, BlobIdError, BlobReader, BlobStore};
