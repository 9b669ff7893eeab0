//! Content-addressed storage of backup chunks.
//!
//! A chunk is named by the SHA-256 of its raw bytes ([`ChunkHash`]) and stored exactly as the
//! gateway sent it (a zstd frame); checking that the content matches the name happens before
//! [`ChunkStore::put`]. Two backends:
//!
//! - [`DirChunkStore`]: a directory (by default `DATA/chunks`), fanned out by the first two
//!   bytes of the hash (`ab/cd/abcd…`), each chunk written to a temporary file and renamed into
//!   place, so a reader never sees half a chunk;
//! - [`ObjectChunkStore`]: any S3-compatible object store (AWS S3, Ceph RGW, MinIO …) through
//!   the `object_store` crate, under `s3://bucket/prefix/`.
//!
//! [`ChunkStoreSpec::parse`] reads the `--chunks` option of `bgw-cloud`:
//!
//! ```
//! use bgw_chunks::ChunkStoreSpec;
//! let spec = ChunkStoreSpec::parse("s3://backups/site-a").unwrap();
//! assert_eq!(spec, ChunkStoreSpec::S3 { bucket: "backups".into(), prefix: "site-a".into() });
//! assert!(ChunkStoreSpec::parse("ftp://x").is_err());
//! ```

mod dir;
mod error;
mod object;

use std::path::PathBuf;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;

pub use bgw_protocol::backup::ChunkHash;
pub use dir::DirChunkStore;
pub use error::Error;
pub use object::ObjectChunkStore;

/// One stored chunk, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkInfo {
    pub hash: ChunkHash,
    /// Stored (compressed) size in bytes.
    pub size: u64,
    /// When it was written: the garbage collector keeps chunks younger than its own start.
    pub modified: DateTime<Utc>,
}

/// Where chunks live. Every method is safe to call concurrently; writing a chunk that is
/// already stored leaves one intact copy.
pub trait ChunkStore: Send + Sync + 'static {
    /// Stores `data` under `hash`. Returns `false` when the chunk was already there.
    fn put(&self, hash: &ChunkHash, data: Bytes) -> BoxFuture<'_, Result<bool, Error>>;

    /// The stored bytes, or `None`.
    fn get(&self, hash: &ChunkHash) -> BoxFuture<'_, Result<Option<Bytes>, Error>>;

    fn has(&self, hash: &ChunkHash) -> BoxFuture<'_, Result<bool, Error>>;

    /// Every stored chunk, in no particular order.
    fn list(&self) -> BoxStream<'_, Result<ChunkInfo, Error>>;

    /// Removes a chunk; removing one that is not there is not an error.
    fn delete(&self, hash: &ChunkHash) -> BoxFuture<'_, Result<(), Error>>;

    /// Where the chunks are, for logs and messages (`/var/lib/bgw-cloud/chunks`, `s3://b/p`).
    fn location(&self) -> String;
}

/// The `--chunks` option: where to keep chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkStoreSpec {
    /// A local directory.
    Dir(PathBuf),
    /// An S3-compatible bucket; endpoint, region and credentials come from the usual `AWS_*`
    /// variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; `AWS_ALLOW_HTTP=true` for a plain-HTTP
    /// server such as a local test one).
    S3 { bucket: String, prefix: String },
}

impl ChunkStoreSpec {
    /// `s3://bucket[/prefix]`, `file:///path` or a plain path.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Spec {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = value.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("the bucket name is missing (s3://BUCKET/PREFIX)"));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if let Some(path) = value.strip_prefix("file://") {
            return Ok(Self::Dir(PathBuf::from(path)));
        }
        if value.contains("://") {
            return Err(bad("expected s3://BUCKET/PREFIX or a directory path"));
        }
        if value.is_empty() {
            return Err(bad("it is empty"));
        }
        Ok(Self::Dir(PathBuf::from(value)))
    }

    /// Opens the store this names (creating the directory if needed).
    pub async fn open(&self) -> Result<std::sync::Arc<dyn ChunkStore>, Error> {
        Ok(match self {
            Self::Dir(path) => std::sync::Arc::new(DirChunkStore::open(path).await?),
            Self::S3 { bucket, prefix } => {
                std::sync::Arc::new(ObjectChunkStore::s3_from_env(bucket, prefix)?)
            }
        })
    }
}
