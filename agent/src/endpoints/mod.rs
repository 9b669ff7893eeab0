//! The agent's HTTP endpoints: activation (for the operator's browser or CLI) and Prometheus
//! metrics; the local admin endpoint is [`crate::admin`]. Binding and serving are shared.

pub mod activation;
pub mod metrics;

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// The addresses actually bound (ports may be 0 in the configuration), written to
/// `state_dir/endpoints.json` so local commands and tests can find them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BoundEndpoints {
    pub activation: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

pub const ENDPOINTS_FILE: &str = "endpoints.json";

pub async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen {
            what,
            addr: addr.to_string(),
            source,
        })
}

/// Serves `router` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, router: axum::Router, shutdown: CancellationToken) {
    let addr = listener.local_addr().ok();
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    {
        tracing::error!(?addr, error = %e, "endpoint stopped");
    }
}
