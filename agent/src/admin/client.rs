//! Client of the admin API, for the operator commands and the local console.

use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::types::{
    CancelAnswer, JobsAnswer, KeyAnswer, KeyRequest, RetrustAnswer, RetrustRequest, StatusReport,
    TimezoneAnswer, TimezoneRequest,
};
use crate::config::Config;
use crate::endpoints::{BoundEndpoints, ENDPOINTS_FILE};
use crate::error::{Error, Result};
use crate::jobs::JobId;

/// How long connecting to the daemon may take (it is on the same machine).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a request may take, answer included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// An activation key request waits for the cloud, so it gets longer.
pub const ACTIVATION_KEY_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the running daemon's admin endpoint is: what it wrote at start, else the configuration.
pub fn admin_addr(config: &Config) -> SocketAddr {
    std::fs::read(config.gateway.state_dir.join(ENDPOINTS_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<BoundEndpoints>(&bytes).ok())
        .and_then(|b| b.admin)
        .unwrap_or(config.admin.listen)
}

/// Talks to the running daemon's admin endpoint.
#[derive(Clone)]
pub struct AdminClient {
    addr: SocketAddr,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self::with_timeout(addr, REQUEST_TIMEOUT)
    }

    /// A client whose requests give up after `timeout` (connecting after at most
    /// [`CONNECT_TIMEOUT`]).
    pub fn with_timeout(addr: SocketAddr, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .no_proxy()
            .build()
            .expect("a plain HTTP client builds");
        Self { addr, http }
    }

    /// The client for the daemon `config` belongs to.
    pub fn for_config(config: &Config) -> Self {
        Self::new(admin_addr(config))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn status(&self) -> Result<StatusReport> {
        let response = self.send(self.http.get(self.url("/status"))).await?;
        self.decode("GET /status", ok(self, "GET /status", response).await?)
            .await
    }

    pub async fn jobs(&self) -> Result<JobsAnswer> {
        let response = self.send(self.http.get(self.url("/jobs"))).await?;
        self.decode("GET /jobs", ok(self, "GET /jobs", response).await?)
            .await
    }

    /// Cancels a queued or running job; `cancelled: false` when there is no such job.
    pub async fn cancel_job(&self, id: &JobId) -> Result<CancelAnswer> {
        let what = "POST /jobs/{id}/cancel";
        let response = self
            .send(self.http.post(self.url(&format!("/jobs/{id}/cancel"))))
            .await?;
        self.decode(what, ok(self, what, response).await?).await
    }

    /// Forgets the recorded vCenter thumbprint of `host` (every host with `None`).
    pub async fn retrust(&self, host: Option<String>) -> Result<RetrustAnswer> {
        self.post_json(
            "POST /vcenter/retrust",
            "/vcenter/retrust",
            &RetrustRequest { host },
        )
        .await
    }

    /// Switches the running agent to the IANA time zone `zone`.
    pub async fn set_timezone(&self, zone: &str) -> Result<TimezoneAnswer> {
        self.post_json(
            "POST /timezone",
            "/timezone",
            &TimezoneRequest {
                timezone: zone.to_string(),
            },
        )
        .await
    }

    /// Asks for an activation key. A refusal is an answer (its `error` and the HTTP status,
    /// 503 when the cloud cannot be reached), not an `Err`.
    pub async fn activation_key(&self, region: &str) -> Result<(u16, KeyAnswer)> {
        let what = "POST /activation-key";
        let request = self
            .http
            .post(self.url("/activation-key"))
            .timeout(ACTIVATION_KEY_TIMEOUT)
            .json(&KeyRequest {
                region: region.to_string(),
            });
        let response = self.send(request).await?;
        let status = response.status().as_u16();
        Ok((status, self.decode(what, response).await?))
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post_json<T: DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        let response = self.send(self.http.post(self.url(path)).json(body)).await?;
        self.decode(what, ok(self, what, response).await?).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        request
            .send()
            .await
            .map_err(|source| Error::AdminUnreachable {
                addr: self.addr.to_string(),
                source,
            })
    }

    async fn decode<T: DeserializeOwned>(
        &self,
        what: &'static str,
        response: reqwest::Response,
    ) -> Result<T> {
        response.json().await.map_err(|source| Error::AdminAnswer {
            addr: self.addr.to_string(),
            what,
            source,
        })
    }
}

/// The response if it is a success, else its status and text as an error.
async fn ok(
    client: &AdminClient,
    what: &'static str,
    response: reqwest::Response,
) -> Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let message = response.text().await.unwrap_or_default();
    Err(Error::AdminRefused {
        addr: client.addr.to_string(),
        what,
        status: status.as_u16(),
        message: message.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_agent_not_running_is_named_as_such() {
        // A port nothing listens on: bind one, then free it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = AdminClient::new(addr).status().await.unwrap_err();
        assert!(matches!(err, Error::AdminUnreachable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "the agent is not running or not reachable at {addr}: "
            )),
            "{text}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }

    #[tokio::test]
    async fn a_silent_agent_times_out_instead_of_hanging() {
        // Accepts connections but never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let started = std::time::Instant::now();
        let timeout = Duration::from_millis(300);
        let err = AdminClient::with_timeout(addr, timeout)
            .jobs()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AdminUnreachable { .. }), "{err:?}");
        assert!(started.elapsed() < timeout * 10, "{:?}", started.elapsed());
    }
}
