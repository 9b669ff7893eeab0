//! Admin paths for software releases, signed with the admin credentials:
//!
//! - `POST /admin/releases` publishes a release whose artifact is a file on the server's host:
//!   `{"Manifest": "...", "KeyId": "...", "Signature": "...", "ArtifactPath": "/abs/path"}`
//!   (the manifest text exactly as signed). Answers `{"Version": "...", "Size": n}`.
//! - `POST /admin/releases/list` with `{}` answers `{"Releases": [{"Version", "Size",
//!   "Urgent", "Published"}]}`.
//! - `POST /admin/update-history` with `{"GatewayArn": "..."}` answers `{"History":
//!   [{"Version", "Started", "Ended", "Result", "Reason"}]}`, oldest first (times in epoch
//!   seconds; `Result` is `IN_PROGRESS`, `SUCCEEDED`, `ROLLED_BACK` or `REFUSED`).

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use bgw_update::SignedManifest;
use serde::Deserialize;
use serde_json::json;

use super::admin::admin_call;
use super::AppState;
use crate::api::error::ApiError;
use crate::api::{compact, epoch};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublishInput {
    manifest: String,
    #[serde(default)]
    key_id: String,
    #[serde(default)]
    signature: String,
    artifact_path: PathBuf,
}

pub async fn publish(State(state): State<Arc<AppState>>, request: Request) -> Response {
    admin_call(&state, request, |state, input| {
        let input: PublishInput = serde_json::from_value(input)
            .map_err(|e| ApiError::serialization(format!("cannot read the request: {e}")))?;
        let signed = SignedManifest {
            manifest: input.manifest,
            key_id: input.key_id,
            signature: input.signature,
        };
        let record = state
            .releases
            .publish(&signed, &input.artifact_path, state.api.now())?;
        Ok(json!({ "Version": record.version, "Size": record.size }))
    })
    .await
}

pub async fn list(State(state): State<Arc<AppState>>, request: Request) -> Response {
    admin_call(&state, request, |state, _input| {
        let releases: Vec<_> = state
            .releases
            .releases()?
            .into_iter()
            .map(|r| {
                json!({
                    "Version": r.version,
                    "Size": r.size,
                    "Urgent": r.urgent,
                    "Published": epoch(r.published),
                })
            })
            .collect();
        Ok(json!({ "Releases": releases }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HistoryInput {
    gateway_arn: String,
}

pub async fn history(State(state): State<Arc<AppState>>, request: Request) -> Response {
    admin_call(&state, request, |state, input| {
        let input: HistoryInput = serde_json::from_value(input)
            .map_err(|e| ApiError::serialization(format!("cannot read the request: {e}")))?;
        state.api.store.get_gateway(&input.gateway_arn)?;
        let history: Vec<_> = state
            .releases
            .history(&input.gateway_arn)?
            .into_iter()
            .map(|h| {
                compact(json!({
                    "Version": h.version,
                    "Started": epoch(h.started),
                    "Ended": h.ended.map(epoch),
                    "Result": h.result,
                    "Reason": h.reason,
                }))
            })
            .collect();
        Ok(json!({ "History": history }))
    })
    .await
}
