//! The one error type of this crate, with a [`ErrorKind`] the caller can map to
//! hypervisor states (network problems → OFFLINE, everything else → ERROR).

use std::fmt;

/// Everything that can go wrong talking to vCenter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name did not resolve, the address was unreachable, the connection was
    /// refused, reset or timed out.
    /// `reason` is the innermost cause (what an operator acts on); `source` is the HTTP
    /// client's error with the whole chain, when there is one.
    #[error("cannot reach vCenter at {url}: {reason}")]
    Network {
        url: String,
        reason: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The server's certificate is not trusted: it does not chain to a trusted
    /// root, or it does not match the pinned thumbprint.
    #[error("{}", tls_message(host, expected.as_deref(), seen.as_deref(), reason))]
    Tls {
        host: String,
        /// The pinned SHA-256 thumbprint, when a pin was configured.
        expected: Option<String>,
        /// The SHA-256 thumbprint of the certificate the server presented.
        seen: Option<String>,
        reason: String,
    },
    /// Wrong user name or password, or a session the server no longer accepts.
    #[error("vCenter refused the login: {message}")]
    Authentication { message: String },
    /// The user is logged in but lacks a privilege the call needs.
    #[error("permission denied: {message}{}", privilege.as_deref().map(|p| format!(" (missing privilege {p})")).unwrap_or_default())]
    Privilege {
        message: String,
        privilege: Option<String>,
    },
    /// A managed object or REST resource does not exist (any more).
    #[error("not found: {object}: {message}")]
    NotFound { object: String, message: String },
    /// Any other fault the server reported.
    #[error("vCenter fault {name}: {message}")]
    Fault { name: String, message: String },
    /// The server answered something this client cannot understand or that
    /// exceeds the configured limits.
    #[error("malformed response from vCenter: {what}")]
    Malformed { what: String },
    /// The caller passed an invalid option (host, thumbprint, CA file).
    #[error("invalid option: {what}")]
    InvalidInput { what: String },
    /// The operation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
}

fn tls_message(host: &str, expected: Option<&str>, seen: Option<&str>, reason: &str) -> String {
    match (expected, seen) {
        (Some(e), Some(s)) => format!(
            "certificate of {host} does not match the pinned thumbprint: expected {e}, server presented {s}"
        ),
        (None, Some(s)) => {
            format!("untrusted certificate from {host} ({reason}); its SHA-256 thumbprint is {s}")
        }
        _ => format!("TLS handshake with {host} failed: {reason}"),
    }
}

/// The broad class of an [`Error`], for matching and for mapping to states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Network,
    Tls,
    Authentication,
    Privilege,
    NotFound,
    Fault,
    Malformed,
    InvalidInput,
    Cancelled,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::Network => "network",
            ErrorKind::Tls => "tls",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Privilege => "privilege",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Fault => "fault",
            ErrorKind::Malformed => "malformed",
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::Cancelled => "cancelled",
        };
        f.write_str(s)
    }
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Network { .. } => ErrorKind::Network,
            Error::Tls { .. } => ErrorKind::Tls,
            Error::Authentication { .. } => ErrorKind::Authentication,
            Error::Privilege { .. } => ErrorKind::Privilege,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Fault { .. } => ErrorKind::Fault,
            Error::Malformed { .. } => ErrorKind::Malformed,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Cancelled => ErrorKind::Cancelled,
        }
    }

    /// True when the server could not be reached at all (hypervisor OFFLINE).
    pub fn is_unreachable(&self) -> bool {
        self.kind() == ErrorKind::Network
    }

    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        Error::Malformed { what: what.into() }
    }

    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Error::InvalidInput { what: what.into() }
    }

    /// Maps a SOAP fault (its detail type name and fault string) to an error.
    pub(crate) fn from_fault(name: &str, message: &str, privilege: Option<String>) -> Self {
        let message = message.to_string();
        match name {
            "InvalidLogin" | "NotAuthenticated" | "InvalidLocale" | "PasswordExpired" => {
                Error::Authentication {
                    message: format!("{name}: {message}"),
                }
            }
            "NoPermission" | "RestrictedByAdministrator" => Error::Privilege { message, privilege },
            "ManagedObjectNotFound" => Error::NotFound {
                object: "managed object".into(),
                message,
            },
            _ => Error::Fault {
                name: name.to_string(),
                message,
            },
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
