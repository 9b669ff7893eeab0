//! HTTP handlers of the gateway protocol (`/gateway/v1/...`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use bgw_protocol::activation::GatewayType;
use bgw_protocol::activation::{
    ActivationKeyIssued, ActivationRequest, ActivationStatus, ActivationWait, GatewayCredentials,
};
use bgw_protocol::commands::{
    CommandBatch, CommandKind, CommandOutcome, CommandPoll, CommandResult,
};
use bgw_protocol::config::{ConfigRequest, ConfigResponse};
use bgw_protocol::credentials::RotatedCredentials;
use bgw_protocol::heartbeat::{Heartbeat, HeartbeatAck, HypervisorState as WireState};
use bgw_protocol::metadata::{
    MetadataAck, MetadataBatch, SyncOutcome, SyncStatus as Reported, SyncStatusReport,
};
use bgw_protocol::{paths, ErrorBody, ErrorCode, MAX_LONG_POLL_SECS};
use rand::Rng;
use serde::de::DeserializeOwned;
use sha2::Digest;

use super::hub::GatewayHub;
use crate::arn::ResourceKind;
use crate::secret::Secret;
use crate::server::routes::{read, Received};
use crate::server::{AppState, Peer};
use crate::store::{
    ActivationKeyRecord, GatewayAgent, GatewayCredential, HypervisorState, KeyBinding, KeyState,
    StoreError, SyncStatus, Tags, VmwareTag,
};

type Ctx = (Arc<AppState>, GatewayHub);

pub fn router(state: Arc<AppState>, hub: GatewayHub) -> Router {
    Router::new()
        .route(paths::ACTIVATION_REQUEST, post(activation_request))
        .route(paths::ACTIVATION_WAIT, post(activation_wait))
        .route(paths::HEARTBEAT, post(heartbeat))
        .route(paths::CONFIG, post(config))
        .route(paths::COMMANDS_POLL, post(commands_poll))
        .route(paths::COMMANDS_RESULT, post(command_result))
        .route(paths::METADATA, post(metadata))
        .route(paths::SYNC_STATUS, post(sync_status))
        .route(paths::CREDENTIALS_ROTATE, post(rotate))
        .with_state((state, hub))
}

/// A protocol error, answered as [`ErrorBody`].
struct Failure(ErrorBody);

