//! Errors of the agent library.

use std::path::PathBuf;

/// Everything that can go wrong in the agent, with the object it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read configuration file {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {message}")]
    ConfigInvalid { path: PathBuf, message: String },
    #[error("cannot open the state store in {path}: {message}")]
    StateOpen { path: PathBuf, message: String },
    #[error("state store operation failed ({what}): {source}")]
    State {
        what: &'static str,
        source: sled::Error,
    },
    #[error("corrupt value in the state store under {key}: {source}")]
    StateCorrupt {
        key: String,
        source: serde_json::Error,
    },
    #[error("cannot read the CA file {path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("cannot build the HTTPS client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("cannot reach the cloud at {url}: {message}")]
    CloudUnreachable { url: String, message: String },
    #[error("the cloud refused {path} with HTTP {status} {code}: {message}")]
    CloudRefused {
        path: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    #[error("invalid answer from the cloud to {path}: {source}")]
    CloudAnswer {
        path: &'static str,
        source: serde_json::Error,
    },
    #[error("the gateway is not activated yet")]
    NotActivated,
    #[error("cannot sign the request: {0}")]
    Sign(#[from] bgw_protocol::Error),
    #[error("cannot listen on {addr} for the {what} endpoint: {source}")]
    Listen {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("the agent is not running or not reachable at {addr}: {source}")]
    AdminUnreachable {
        addr: String,
        source: reqwest::Error,
    },
    #[error("the agent at {addr} refused {what} with HTTP {status}: {message}")]
    AdminRefused {
        addr: String,
        what: &'static str,
        status: u16,
        message: String,
    },
    #[error("invalid answer from the agent at {addr} to {what}: {source}")]
    AdminAnswer {
        addr: String,
        what: &'static str,
        source: reqwest::Error,
    },
    #[error("{what} failed: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A vCenter call of a backup or restore failed.
    #[error("{what}: {source}")]
    Vcenter {
        what: String,
        source: vsphere_client::Error,
    },
    /// A backup or restore cannot go on; the message says why and on what.
    #[error("{0}")]
    Job(String),
    /// The job was stopped (`StopBackupJob`, or the cloud says it has ended).
    #[error("{0}")]
    JobStopped(String),
}

impl Error {
    /// True for errors worth retrying with backoff (network, 5xx, throttling).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::CloudUnreachable { .. } => true,
            Error::CloudRefused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// A short label for the `errors by kind` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::ConfigRead { .. } | Error::ConfigInvalid { .. } => "config",
            Error::StateOpen { .. } | Error::State { .. } | Error::StateCorrupt { .. } => "state",
            Error::CaFile { .. } | Error::HttpClient(_) => "tls",
            Error::CloudUnreachable { .. } => "cloud_unreachable",
            Error::CloudRefused { .. } | Error::CloudAnswer { .. } => "cloud_refused",
            Error::NotActivated => "not_activated",
            Error::Sign(_) => "sign",
            Error::Listen { .. } | Error::Io { .. } => "io",
            Error::AdminUnreachable { .. }
            | Error::AdminRefused { .. }
            | Error::AdminAnswer { .. } => "admin",
            Error::Vcenter { .. } => "vcenter",
            Error::Job(_) | Error::JobStopped(_) => "job",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
