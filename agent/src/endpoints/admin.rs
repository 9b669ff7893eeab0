//! The local admin endpoint (loopback only): `GET /status`, `POST /activation-key`,
//! `GET /jobs`, `POST /jobs/{id}/cancel`, `POST /vcenter/retrust`.
//!
//! Only the daemon opens the state store; the `status` and `activation-key` commands ask the
//! running daemon here.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::jobs::{JobId, JobRecord, JobRunner};
use crate::runtime::Runtime;
use crate::status::{rfc3339, StatusReport};

#[derive(Clone)]
pub struct AdminState {
    pub rt: Arc<Runtime>,
    pub activation: Arc<Activation>,
    pub jobs: JobRunner,
    pub endpoint: String,
    pub region: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct KeyRequest {
    pub region: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct KeyAnswer {
    pub activation_key: Option<String>,
    pub expires_at: Option<String>,
    pub error: Option<String>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/activation-key", post(activation_key))
        .route("/jobs", get(jobs))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .route("/health", get(|| async { "ok\n" }))
        .route(
            "/vcenter/retrust",
            post(crate::vcenter_link::trust::admin_retrust),
        )
        .with_state(state)
}

async fn status(State(s): State<AdminState>) -> Json<StatusReport> {
    Json(StatusReport::collect(
        &s.rt,
        &s.endpoint,
        &s.region,
        s.rt.time.now_utc(),
    ))
}

/// `GET /jobs`: every job recorded, oldest first.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobsAnswer {
    pub jobs: Vec<JobRecord>,
}

/// `POST /jobs/{id}/cancel`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CancelAnswer {
    /// False when no such job is queued or running.
    pub cancelled: bool,
}

async fn jobs(State(s): State<AdminState>) -> Response {
    match s.jobs.list() {
        Ok(jobs) => Json(JobsAnswer { jobs }).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn cancel_job(
    State(s): State<AdminState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Json<CancelAnswer> {
    Json(CancelAnswer {
        cancelled: s.jobs.cancel(&JobId::from(id.as_str())),
    })
}

async fn activation_key(State(s): State<AdminState>, Json(req): Json<KeyRequest>) -> Response {
    match s.activation.key(Some(&req.region), None).await {
        Ok(held) => Json(KeyAnswer {
            activation_key: Some(held.activation_key),
            expires_at: Some(rfc3339(held.expires_at)),
            error: None,
        })
        .into_response(),
        Err(e) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(KeyAnswer {
                activation_key: None,
                expires_at: None,
                error: Some(e.to_string()),
            }),
        )
            .into_response(),
    }
}
