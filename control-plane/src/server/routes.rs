//! HTTP routes: the API on both wire protocols, the admin paths and `/health`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tracing::Instrument;

use super::admin;
use super::AppState;
use crate::api::error::{ApiError, ErrorKind};
use crate::api::wire::Protocol;
use crate::auth::sigv4::{self, RequestParts};
use crate::auth::Principal;
use crate::model::TARGET_PREFIX;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The server's routes. Compose further routers (the gateway protocol) with `merge`.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/", post(json_api))
        .route("/service/{service}/operation/{operation}", post(cbor_api))
        .route("/admin/activation-keys", post(admin::mint_activation_key))
        .route("/admin/virtual-machines", post(admin::put_virtual_machines))
        .fallback(not_found)
        .with_state(state.clone());
    match state.api.link.gateway_hub() {
        Some(hub) => api.merge(crate::gateway::router(state, hub)),
        None => api,
    }
}

/// A received request, with its body read.
pub(crate) struct Received {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub(crate) async fn read(request: Request) -> Result<Received, ApiError> {
    let (parts, body) = request.into_parts();
    let mut headers = parts.headers;
    // HTTP/2 carries the host in the URI authority; SigV4 signs it as `host`.
    if !headers.contains_key("host") {
        if let Some(auth) = parts.uri.authority() {
            if let Ok(v) = HeaderValue::from_str(auth.as_str()) {
                headers.insert("host", v);
            }
        }
    }
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::serialization(format!(
                "request body could not be read or is larger than {MAX_BODY_BYTES} bytes"
            ))
        })?;
    Ok(Received {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into()),
        headers,
        body,
    })
}

/// Verifies the signature and applies the per-key throttle.
pub(crate) fn authenticate(state: &AppState, req: &Received) -> Result<Principal, ApiError> {
    let parts = RequestParts {
        method: &req.method,
        path_and_query: &req.path_and_query,
        headers: &req.headers,
        body: &req.body,
    };
    let principal = sigv4::verify(&parts, &state.keys, &state.region, state.api.now())?;
    if !state.throttle.allow(&principal.access_key) {
        return Err(ApiError::new(
            ErrorKind::Throttling,
            "Rate exceeded: too many requests for this access key; retry with backoff",
        ));
    }
    Ok(principal)
}

async fn json_api(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let operation = match target.as_deref().map(|t| t.split_once('.')) {
        Some(Some((prefix, op))) if prefix == TARGET_PREFIX => Some(op.to_owned()),
        _ => None,
    };
    serve_api(state, Protocol::Json, operation, target, request).await
}

async fn cbor_api(
    State(state): State<Arc<AppState>>,
    axum::extract::Path((service, operation)): axum::extract::Path<(String, String)>,
    request: Request,
) -> Response {
    let label = format!("{service}.{operation}");
    let operation = (service == TARGET_PREFIX).then_some(operation);
    serve_api(state, Protocol::Cbor, operation, Some(label), request).await
}

async fn serve_api(
    state: Arc<AppState>,
    protocol: Protocol,
    operation: Option<String>,
    label: Option<String>,
    request: Request,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("api", request_id = %request_id, op = operation.as_deref().unwrap_or("-"));
    async move {
        let started = Instant::now();
        let result = run_api(&state, protocol, operation.as_deref(), label.as_deref(), request).await;
        let response = match result {
            Ok(bytes) => api_response(protocol, StatusCode::OK, bytes, &request_id),
            Err(err) => {
                if err.kind == ErrorKind::InternalServer {
                    tracing::error!(error = %err.message, "request failed");
                } else {
                    tracing::info!(error = err.kind.type_name(), message = %err.message, "request refused");
                }
                api_response(protocol, err.kind.status(), protocol.encode_error(&err), &request_id)
            }
        };
        tracing::info!(status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request done");
        response
    }
    .instrument(span)
    .await
}

async fn run_api(
    state: &AppState,
    protocol: Protocol,
    operation: Option<&str>,
    label: Option<&str>,
    request: Request,
) -> Result<Vec<u8>, ApiError> {
    let received = read(request).await?;
    authenticate(state, &received)?;
    let Some(op) = operation else {
        return Err(ApiError::new(
            ErrorKind::UnknownOperation,
            match label {
                Some(l) => format!(
                    "unknown operation {l:?}; operations are named {TARGET_PREFIX}.<Operation>"
                ),
                None => format!("missing X-Amz-Target header ({TARGET_PREFIX}.<Operation>)"),
            },
        ));
    };
    let operation = crate::model::model().operations.get(op).ok_or_else(|| {
        ApiError::new(
            ErrorKind::UnknownOperation,
            format!("operation {op:?} is not part of the AWS Backup Gateway API"),
        )
    })?;
    protocol.check_content_type(
        received
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
    )?;
    let input = protocol.decode(&received.body)?;
    let output = crate::api::dispatch(&state.api, &operation.name, input).await?;
    Ok(protocol.encode_output(operation.output.as_deref(), &output))
}

pub(crate) fn api_response(
    protocol: Protocol,
    status: StatusCode,
    body: Vec<u8>,
    request_id: &str,
) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", protocol.content_type())
        .header("x-amzn-requestid", request_id);
    if protocol == Protocol::Cbor {
        builder = builder.header("smithy-protocol", "rpc-v2-cbor");
    }
    builder
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

async fn not_found(request: Request) -> Response {
    let err = ApiError::new(
        ErrorKind::UnknownOperation,
        format!(
            "no such endpoint: {} {}; the API is served at POST / (AWS JSON 1.0) and POST \
             /service/{TARGET_PREFIX}/operation/<Operation> (RPC v2 CBOR)",
            request.method(),
            request.uri().path()
        ),
    );
    let mut response = api_response(
        Protocol::Json,
        StatusCode::NOT_FOUND,
        Protocol::Json.encode_error(&err),
        &uuid::Uuid::new_v4().to_string(),
    );
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

#[cfg(test)]
#[path = "tests.rs"]
mod stack_tests;
