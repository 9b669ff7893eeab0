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
pub mod build;
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
pub mod updater;
pub mod vcenter_link;

pub use config::Config;

pub use build::{build_fault, version, BuildFault};
pub use error::{Error, Result};
