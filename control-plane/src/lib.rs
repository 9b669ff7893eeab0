//! `bgw-cloud`: the reference control plane of the backup gateway.
//!
//! It serves the AWS Backup Gateway API (2021-01-01) to unmodified aws-cli and boto3, on both
//! of the model's wire protocols (Smithy RPC v2 CBOR and AWS JSON 1.0), and the part of the
//! AWS Backup API (2018-11-15, REST-JSON) that backs up and restores gateway VMs ([`backup`]),
//! with SigV4 authentication, model-driven validation, per-key throttling and a sled store;
//! backup data goes to a chunk store (`bgw-chunks`: a directory or an S3-compatible bucket).
//!
//! ```no_run
//! # async fn run() -> Result<(), bgw_cloud::error::Error> {
//! let config = bgw_cloud::ServeConfig::new("127.0.0.1:0", "/var/lib/bgw-cloud");
//! bgw_cloud::serve(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! The pieces compose for in-process use: [`server::bind_with`] takes the clock and the
//! [`link::GatewayLink`] through which API requests reach gateways, [`server::router`] builds
//! the routes, and [`store::Store`] is the persistent state.

pub mod api;
pub mod arn;
pub mod auth;
pub mod backup;
pub mod clock;
pub mod config;
pub mod error;
pub mod gateway;
pub mod link;
pub mod model;
pub mod registry;
pub mod release;
pub mod secret;
pub mod server;
pub mod store;
pub mod throttle;
pub mod tls;

pub use config::{ServeConfig, TlsMode};
pub use server::serve;
