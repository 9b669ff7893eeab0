//! The backup gateway agent: activation, heartbeat, vCenter sync and bandwidth enforcement.
//!
//! The daemon is [`daemon::run`]: give it a validated [`Config`] and a cancellation token,
//! and it runs until the token is cancelled.
//!
//! ```no_run
//! # async fn example() -> Result<(), bgw_agent::Error> {
//! let config = bgw_agent::Config::load(std::path::Path::new("/etc/bgw-agent/agent.toml"))?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! bgw_agent::daemon::run(config, shutdown).await
//! # }
//! ```

pub mod activation;
pub mod admin;
pub mod backoff;
pub mod backup;
pub mod bandwidth;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod cloud_link;
pub mod commands;
pub mod config;
pub mod config_channel;
pub mod config_pull;
pub mod console;
pub mod daemon;
pub mod endpoints;
pub mod error;
pub mod gateway_zone;
pub mod heartbeat;
pub mod host;
pub mod hypervisor;
pub mod hypervisor_board;
pub mod jobs;
pub mod memory;
pub mod metrics;
pub mod outbox;
pub mod state;
pub mod status;
pub mod sync_board;
pub mod systemd;
pub mod vcenter_link;

pub use config::Config;

/// The version of this build (`BGW_VERSION` at build time, else the crate version).
pub const VERSION: &str = env!("BGW_AGENT_VERSION");

/// A deliberate fault baked into a test build (`BGW_BUILD_FAULT`); empty in real builds.
pub const BUILD_FAULT: &str = env!("BGW_AGENT_BUILD_FAULT");
pub use error::{Error, Result};
