//! `GET /?activationRegion=R&gatewayType=BACKUP_VM[&no_redirect]` on `activation_listen`.
//!
//! * 302 with `Location: <cloud>/?activationKey=KEY&activationRegion=R`, or with `no_redirect`
//!   200 and the key alone as the body;
//! * 400 listing the valid regions when the region is missing or unknown;
//! * 503 with `Retry-After` while the cloud is unreachable (bounded: never a hang);
//! * 409 once the gateway is activated.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::activation::{Activation, KeyError};

pub fn router(activation: Arc<Activation>, cloud_endpoint: url::Url) -> Router {
    Router::new()
        .route("/", get(activate))
        .with_state((activation, cloud_endpoint))
}

async fn activate(
    State((activation, cloud)): State<(Arc<Activation>, url::Url)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let region = params.get("activationRegion").map(String::as_str);
    let gateway_type = params.get("gatewayType").map(String::as_str);
    match activation.key(region, gateway_type).await {
        Ok(held) => {
            tracing::info!(region = %held.region, "activation key handed out");
            if params.contains_key("no_redirect") {
                return (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/plain")],
                    held.activation_key,
                )
                    .into_response();
            }
            let mut location = cloud;
            location.set_path("/");
            location
                .query_pairs_mut()
                .clear()
                .append_pair("activationKey", &held.activation_key)
                .append_pair("activationRegion", &held.region)
                .append_pair("gatewayType", "BACKUP_VM");
            (
                StatusCode::FOUND,
                [(header::LOCATION, location.to_string())],
                format!("activationKey={}\n", held.activation_key),
            )
                .into_response()
        }
        Err(e) => error_response(&e),
    }
}

pub fn error_response(e: &KeyError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = format!("{e}\n");
    if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(error = %e, "activation key unavailable");
        (
            status,
            [
                (header::RETRY_AFTER, "10"),
                (header::CONTENT_TYPE, "text/plain"),
            ],
            body,
        )
            .into_response()
    } else {
        (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
    }
}
