//! Errors of reading keys and manifests.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("cannot read key file {path}: {source}")]
    KeyRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    KeyWrite {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} does not hold a base64 ed25519 key of 32 bytes")]
    KeyFormat { path: PathBuf },
    #[error("{0:?} is not a version of the form MAJOR.MINOR.PATCH")]
    Version(String),
    #[error("cannot read the release manifest: {0}")]
    Manifest(#[source] serde_json::Error),
}
