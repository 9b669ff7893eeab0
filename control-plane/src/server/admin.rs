//! Admin-only paths, signed with the admin credentials like any API call.
//!
//! - `POST /admin/activation-keys` with `{}` mints a one-time activation key, as a gateway
//!   would obtain one during activation. Answers `{"ActivationKey": "...", "ExpiresAt": epoch}`.
//! - `POST /admin/virtual-machines` records VMs under a hypervisor, as a gateway's metadata
//!   sync does: `{"HypervisorArn": "...", "VirtualMachines": [{"InstanceUuid": "...",
//!   "Name": "...", "Path": "...", "HostName": "...", "LastBackupDate": epoch,
//!   "VmwareTags": [{"VmwareCategory": "...", "VmwareTagName": "...",
//!   "VmwareTagDescription": "..."}]}]}`. Answers the ARN of each VM.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use super::routes::{api_response, authenticate, read};
use super::AppState;
use crate::api::epoch;
use crate::api::error::{ApiError, ErrorKind};
use crate::api::wire::Protocol;
use crate::arn::ResourceKind;
use crate::auth::Role;
use crate::store::{ActivationKeyRecord, KeyState, VmwareTag};

/// A new activation key: five groups of five characters, like the keys gateways show.
pub fn generate_activation_key(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..5)
        .map(|_| {
            (0..5)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

pub(super) async fn admin_call(
    state: &AppState,
    request: Request,
    f: impl FnOnce(&AppState, Value) -> Result<Value, ApiError>,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = async {
        let received = read(request).await?;
        let principal = authenticate(state, &received)?;
        if principal.role != Role::Admin {
            return Err(ApiError::new(
                ErrorKind::AccessDenied,
                "this path is reserved for the admin credentials",
            ));
        }
        let input = Protocol::Json.decode(&received.body)?;
        f(state, input)
    }
    .await;
    match result {
        Ok(v) => api_response(
            Protocol::Json,
            StatusCode::OK,
            Protocol::Json.encode_output(None, &v),
            &request_id,
        ),
        Err(mut err) => {
            // Anything short of a verified admin signature is a plain 403 here.
            if matches!(
                err.kind,
                ErrorKind::MissingAuthenticationToken | ErrorKind::UnrecognizedClient
            ) {
                err.kind = ErrorKind::AccessDenied;
            }
            api_response(
                Protocol::Json,
                err.kind.status(),
                Protocol::Json.encode_error(&err),
                &request_id,
            )
        }
    }
}

pub async fn mint_activation_key(State(state): State<Arc<AppState>>, request: Request) -> Response {
    admin_call(&state, request, |state, _input| {
        let now = state.api.now();
        let ttl = chrono::Duration::from_std(state.activation_key_ttl)
            .unwrap_or(chrono::Duration::minutes(30));
        let record = ActivationKeyRecord {
            key: generate_activation_key(&mut rand::thread_rng()),
            created: now,
            expires: now + ttl,
            state: KeyState::Available,
        };
        state.api.store.insert_activation_key(&record)?;
        tracing::info!(expires = %record.expires, "activation key minted");
        Ok(json!({ "ActivationKey": record.key, "ExpiresAt": epoch(record.expires) }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VmInput {
    instance_uuid: String,
    name: String,
    path: Option<String>,
    host_name: Option<String>,
    last_backup_date: Option<f64>,
    #[serde(default)]
    vmware_tags: Vec<VmwareTagInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VmwareTagInput {
    vmware_category: String,
    vmware_tag_name: String,
    vmware_tag_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutVmsInput {
    hypervisor_arn: String,
    virtual_machines: Vec<VmInput>,
}

pub async fn put_virtual_machines(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Response {
    admin_call(&state, request, |state, input| {
        let input: PutVmsInput = serde_json::from_value(input)
            .map_err(|e| ApiError::serialization(format!("cannot read the request: {e}")))?;
        let mut out = Vec::new();
        for vm in input.virtual_machines {
            let new_arn = state
                .api
                .arns
                .mint(ResourceKind::VirtualMachine, &mut rand::thread_rng());
            let last_backup = vm
                .last_backup_date
                .and_then(|s| DateTime::<Utc>::from_timestamp_millis((s * 1000.0) as i64));
            let record = state.api.store.upsert_vm(
                &input.hypervisor_arn,
                &vm.instance_uuid,
                &new_arn,
                |r| {
                    r.name = vm.name.clone();
                    r.path = vm.path.clone();
                    r.host_name = vm.host_name.clone();
                    if last_backup.is_some() {
                        r.last_backup = last_backup;
                    }
                    r.vmware_tags = vm
                        .vmware_tags
                        .iter()
                        .map(|t| VmwareTag {
                            category: t.vmware_category.clone(),
                            name: t.vmware_tag_name.clone(),
                            description: t.vmware_tag_description.clone(),
                        })
                        .collect();
                },
            )?;
            out.push(json!({ "InstanceUuid": record.instance_uuid, "ResourceArn": record.arn }));
        }
        Ok(json!({ "VirtualMachines": out }))
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn activation_keys_fit_the_model() {
        let re = regex::Regex::new("^[0-9a-zA-Z-]{1,50}$").unwrap();
        let k = super::generate_activation_key(&mut rand::thread_rng());
        assert!(re.is_match(&k), "{k}");
        assert_eq!(k.len(), 29);
    }
}
