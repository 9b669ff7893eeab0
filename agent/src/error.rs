//! Errors of the agent library.

use std::path::PathBuf;

/// A cause of any type, for variants whose cause comes from more than one library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong in the agent, with the object it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read configuration file {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A value that breaks a rule of the configuration (the message names the key).
    #[error("invalid configuration in {path}: {message}")]
    ConfigInvalid { path: PathBuf, message: String },
    /// The file is not valid TOML or does not have the configuration's shape.
    #[error("invalid configuration in {path}: {source}")]
    ConfigSyntax {
        path: PathBuf,
        source: toml::de::Error,
    },
    /// A value that cannot be parsed as what its key holds.
    #[error("invalid configuration in {path}: {key} {value:?}: {source} (expected {expected})")]
    ConfigValue {
        path: PathBuf,
        key: String,
        value: String,
        expected: String,
        source: BoxError,
    },
    #[error("cannot open the state store in {path}: {source} (another bgw-agent may be running with this state_dir)")]
    StateOpen { path: PathBuf, source: sled::Error },
    #[error("cannot {what} the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
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
    #[error("cannot read the CA file {path}: {source}")]
    CaFile { path: PathBuf, source: BoxError },
    #[error("cannot build the HTTPS client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The message shows the whole chain of causes (DNS, TCP, TLS, proxy), which reqwest's
    /// own message leaves out.
    #[error("cannot reach the cloud at {url}: {}", chain(source))]
    CloudUnreachable { url: String, source: reqwest::Error },
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
    /// A worker thread of a backup or restore (hashing, compressing) died.
    #[error("{what} failed: {source}")]
    Worker {
        what: &'static str,
        source: tokio::task::JoinError,
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
            Error::ConfigRead { .. }
            | Error::ConfigInvalid { .. }
            | Error::ConfigSyntax { .. }
            | Error::ConfigValue { .. } => "config",
            Error::StateOpen { .. }
            | Error::StateDir { .. }
            | Error::State { .. }
            | Error::StateCorrupt { .. } => "state",
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
            Error::Worker { .. } | Error::Job(_) | Error::JobStopped(_) => "job",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `err` and its causes, `: `-separated.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn variants_keep_their_cause() {
        let syntax = toml::from_str::<toml::Table>("a = ").unwrap_err();
        let e = Error::ConfigSyntax {
            path: "agent.toml".into(),
            source: syntax,
        };
        assert!(e.source().unwrap().is::<toml::de::Error>());

        let e = Error::CaFile {
            path: "ca.pem".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound).into(),
        };
        let cause = e.source().unwrap();
        assert!(cause.is::<std::io::Error>(), "{cause:?}");
        assert!(e.to_string().contains("ca.pem"), "{e}");
    }
}
