//! Wire types of the gateway protocol spoken between `bgw-agent` and `bgw-cloud`.
//!
//! JSON over HTTPS, under [`BASE_PATH`] on the cloud's API port. Every request except the two
//! activation calls is SigV4-signed (service [`sigv4::SERVICE`]) with the gateway's own
//! credentials. The full description is in `docs/gateway-protocol.md`.
//!
//! ```
//! use bgw_protocol::{paths, heartbeat::HypervisorState};
//! assert_eq!(paths::HEARTBEAT, "/gateway/v1/heartbeat");
//! assert_eq!(HypervisorState::Online.as_str(), "ONLINE");
//! ```

#[macro_use]
mod wire_enum;

pub mod activation;
pub mod backup;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod error;
pub mod heartbeat;
pub mod metadata;
pub mod secret;
pub mod sigv4;

pub use error::{Error, ErrorBody, ErrorCode};
pub use secret::Secret;

/// Prefix of every gateway protocol path.
pub const BASE_PATH: &str = "/gateway/v1";

/// The request paths (all `POST`, JSON bodies). The backup paths are in [`backup::paths`].
pub mod paths {
    pub const ACTIVATION_REQUEST: &str = "/gateway/v1/activation/request";
    pub const ACTIVATION_WAIT: &str = "/gateway/v1/activation/wait";
    pub const HEARTBEAT: &str = "/gateway/v1/heartbeat";
    pub const CONFIG: &str = "/gateway/v1/config";
    pub const COMMANDS_POLL: &str = "/gateway/v1/commands/poll";
    pub const COMMANDS_RESULT: &str = "/gateway/v1/commands/result";
    pub const METADATA: &str = "/gateway/v1/metadata";
    pub const SYNC_STATUS: &str = "/gateway/v1/sync/status";
    pub const CREDENTIALS_ROTATE: &str = "/gateway/v1/credentials/rotate";
    /// The artifact of an offered release (`{"version": "..."}`; honours `Range: bytes=N-`).
    pub const UPDATE_ARTIFACT: &str = "/gateway/v1/updates/artifact";
}

/// Longest wait the cloud grants a long-poll, in seconds. Agents use shorter HTTP timeouts
/// than this plus a margin.
pub const MAX_LONG_POLL_SECS: u32 = 25;
