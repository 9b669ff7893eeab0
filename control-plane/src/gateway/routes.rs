//! HTTP handlers of the gateway protocol (`/gateway/v1/...`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use bgw_protocol::activation::{
    ActivationKeyIssued, ActivationRequest, ActivationStatus, ActivationWait,
};
use bgw_protocol::commands::{
    CommandBatch, CommandKind, CommandOutcome, CommandPoll, CommandResult,
};
use bgw_protocol::config::{ConfigRequest, ConfigResponse};
use bgw_protocol::credentials::RotatedCredentials;
use bgw_protocol::heartbeat::{Heartbeat, HeartbeatAck};
use bgw_protocol::metadata::{MetadataAck, MetadataBatch, SyncStatusReport};
use bgw_protocol::{paths, ErrorBody, ErrorCode, MAX_LONG_POLL_SECS};
use serde::de::DeserializeOwned;

use super::hub::GatewayHub;
use crate::api::error::ErrorKind as ApiErrorKind;
use crate::server::routes::{read, BodyLimit, Received};
use crate::server::{AppState, Peer};
use crate::store::{GatewayAgent, SyncStatus};

type Ctx = (Arc<AppState>, GatewayHub);

/// Largest metadata batch: the agent sends 500 VMs a batch (about 0.3 MiB with tags); the
/// limit leaves room for long names and many tags. Other gateway paths keep the 1 MiB default.
pub const METADATA_BODY_LIMIT: usize = 8 * 1024 * 1024;

pub fn router(state: Arc<AppState>, hub: GatewayHub) -> Router {
    Router::new()
        .route(paths::ACTIVATION_REQUEST, post(activation_request))
        .route(paths::ACTIVATION_WAIT, post(activation_wait))
        .route(paths::HEARTBEAT, post(heartbeat))
        .route(paths::CONFIG, post(config))
        .route(paths::COMMANDS_POLL, post(commands_poll))
        .route(paths::COMMANDS_RESULT, post(command_result))
        .route(
            paths::METADATA,
            post(metadata).layer(Extension(BodyLimit(METADATA_BODY_LIMIT))),
        )
        .route(paths::SYNC_STATUS, post(sync_status))
        .route(paths::CREDENTIALS_ROTATE, post(rotate))
        .route(paths::UPDATE_ARTIFACT, post(update_artifact))
        .with_state((state, hub))
}

use super::service::{activation, credentials, heartbeat, metadata, updates, Refusal as Failure};

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}

type Answer<T> = Result<Json<T>, Failure>;

fn parse<T: DeserializeOwned>(received: &Received) -> Result<T, Failure> {
    serde_json::from_slice(&received.body)
        .map_err(|e| Failure::new(ErrorCode::InvalidRequest, format!("invalid body: {e}")))
}

pub(crate) async fn receive(request: Request) -> Result<Received, Failure> {
    read(request).await.map_err(|e| match e.kind {
        ApiErrorKind::RequestEntityTooLarge => Failure::new(ErrorCode::PayloadTooLarge, e.message),
        _ => Failure::new(ErrorCode::InvalidRequest, e.message),
    })
}

/// Verifies the SigV4 signature with the gateway credentials; returns the gateway's record.
pub(crate) fn authenticate(state: &AppState, received: &Received) -> Result<GatewayAgent, Failure> {
    let store = &state.api.store;
    let now = state.api.now();
    let mut gateway = None;
    let verified = state
        .gateway_verifier
        .verify(&received.head(), &received.body, now, |akid| {
            let credential = store.gateway_credential(akid).ok().flatten()?;
            gateway = Some(credential.gateway_arn.clone());
            Some(credential.secret_access_key.expose().to_string())
        });
    gateway_of(state, verified, gateway)
}

/// Verifies the head of a request whose body is still to be streamed; returns the gateway's
/// record and the check the body must pass as it is read.
pub(crate) fn authenticate_head(
    state: &AppState,
    head: &bgw_sigv4::RequestHead<'_>,
) -> Result<(GatewayAgent, bgw_sigv4::PayloadCheck), Failure> {
    let store = &state.api.store;
    let mut gateway = None;
    let verified = state
        .gateway_verifier
        .verify_streamed(head, state.api.now(), |akid| {
            let credential = store.gateway_credential(akid).ok().flatten()?;
            gateway = Some(credential.gateway_arn.clone());
            Some(credential.secret_access_key.expose().to_string())
        });
    let (verified, payload) = match verified {
        Ok(v) => (Ok(v.access_key_id), Some(v.payload)),
        Err(e) => (Err(e), None),
    };
    let agent = gateway_of(state, verified, gateway)?;
    Ok((agent, payload.unwrap_or(bgw_sigv4::PayloadCheck::Unsigned)))
}

