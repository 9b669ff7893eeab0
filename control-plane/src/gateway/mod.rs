//! The gateway side of the control plane: the protocol `bgw-agent` speaks (see
//! `docs/gateway-protocol.md`), mounted under `/gateway/v1/` on the API port.
//!
//! [`GatewayHub`] is the [`crate::link::GatewayLink`] the API uses to reach gateways: it
//! queues commands for each gateway's long-poll and waits (bounded) for the results that must
//! be answered synchronously, such as `TestHypervisorConfiguration`.
//!
//! ```no_run
//! # async fn run() -> Result<(), bgw_cloud::error::Error> {
//! let hub = bgw_cloud::gateway::GatewayHub::default();
//! let config = bgw_cloud::ServeConfig::new("127.0.0.1:0", "/tmp/bgw-cloud");
//! let clock = std::sync::Arc::new(bgw_cloud::clock::SystemClock);
//! let server = bgw_cloud::server::bind_with(config, clock, std::sync::Arc::new(hub)).await?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod hub;
pub mod routes;
pub mod service;

pub use hub::GatewayHub;
pub use routes::router;
