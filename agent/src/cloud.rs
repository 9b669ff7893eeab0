//! The HTTPS client for the gateway protocol: rustls, SigV4 signing, clock-skew correction.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bgw_protocol::activation::{
    ActivationKeyIssued, ActivationRequest, ActivationStatus, ActivationWait, GatewayCredentials,
};
use bgw_protocol::commands::{CommandBatch, CommandPoll, CommandResult};
use bgw_protocol::config::{ConfigRequest, ConfigResponse};
use bgw_protocol::credentials::RotatedCredentials;
use bgw_protocol::heartbeat::{Heartbeat, HeartbeatAck};
use bgw_protocol::metadata::{MetadataAck, MetadataBatch, SyncStatusReport};
use bgw_protocol::{paths, ErrorBody, ErrorCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub mod backup;

use crate::clock::CloudTime;
use crate::config::CloudConfig;
use crate::error::{Error, Result};

/// Timeout for ordinary requests; long-polls add their wait on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one cloud endpoint. Cheap to clone.
#[derive(Clone)]
pub struct CloudClient {
    http: reqwest::Client,
    endpoint: url::Url,
    host_header: String,
    region: String,
    credentials: Arc<RwLock<Option<GatewayCredentials>>>,
    time: CloudTime,
}

impl CloudClient {
    pub fn new(config: &CloudConfig, time: CloudTime) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(format!("bgw-agent/{}", crate::version()));
        if let Some(proxy) = &config.proxy {
            let proxy = reqwest::Proxy::all(proxy.expose().as_str()).map_err(Error::HttpClient)?;
            builder = builder.proxy(proxy);
        }
        match &config.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| Error::CaFile {
                    path: path.clone(),
                    source: e.into(),
                })?;
                let certs =
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::CaFile {
                        path: path.clone(),
                        source: e.into(),
                    })?;
                if certs.is_empty() {
                    return Err(Error::CaFile {
                        path: path.clone(),
                        source: "no PEM certificate in the file".into(),
                    });
                }
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    if let Ok(cert) = reqwest::Certificate::from_der(&cert) {
                        builder = builder.add_root_certificate(cert);
                    }
                }
            }
        }
        let http = builder.build().map_err(Error::HttpClient)?;
        let host = config.endpoint.host_str().unwrap_or_default();
        let host_header = match config.endpoint.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        Ok(Self {
            http,
            endpoint: config.endpoint.clone(),
            host_header,
            region: config.region.clone(),
            credentials: Arc::new(RwLock::new(None)),
            time,
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn endpoint(&self) -> &url::Url {
        &self.endpoint
    }

    pub fn time(&self) -> &CloudTime {
        &self.time
    }

    /// Sets the credentials every later request is signed with.
    pub fn set_credentials(&self, credentials: Option<GatewayCredentials>) {
        *self.credentials.write().expect("credentials lock") = credentials;
    }

    fn url(&self, path: &str) -> String {
        let mut url = self.endpoint.clone();
        url.set_path(path);
        url.set_query(None);
        url.to_string()
    }

    /// Adds the SigV4 headers of a JSON POST of `body` to `url`.
    fn sign_json(
        &self,
        mut request: reqwest::RequestBuilder,
        url: &str,
        body: &[u8],
    ) -> Result<reqwest::RequestBuilder> {
        let creds = self
            .credentials
            .read()
            .expect("credentials lock")
            .clone()
            .ok_or(Error::NotActivated)?;
        let headers = [
            ("host", self.host_header.as_str()),
            ("content-type", "application/json"),
        ];
        for (name, value) in bgw_protocol::sigv4::sign_request(
            "POST",
            url,
            &headers,
            body,
            &creds.access_key_id,
            creds.secret_access_key.expose(),
            &self.region,
            self.time.now(),
        )? {
            request = request.header(name, value);
        }
        Ok(request)
    }

    async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &'static str,
        body: &Req,
        signed: bool,
        timeout: Duration,
    ) -> Result<Resp> {
        let body = serde_json::to_vec(body).expect("protocol messages serialise");
        // One retry after learning the cloud's time from a skew refusal.
        for attempt in 0..2 {
            let url = self.url(path);
            let mut request = self
                .http
                .post(&url)
                .timeout(timeout)
                .header("host", &self.host_header)
                .header("content-type", "application/json");
            if signed {
                request = self.sign_json(request, &url, &body)?;
            }
            let response = request.body(body.clone()).send().await.map_err(|source| {
                Error::CloudUnreachable {
                    url: url.clone(),
                    source,
                }
            })?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|source| Error::CloudUnreachable {
                    url: url.clone(),
                    source,
                })?;
            if status.is_success() {
                return serde_json::from_slice(&bytes)
                    .map_err(|source| Error::CloudAnswer { path, source });
            }
            let error: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            if let Some(ErrorBody {
                code: ErrorCode::RequestTimeTooSkewed,
                server_time: Some(server_time),
                ..
            }) = &error
            {
                if attempt == 0 && self.time.observe_server_time(*server_time) {
                    tracing::warn!(
                        offset_ms = self.time.offset_ms(),
                        "local clock differs from the cloud's; correcting"
                    );
                    continue;
                }
            }
            return Err(refusal(path, status.as_u16(), error, &bytes));
        }
        unreachable!("the loop returns on its second pass")
    }

    /// One unsigned HTTPS request to the endpoint: any HTTP answer means DNS, the connection
    /// (through the proxy, if any) and the TLS handshake with a trusted certificate all worked.
    /// The error is the innermost cause (`Connection refused`, `invalid peer certificate`).
    pub async fn probe(&self, timeout: Duration) -> std::result::Result<u16, String> {
        let response = self
            .http
            .get(self.url("/"))
            .timeout(timeout)
            .header("host", &self.host_header)
            .send()
            .await
            .map_err(|e| {
                let mut cause: &dyn std::error::Error = &e;
                while let Some(inner) = cause.source() {
                    cause = inner;
                }
                cause.to_string()
            })?;
        Ok(response.status().as_u16())
    }

    pub async fn request_activation_key(
        &self,
        request: &ActivationRequest,
    ) -> Result<ActivationKeyIssued> {
        self.post(paths::ACTIVATION_REQUEST, request, false, REQUEST_TIMEOUT)
            .await
    }

    pub async fn wait_activation(&self, wait: &ActivationWait) -> Result<ActivationStatus> {
        let timeout = REQUEST_TIMEOUT + Duration::from_secs(wait.wait_seconds.into());
        self.post(paths::ACTIVATION_WAIT, wait, false, timeout)
            .await
    }

    pub async fn heartbeat(&self, heartbeat: &Heartbeat) -> Result<HeartbeatAck> {
        let ack: HeartbeatAck = self
            .post(paths::HEARTBEAT, heartbeat, true, REQUEST_TIMEOUT)
            .await?;
        self.time.observe_server_time(ack.server_time);
        Ok(ack)
    }

    pub async fn config(&self, known_version: u64) -> Result<ConfigResponse> {
        self.post(
            paths::CONFIG,
            &ConfigRequest { known_version },
            true,
            REQUEST_TIMEOUT,
        )
        .await
    }

    pub async fn poll_commands(&self, wait_seconds: u32) -> Result<CommandBatch> {
        let timeout = REQUEST_TIMEOUT + Duration::from_secs(wait_seconds.into());
        self.post(
            paths::COMMANDS_POLL,
            &CommandPoll { wait_seconds },
            true,
            timeout,
        )
        .await
    }

    pub async fn command_result(&self, result: &CommandResult) -> Result<()> {
        let _: serde_json::Value = self
            .post(paths::COMMANDS_RESULT, result, true, REQUEST_TIMEOUT)
            .await?;
        Ok(())
    }

    pub async fn upload_metadata(&self, batch: &MetadataBatch) -> Result<MetadataAck> {
        self.post(paths::METADATA, batch, true, Duration::from_secs(60))
            .await
    }

    pub async fn sync_status(&self, report: &SyncStatusReport) -> Result<()> {
        let _: serde_json::Value = self
            .post(paths::SYNC_STATUS, report, true, REQUEST_TIMEOUT)
            .await?;
        Ok(())
    }

    /// The artifact of release `version` from byte `offset` on (`Range: bytes=N-`). The body
    /// is left to the caller to stream; the request has no overall timeout (artifacts are
    /// large), so the caller bounds each read.
    pub async fn update_artifact(&self, version: &str, offset: u64) -> Result<reqwest::Response> {
        let path = paths::UPDATE_ARTIFACT;
        let url = self.url(path);
        let body = serde_json::to_vec(&serde_json::json!({ "version": version }))
            .expect("the request serialises");
        let mut request = self
            .http
            .post(&url)
            .header("host", &self.host_header)
            .header("content-type", "application/json");
        if offset > 0 {
            request = request.header("range", format!("bytes={offset}-"));
        }
        let response = self
            .sign_json(request, &url, &body)?
            .body(body)
            .send()
            .await
            .map_err(|source| Error::CloudUnreachable {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.bytes().await.unwrap_or_default();
        let error: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        Err(Error::CloudRefused {
            path,
            status: status.as_u16(),
            code: error
                .as_ref()
                .map_or("Unknown".into(), |e| format!("{:?}", e.code)),
            message: error.map_or_else(
                || String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                |e| e.message,
            ),
        })
    }

    pub async fn rotate_credentials(&self) -> Result<RotatedCredentials> {
        self.post(
            paths::CREDENTIALS_ROTATE,
            &serde_json::json!({}),
            true,
            REQUEST_TIMEOUT,
        )
        .await
    }
}

/// The error for a refusal: the cloud's error body (`error`, parsed from `bytes`) when it sent
/// one, else the start of whatever it sent.
fn refusal(path: &'static str, status: u16, error: Option<ErrorBody>, bytes: &[u8]) -> Error {
    match error {
        Some(e) => Error::CloudRefused {
            path,
            status,
            code: format!("{:?}", e.code),
            message: e.message,
        },
        None => Error::CloudRefused {
            path,
            status,
            code: "Unknown".into(),
            message: String::from_utf8_lossy(bytes).chars().take(200).collect(),
        },
    }
}

/// The error for a refusal whose body has not been parsed yet.
fn refused(path: &'static str, status: u16, bytes: &[u8]) -> Error {
    refusal(path, status, serde_json::from_slice(bytes).ok(), bytes)
}