/// The gateway a verified signature belongs to, still active in the cloud.
fn gateway_of(
    state: &AppState,
    verified: Result<String, bgw_sigv4::Error>,
    gateway: Option<String>,
) -> Result<GatewayAgent, Failure> {
    let store = &state.api.store;
    let access_key = match verified {
        Ok(akid) => akid,
        Err(bgw_sigv4::Error::Skewed { server_time, .. }) => {
            let mut body = ErrorBody::new(
                ErrorCode::RequestTimeTooSkewed,
                format!(
                    "the request time is more than 5 minutes from the server time {server_time}"
                ),
            );
            body.server_time = Some(server_time);
            return Err(Failure(body));
        }
        Err(e) => return Err(Failure::new(ErrorCode::AccessDenied, e.to_string())),
    };
    let gateway_arn = gateway.unwrap_or_default();
    let Some(agent) = store.gateway_agent(&gateway_arn)? else {
        return Err(Failure::new(ErrorCode::AccessDenied, "unknown gateway"));
    };
    if store.get_gateway(&gateway_arn).is_err() {
        return Err(Failure::new(
            ErrorCode::GatewayDeleted,
            format!("gateway {gateway_arn} was deleted; activate the appliance again"),
        ));
    }
    credentials::signed_with(store, agent, &access_key)
}

/// Activation calls carry no signature: each client address gets a bounded rate.
fn activation_allowed(state: &AppState, peer: Peer) -> Result<(), Failure> {
    if state.activation_throttle.allow(&peer.0.ip().to_string()) {
        return Ok(());
    }
    Err(Failure::new(
        ErrorCode::TooManyRequests,
        format!(
            "too many activation requests from {}; retry in a few seconds",
            peer.0.ip()
        ),
    ))
}

async fn activation_request(
    State((state, _)): State<Ctx>,
    Extension(peer): Extension<Peer>,
    request: Request,
) -> Answer<ActivationKeyIssued> {
    activation_allowed(&state, peer)?;
    let received = receive(request).await?;
    let req: ActivationRequest = parse(&received)?;
    let key = crate::server::admin::generate_activation_key(&mut rand::thread_rng());
    let ttl = chrono::Duration::from_std(state.activation_key_ttl)
        .unwrap_or_else(|_| chrono::Duration::minutes(30));
    Ok(Json(activation::issue(
        &state.api.store,
        &state.region,
        &req,
        key,
        ttl,
        state.api.now(),
    )?))
}

async fn activation_wait(
    State((state, _)): State<Ctx>,
    Extension(peer): Extension<Peer>,
    request: Request,
) -> Answer<ActivationStatus> {
    activation_allowed(&state, peer)?;
    let received = receive(request).await?;
    let wait: ActivationWait = parse(&received)?;
    let store = &state.api.store;
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(wait.wait_seconds.min(MAX_LONG_POLL_SECS).into());
    loop {
        let status = activation::state(store, store, store, &state.region, &wait, state.api.now())?;
        if !matches!(status, ActivationStatus::Pending { .. })
            || tokio::time::Instant::now() >= deadline
        {
            return Ok(Json(status));
        }
        // CreateGateway is answered by another handler; a short poll hands the credentials
        // over well within a second of it.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(crate) async fn signed<T: DeserializeOwned>(
    state: &AppState,
    request: Request,
) -> Result<(GatewayAgent, T), Failure> {
    let received = receive(request).await?;
    let agent = authenticate(state, &received)?;
    Ok((agent, parse(&received)?))
}

async fn heartbeat(State((state, hub)): State<Ctx>, request: Request) -> Answer<HeartbeatAck> {
    let (agent, hb): (_, Heartbeat) = signed(&state, request).await?;
    let interval = Duration::from_secs(hb.interval_seconds.max(1));
    hub.contact(&agent.gateway_arn, Some(interval));
    let now = state.api.now();
    let mut ack = heartbeat::record(&state.api.store, &state.api.store, &agent, &hb, now)?;
    ack.update = updates::on_heartbeat(
        &state.releases,
        &state.api.store,
        &agent.gateway_arn,
        &hb,
        now,
    )?;
    Ok(Json(ack))
}

#[derive(serde::Deserialize)]
struct ArtifactRequest {
    version: String,
}

/// The artifact of a release, whole or from the offset of a `Range: bytes=N-` header.
async fn update_artifact(State((state, _)): State<Ctx>, request: Request) -> Response {
    let range = request
        .headers()
        .get(axum::http::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let answer = async {
        let (_agent, req): (_, ArtifactRequest) = signed(&state, request).await?;
        let Some((release, path)) = state.releases.artifact(&req.version)? else {
            return Err(Failure::new(
                ErrorCode::NotFound,
                format!("release {} is not published", req.version),
            ));
        };
        let offset = match range.as_deref() {
            None => 0,
            Some(r) => r
                .strip_prefix("bytes=")
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| *n <= release.size)
                .ok_or_else(|| {
                    Failure::new(
                        ErrorCode::InvalidRequest,
                        format!("unsupported range {r:?}: send bytes=N- with N at most the size"),
                    )
                })?,
        };
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "release artifact unreadable");
            Failure::new(ErrorCode::Internal, "the release artifact cannot be read")
        })?;
        use tokio::io::AsyncSeekExt;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|_| {
                Failure::new(ErrorCode::Internal, "the release artifact cannot be read")
            })?;
        let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
        let mut response = Response::builder()
            .header(axum::http::header::CONTENT_LENGTH, release.size - offset)
            .header(axum::http::header::ACCEPT_RANGES, "bytes");
        if range.is_some() {
            response = response.status(StatusCode::PARTIAL_CONTENT).header(
                axum::http::header::CONTENT_RANGE,
                format!(
                    "bytes {offset}-{}/{}",
                    release.size.saturating_sub(1),
                    release.size
                ),
            );
        }
        Ok(response.body(body).expect("a valid response"))
    }
    .await;
    match answer {
        Ok(r) => r,
        Err(f) => f.into_response(),
    }
}

