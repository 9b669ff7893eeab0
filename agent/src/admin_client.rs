//! Client side of the admin endpoint, for the `status` and `activation-key` commands.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::Config;
use crate::endpoints::admin::{KeyAnswer, KeyRequest};
use crate::endpoints::{BoundEndpoints, ENDPOINTS_FILE};
use crate::error::{Error, Result};
use crate::status::StatusReport;

/// Where the running daemon's admin endpoint is: what it wrote at start, else the configuration.
pub fn admin_addr(config: &Config) -> SocketAddr {
    std::fs::read(config.gateway.state_dir.join(ENDPOINTS_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<BoundEndpoints>(&bytes).ok())
        .and_then(|b| b.admin)
        .unwrap_or(config.admin.listen)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .no_proxy()
        .build()
        .expect("a plain HTTP client builds")
}

pub async fn status(config: &Config) -> Result<StatusReport> {
    let addr = admin_addr(config);
    let err = |message: String| Error::Admin {
        addr: addr.to_string(),
        message,
    };
    let response = client()
        .get(format!("http://{addr}/status"))
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    response.json().await.map_err(|e| err(e.to_string()))
}

/// Asks the daemon for an activation key. `Err` carries the daemon's message.
pub async fn activation_key(config: &Config, region: &str) -> Result<(u16, KeyAnswer)> {
    let addr = admin_addr(config);
    let err = |message: String| Error::Admin {
        addr: addr.to_string(),
        message,
    };
    let response = client()
        .post(format!("http://{addr}/activation-key"))
        .json(&KeyRequest {
            region: region.to_string(),
        })
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    let status = response.status().as_u16();
    let answer = response.json().await.map_err(|e| err(e.to_string()))?;
    Ok((status, answer))
}
