//! Errors of the `bgw-cloud` library: starting the server and using the store.

use std::path::PathBuf;

/// A cause of any type, for variants whose cause comes from more than one library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Failures that stop the server from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("data directory {path}: exists but is not a directory")]
    DataDirNotDir { path: PathBuf },
    #[error("data directory {path}: cannot {what} it: {source}")]
    DataDir {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS: {what}: {source}")]
    Tls { what: String, source: BoxError },
    #[error("admin credentials file {path} is not usable: {message}")]
    Credentials { path: PathBuf, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("service registry: {0}")]
    Registry(String),
    #[error("chunk store: {0}")]
    Chunks(#[from] bgw_chunks::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Failures of the persistent store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {id} does not exist")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot open the store at {path}: {source}")]
    Open { path: PathBuf, source: BoxError },
    #[error(
        "{path} holds data that is not a bgw-cloud store ({found}); point --data at an empty \
         directory or at an existing bgw-cloud data directory"
    )]
    Foreign { path: PathBuf, found: String },
    #[error("storage engine error: {0}")]
    Engine(#[from] sled::Error),
    #[error("stored record {key} cannot be decoded: {source}")]
    Corrupt { key: String, source: BoxError },
}

impl StoreError {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        StoreError::NotFound {
            kind,
            id: id.into(),
        }
    }
}
