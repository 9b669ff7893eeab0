//! Errors of the chunk store.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("chunk store option {value:?}: {reason}")]
    Spec { value: String, reason: String },
    #[error("chunk directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("object store {location}: {source}")]
    Object {
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error("object store {location}: {message}")]
    ObjectConfig { location: String, message: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