impl Failure {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure(ErrorBody::new(code, message))
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => Failure::new(ErrorCode::NotFound, e.to_string()),
            StoreError::Invalid(m) | StoreError::Conflict(m) => {
                Failure::new(ErrorCode::InvalidRequest, m)
            }
            other => {
                tracing::error!(error = %other, "store failure in the gateway protocol");
                Failure::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}

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

async fn receive(request: Request) -> Result<Received, Failure> {
    read(request)
        .await
        .map_err(|e| Failure::new(ErrorCode::InvalidRequest, e.message))
}

/// Verifies the SigV4 signature with the gateway credentials; returns the gateway's record.
fn authenticate(state: &AppState, received: &Received) -> Result<GatewayAgent, Failure> {
    let store = &state.api.store;
    let headers: Vec<(&str, &str)> = received
        .headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect();
    let now = state.api.now();
    let mut gateway = None;
    let verified = bgw_protocol::sigv4::verify_request(
        &bgw_protocol::sigv4::ReceivedRequest {
            method: &received.method,
            path_and_query: &received.path_and_query,
            headers: &headers,
            body: &received.body,
        },
        &state.region,
        now,
        |akid| {
            let credential = store.gateway_credential(akid).ok().flatten()?;
            gateway = Some(credential.gateway_arn.clone());
            Some(credential.secret_access_key.expose().to_string())
        },
    );
    let access_key = match verified {
        Ok(akid) => akid,
        Err(bgw_protocol::Error::Skewed { server_time, .. }) => {
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
    // First use of rotated credentials: the previous key stops working.
    if agent.access_key_id == access_key && agent.previous_access_key_id.is_some() {
        let mut retired = None;
        let updated = store.update_gateway_agent(&gateway_arn, |a| {
            retired = None;
            if a.access_key_id == access_key {
                retired = a.previous_access_key_id.take();
            }
        })?;
        if let Some(old) = retired {
            store.delete_gateway_credential(&old)?;
        }
        return updated.ok_or_else(|| Failure::new(ErrorCode::AccessDenied, "unknown gateway"));
    }
    Ok(agent)
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
    if req.region != state.region {
        return Err(Failure::new(
            ErrorCode::InvalidRequest,
            format!(
                "region {:?} is not served here; valid regions: {}",
                req.region, state.region
            ),
        ));
    }
    if req.gateway_type != GatewayType::BackupVm {
        return Err(Failure::new(
            ErrorCode::InvalidRequest,
            "gatewayType must be BACKUP_VM",
        ));
    }
    if req.agent_id.is_empty() || req.agent_secret_sha256.len() != 64 {
        return Err(Failure::new(
            ErrorCode::InvalidRequest,
            "agentId and agentSecretSha256 are required",
        ));
    }
    let now = state.api.now();
    let key = crate::server::admin::generate_activation_key(&mut rand::thread_rng());
    let expires = now
        + chrono::Duration::from_std(state.activation_key_ttl)
            .unwrap_or_else(|_| chrono::Duration::minutes(30));
    state.api.store.bind_activation_key(
        &key,
        &KeyBinding {
            agent_id: req.agent_id.clone(),
            agent_secret_sha256: req.agent_secret_sha256.clone(),
            hostname: req.hostname.clone(),
            agent_version: req.agent_version.clone(),
        },
    )?;
    state
        .api
        .store
        .insert_activation_key(&ActivationKeyRecord {
            key: key.clone(),
            created: now,
            expires,
            state: KeyState::Available,
        })?;
    tracing::info!(agent = %req.agent_id, hostname = %req.hostname, %expires, "activation key issued to a gateway");
    // Keys that were never used are kept a day past their expiry, so that CreateGateway can
    // still say "expired" rather than "not valid", then forgotten.
    match state
        .api
        .store
        .prune_expired_activation_keys(now, chrono::Duration::days(1))
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(keys = n, "expired activation keys forgotten"),
        Err(e) => tracing::warn!(error = %e, "cannot prune expired activation keys"),
    }
    Ok(Json(ActivationKeyIssued {
        activation_key: key,
        expires_at: expires,
    }))
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
    let invalid = || {
        Failure::new(
            ErrorCode::InvalidActivationKey,
            "unknown activation key, or issued to another gateway",
        )
    };
    let binding = store
        .activation_key_binding(&wait.activation_key)?
        .ok_or_else(invalid)?;
    let secret_hash = hex::encode(sha2::Sha256::digest(wait.agent_secret.expose().as_bytes()));
    if binding.agent_id != wait.agent_id || binding.agent_secret_sha256 != secret_hash {
        return Err(invalid());
    }
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(wait.wait_seconds.min(MAX_LONG_POLL_SECS).into());
    loop {
        let record = store
            .get_activation_key(&wait.activation_key)?
            .ok_or_else(invalid)?;
        match record.state {
            KeyState::Consumed { gateway_arn } => {
                if store.get_gateway(&gateway_arn).is_err() {
                    return Err(Failure::new(
                        ErrorCode::GatewayDeleted,
                        format!("gateway {gateway_arn} was deleted"),
                    ));
                }
                let credentials = issue_credentials(&state, &gateway_arn, &binding.agent_id)?;
                tracing::info!(gateway = %gateway_arn, agent = %binding.agent_id, "gateway collected its credentials");
                return Ok(Json(ActivationStatus::Activated {
                    gateway_arn,
                    region: state.region.clone(),
                    credentials,
                }));
            }
            KeyState::Available if record.expires <= state.api.now() => {
                return Err(Failure::new(
                    ErrorCode::ActivationKeyExpired,
                    format!("activation key expired at {}", record.expires.to_rfc3339()),
                ));
            }
            KeyState::Available => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Json(ActivationStatus::Pending {
                expires_at: record.expires,
            }));
        }
        // CreateGateway is answered by another handler; a short poll hands the credentials
        // over well within a second of it.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn new_credentials() -> (String, Secret) {
    let mut rng = rand::thread_rng();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let id: String = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    let mut secret = [0u8; 30];
    rng.fill(&mut secret[..]);
    (
        format!("BGWG{id}"),
        Secret::new(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            secret,
        )),
    )
}

/// The gateway's credentials: created on first collection, the same ones afterwards.
fn issue_credentials(
    state: &AppState,
    gateway_arn: &str,
    agent_id: &str,
) -> Result<GatewayCredentials, Failure> {
    let store = &state.api.store;
    if let Some(agent) = store.gateway_agent(gateway_arn)? {
        if agent.agent_id != agent_id {
            return Err(Failure::new(
                ErrorCode::InvalidActivationKey,
                "the gateway belongs to another agent",
            ));
        }
        if let Some(c) = store.gateway_credential(&agent.access_key_id)? {
            return Ok(GatewayCredentials {
                access_key_id: agent.access_key_id,
                secret_access_key: c.secret_access_key,
            });
        }
    }
    let (akid, secret) = new_credentials();
    store.put_gateway_credential(
        &akid,
        &GatewayCredential {
            gateway_arn: gateway_arn.to_string(),
            secret_access_key: secret.clone(),
            created: state.api.now(),
        },
    )?;
    let stored = store.create_gateway_agent(&GatewayAgent {
        gateway_arn: gateway_arn.to_string(),
        agent_id: agent_id.to_string(),
        access_key_id: akid.clone(),
        previous_access_key_id: None,
        config_version: 0,
        config_hash: String::new(),
        heartbeat_interval_secs: 60,
    })?;
    if stored.access_key_id != akid {
        // Another collection of the same key got there first: hand out its credentials.
        store.delete_gateway_credential(&akid)?;
        return issue_credentials(state, gateway_arn, agent_id);
    }
    store.flush()?;
    Ok(GatewayCredentials {
        access_key_id: akid,
        secret_access_key: secret,
    })
}

async fn signed<T: DeserializeOwned>(
    state: &AppState,
    request: Request,
) -> Result<(GatewayAgent, T), Failure> {
    let received = receive(request).await?;
    let agent = authenticate(state, &received)?;
    Ok((agent, parse(&received)?))
}

fn wire_state(s: WireState) -> HypervisorState {
    match s {
        WireState::Pending => HypervisorState::Pending,
        WireState::Online => HypervisorState::Online,
        WireState::Offline => HypervisorState::Offline,
        WireState::Error => HypervisorState::Error,
    }
}

async fn heartbeat(State((state, hub)): State<Ctx>, request: Request) -> Answer<HeartbeatAck> {
    let (agent, hb): (_, Heartbeat) = signed(&state, request).await?;
    let store = &state.api.store;
    let now = state.api.now();
    let arn = agent.gateway_arn.clone();
    hub.contact(&arn, Some(Duration::from_secs(hb.interval_seconds.max(1))));
    let gw = store.update_gateway(&arn, |gw| {
        gw.last_seen = Some(now);
        gw.software_version = Some(hb.agent_version.clone());
        gw.timezone = Some(hb.timezone.clone());
        gw.reported.insert("hostname".into(), hb.hostname.clone());
        gw.reported
            .insert("ip_addresses".into(), hb.ip_addresses.join(","));
        gw.reported
            .insert("mac_addresses".into(), hb.mac_addresses.join(","));
        gw.reported
            .insert("uptime_seconds".into(), hb.uptime_seconds.to_string());
        gw.reported.insert(
            "resource_check".into(),
            format!(
                "ok={} warning={} fail={}",
                hb.resources.ok, hb.resources.warning, hb.resources.fail
            ),
        );
        gw.reported.insert(
            "bandwidth_limit_bps".into(),
            hb.bandwidth_limit_bps
                .map_or("unlimited".into(), |b| b.to_string()),
        );
        gw.reported
            .insert("update_state".into(), hb.update.state.to_string());
        Ok(())
    })?;
    if let (Some(hv_arn), Some(reported)) = (&gw.hypervisor_arn, &hb.hypervisor.hypervisor_arn) {
        if hv_arn == reported {
            let wanted = wire_state(hb.hypervisor.state);
            let hv = store.get_hypervisor(hv_arn)?;
            if hv.state != wanted {
                store.update_hypervisor(hv_arn, |hv| {
                    hv.state = wanted;
                    Ok(())
                })?;
            }
        }
    }
    if agent.heartbeat_interval_secs != hb.interval_seconds {
        store.update_gateway_agent(&arn, |a| a.heartbeat_interval_secs = hb.interval_seconds)?;
    }
    let config = super::config::current(store, &arn)?;
    Ok(Json(HeartbeatAck {
        server_time: now,
        config_version: config.version,
        rotate_credentials: credentials_due(&state, &agent)?,
    }))
}

/// Gateway credentials are rotated after this long.
pub const CREDENTIAL_LIFETIME: chrono::Duration = chrono::Duration::days(30);

fn credentials_due(state: &AppState, agent: &GatewayAgent) -> Result<bool, Failure> {
    Ok(state
        .api
        .store
        .gateway_credential(&agent.access_key_id)?
        .is_some_and(|c| state.api.now() - c.created > CREDENTIAL_LIFETIME))
}

async fn config(State((state, _)): State<Ctx>, request: Request) -> Answer<ConfigResponse> {
    let (agent, req): (_, ConfigRequest) = signed(&state, request).await?;
    let config = super::config::current(&state.api.store, &agent.gateway_arn)?;
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
        let version = super::config::current(&state.api.store, &arn)?.version;
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

fn owned_hypervisor(
    state: &AppState,
    agent: &GatewayAgent,
    hypervisor_arn: &str,
) -> Result<(), Failure> {
    let gw = state.api.store.get_gateway(&agent.gateway_arn)?;
    if gw.hypervisor_arn.as_deref() != Some(hypervisor_arn) {
        return Err(Failure::new(
            ErrorCode::InvalidRequest,
            format!(
                "hypervisor {hypervisor_arn} is not associated with gateway {}",
                agent.gateway_arn
            ),
        ));
    }
    Ok(())
}

async fn metadata(State((state, _)): State<Ctx>, request: Request) -> Answer<MetadataAck> {
    let (agent, batch): (_, MetadataBatch) = signed(&state, request).await?;
    owned_hypervisor(&state, &agent, &batch.hypervisor_arn)?;
    let store = &state.api.store;
    let hv = &batch.hypervisor_arn;
    if store.sync_completed(&batch.sync_id)? {
        return Ok(Json(MetadataAck {
            accepted: batch.vms.len() as u32,
        }));
    }
    for vm in &batch.vms {
        let new_arn = state
            .api
            .arns
            .mint(ResourceKind::VirtualMachine, &mut rand::thread_rng());
        let mapped: Tags = vm
            .aws_tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect();
        let mapped_keys: Vec<String> = mapped.keys().cloned().collect();
        // The keys the previous sync mapped, read inside the same transaction.
        let previous = std::cell::RefCell::new(Vec::new());
        let record = store.upsert_vm(hv, &vm.instance_uuid, &new_arn, |r| {
            *previous.borrow_mut() = r.mapped_tag_keys.clone();
            r.name = vm.name.clone();
            r.path = Some(vm.path.clone());
            r.host_name = Some(vm.host_name.clone());
            r.vmware_tags = vm
                .vmware_tags
                .iter()
                .map(|t| VmwareTag {
                    category: t.category.clone(),
                    name: t.name.clone(),
                    description: (!t.description.is_empty()).then(|| t.description.clone()),
                })
                .collect();
            r.mapped_tag_keys = mapped_keys.clone();
        })?;
        // A VMware tag detached (or a mapping removed) takes its AWS tag away too.
        let stale: Vec<String> = previous
            .into_inner()
            .into_iter()
            .filter(|k| !mapped.contains_key(k))
            .collect();
        if !stale.is_empty() {
            store.untag_resource(&record.arn, &stale)?;
        }
        if !mapped.is_empty() {
            store.tag_resource(&record.arn, &mapped, 50)?;
        }
    }
    for uuid in &batch.removed {
        store.delete_vm_by_uuid(hv, uuid)?;
    }
    let uuids: Vec<String> = batch.vms.iter().map(|v| v.instance_uuid.clone()).collect();
    if !batch.is_watch() {
        store.sync_seen(&batch.sync_id, &uuids)?;
    }
    if let Some(outcome) = &batch.complete {
        if store.complete_sync(&batch.sync_id)? {
            let seen = store.take_sync_seen(&batch.sync_id)?;
            if !matches!(outcome, SyncOutcome::Failed { .. }) {
                for uuid in store.vm_uuids(hv)? {
                    if !seen.contains(&uuid) {
                        store.delete_vm_by_uuid(hv, &uuid)?;
                    }
                }
            }
            let now = state.api.now();
            let (status, message) = match outcome {
                SyncOutcome::Succeeded => (SyncStatus::Succeeded, None),
                SyncOutcome::PartiallyFailed { message } => {
                    (SyncStatus::PartiallyFailed, Some(message.clone()))
                }
                SyncOutcome::Failed { message } => (SyncStatus::Failed, Some(message.clone())),
            };
            store.update_hypervisor(hv, |h| {
                h.sync_status = Some(status);
                h.sync_message = message.clone();
                if status != SyncStatus::Failed {
                    h.last_successful_sync = Some(now);
                }
                Ok(())
            })?;
            tracing::info!(hypervisor = %hv, sync = %batch.sync_id, status = status.as_str(), vms = seen.len(), "metadata sync finished");
        }
    }
    Ok(Json(MetadataAck {
        accepted: batch.vms.len() as u32,
    }))
}

async fn sync_status(State((state, _)): State<Ctx>, request: Request) -> Answer<serde_json::Value> {
    let (agent, report): (_, SyncStatusReport) = signed(&state, request).await?;
    owned_hypervisor(&state, &agent, &report.hypervisor_arn)?;
    let status = match report.status {
        Reported::Created => SyncStatus::Created,
        Reported::Running => SyncStatus::Running,
        Reported::Failed => SyncStatus::Failed,
        Reported::PartiallyFailed => SyncStatus::PartiallyFailed,
        Reported::Succeeded => SyncStatus::Succeeded,
    };
    if state.api.store.sync_completed(&report.sync_id)? {
        return Ok(Json(serde_json::json!({})));
    }
    state
        .api
        .store
        .update_hypervisor(&report.hypervisor_arn, |h| {
            h.sync_status = Some(status);
            h.sync_message = report.message.clone();
            Ok(())
        })?;
    Ok(Json(serde_json::json!({})))
}

async fn rotate(State((state, _)): State<Ctx>, request: Request) -> Answer<RotatedCredentials> {
    let (agent, _): (_, serde_json::Value) = signed(&state, request).await?;
    let store = &state.api.store;
    let (akid, secret) = new_credentials();
    store.put_gateway_credential(
        &akid,
        &GatewayCredential {
            gateway_arn: agent.gateway_arn.clone(),
            secret_access_key: secret.clone(),
            created: state.api.now(),
        },
    )?;
    // Keep the key the agent signs with today until it uses the new one; a key issued by an
    // earlier rotation and never used is dropped.
    let mut unused = None;
    store.update_gateway_agent(&agent.gateway_arn, |a| {
        unused = None;
        if a.previous_access_key_id.is_none() {
            a.previous_access_key_id = Some(a.access_key_id.clone());
        } else {
            unused = Some(a.access_key_id.clone());
        }
        a.access_key_id = akid.clone();
    })?;
    if let Some(unused) = unused {
        store.delete_gateway_credential(&unused)?;
    }
    store.flush()?;
    tracing::info!(gateway = %agent.gateway_arn, "gateway credentials rotated");
    Ok(Json(RotatedCredentials {
        credentials: GatewayCredentials {
            access_key_id: akid,
            secret_access_key: secret,
        },
    }))
}
