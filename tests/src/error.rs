//! Errors of the test support: each says what failed and what to do next.

use std::path::PathBuf;

/// Everything the test support can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{tool} is not installed ({detail}): run scripts/test once, it installs everything the tests need")]
    ToolMissing { tool: String, detail: String },

    #[error("building the vCenter simulator failed (go build exited with {status}):\n{output}")]
    VcsimBuild { status: String, output: String },

    #[error("binary {path} does not exist: run `cargo build --workspace --bins` first (or set {env_var})")]
    BinaryMissing { path: PathBuf, env_var: String },

    #[error("could not start {name}: {source}")]
    Spawn {
        name: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{name} did not become ready within {seconds}s: {reason}\n--- {name} output ---\n{output}"
    )]
    NotReady {
        name: String,
        seconds: u64,
        reason: String,
        output: String,
    },

    #[error("{name} failed: {reason}\n--- {name} output ---\n{output}")]
    Process {
        name: String,
        reason: String,
        output: String,
    },

    #[error("{what} on {path}: {source}")]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("generating a test certificate: {0}")]
    Certificate(#[from] rcgen::Error),

    #[error("HTTP request to {url} failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{url} answered {status}: {body}")]
    HttpStatus {
        url: String,
        status: u16,
        body: String,
    },

    #[error("unexpected response from {url}: {reason}")]
    Response { url: String, reason: String },

    #[error("vCenter SOAP fault from {method}: {fault}")]
    SoapFault { method: String, fault: String },
}

/// Result alias of the test support.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

impl HarnessError {
    pub(crate) fn io(
        what: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        HarnessError::Io {
            what: what.into(),
            path: path.into(),
            source,
        }
    }
}