pub use credentials::CREDENTIAL_LIFETIME;

async fn config(State((state, _)): State<Ctx>, request: Request) -> Answer<ConfigResponse> {
    let (agent, req): (_, ConfigRequest) = signed(&state, request).await?;
    let config = super::config::current(&state.api.store, &state.api.store, &agent.gateway_arn)?;
    if config.version == req.known_version {
        return Ok(Json(ConfigResponse::Unchanged {
            version: config.version,
        }));
    }
    Ok(Json(ConfigResponse::Changed(Box::new(config))))
}

async fn commands_poll(State((state, hub)): State<Ctx>, request: Request) -> Answer<CommandBatch> {
    let (agent, poll): (_, CommandPoll) = signed(&state, request).await?;
    let arn = agent.gateway_arn;
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(poll.wait_seconds.min(MAX_LONG_POLL_SECS).into());
    let mut known_version = super::config::numbered(&state.api.store, &arn)?;
    loop {
        hub.contact(&arn, None);
        let version = super::config::current(&state.api.store, &state.api.store, &arn)?.version;
        if version != known_version {
            known_version = version;
            hub.push(&arn, CommandKind::ConfigChanged { version });
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let commands = hub.take(&arn, remaining).await;
        if !commands.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(CommandBatch { commands }));
        }
    }
}

async fn command_result(
    State((state, hub)): State<Ctx>,
    request: Request,
) -> Answer<serde_json::Value> {
    let (agent, result): (_, CommandResult) = signed(&state, request).await?;
    let arn = agent.gateway_arn.clone();
    hub.contact(&arn, None);
    if let Some(hv_arn) = hub.take_sync(&arn, &result.command_id) {
        if let CommandOutcome::Failed { message, .. } = &result.outcome {
            let message = message.clone();
            state.api.store.update_hypervisor(&hv_arn, |hv| {
                hv.sync_status = Some(SyncStatus::Failed);
                hv.sync_message = Some(message.clone());
                Ok(())
            })?;
        }
    }
    hub.complete(&arn, &result.command_id, result.outcome);
    Ok(Json(serde_json::json!({})))
}

async fn metadata(State((state, _)): State<Ctx>, request: Request) -> Answer<MetadataAck> {
    let (agent, batch): (_, MetadataBatch) = signed(&state, request).await?;
    let ack = metadata::apply_batch(
        &state.api.store,
        &state.api.arns,
        state.api.now(),
        &agent.gateway_arn,
        &batch,
    )?;
    Ok(Json(ack))
}

async fn sync_status(State((state, _)): State<Ctx>, request: Request) -> Answer<serde_json::Value> {
    let (agent, report): (_, SyncStatusReport) = signed(&state, request).await?;
    metadata::report_status(&state.api.store, &agent.gateway_arn, &report)?;
    Ok(Json(serde_json::json!({})))
}

async fn rotate(State((state, _)): State<Ctx>, request: Request) -> Answer<RotatedCredentials> {
    let (agent, _): (_, serde_json::Value) = signed(&state, request).await?;
    let credentials = credentials::rotate(&state.api.store, &agent.gateway_arn, state.api.now())?;
    Ok(Json(RotatedCredentials { credentials }))
}
