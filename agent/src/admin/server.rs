//! The admin API's handlers: each parses, calls the service that knows the answer, and
//! answers with the types of [`super::types`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::types::{
    CancelAnswer, JobsAnswer, KeyAnswer, KeyRequest, RetrustAnswer, RetrustRequest, StatusReport,
    TimezoneAnswer, TimezoneRequest,
};
use crate::activation::Activation;
use crate::jobs::{JobId, JobRunner};
use crate::status::{rfc3339, StatusSources};
use crate::vcenter_link::trust::TrustStore;

#[derive(Clone)]
pub struct AdminState {
    pub status: StatusSources,
    pub activation: Arc<Activation>,
    pub jobs: JobRunner,
    pub trust: TrustStore,
    pub endpoint: String,
    pub region: String,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/activation-key", post(activation_key))
        .route("/jobs", get(jobs))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .route("/health", get(|| async { "ok\n" }))
        .route("/vcenter/retrust", post(retrust))
        .route("/timezone", post(timezone))
        .with_state(state)
}

async fn status(State(s): State<AdminState>) -> Json<StatusReport> {
    let mut report =
        StatusReport::collect(&s.status, &s.endpoint, &s.region, s.status.time.now_utc());
    report.hypervisor.thumbprint = report
        .hypervisor
        .host
        .as_deref()
        .and_then(|host| s.trust.pinned(host))
        .map(|t| t.to_string());
    Json(report)
}

async fn jobs(State(s): State<AdminState>) -> Response {
    match s.jobs.list() {
        Ok(jobs) => Json(JobsAnswer { jobs }).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn cancel_job(State(s): State<AdminState>, Path(id): Path<String>) -> Json<CancelAnswer> {
    Json(CancelAnswer {
        cancelled: s.jobs.cancel(&JobId::from(id.as_str())),
    })
}

/// Forgets the recorded thumbprint(s); the connection task records the certificate it sees
/// on its next attempt (within its reconnection backoff, ≤ 30 s).
async fn retrust(
    State(s): State<AdminState>,
    Json(req): Json<RetrustRequest>,
) -> Json<RetrustAnswer> {
    Json(match s.trust.forget(req.host.as_deref()) {
        Ok(forgotten) => {
            tracing::warn!(hosts = ?forgotten, "vCenter thumbprints forgotten; the next certificate seen will be trusted");
            RetrustAnswer {
                forgotten,
                error: None,
            }
        }
        Err(e) => RetrustAnswer {
            forgotten: vec![],
            error: Some(e.to_string()),
        },
    })
}

/// Switches the running agent to another time zone (the console saves it in the
/// configuration file first, so it survives a restart).
async fn timezone(State(s): State<AdminState>, Json(req): Json<TimezoneRequest>) -> Response {
    match req.timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => {
            let previous = s.status.timezone.set(tz);
            Json(TimezoneAnswer {
                timezone: Some(tz.name().to_string()),
                previous: Some(previous.name().to_string()),
                error: None,
            })
            .into_response()
        }
        Err(_) => (
            StatusCode::BAD_REQUEST,
            Json(TimezoneAnswer {
                timezone: None,
                previous: None,
                error: Some(format!(
                    "{:?} is not an IANA time zone (e.g. Europe/Paris, UTC)",
                    req.timezone
                )),
            }),
        )
            .into_response(),
    }
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
