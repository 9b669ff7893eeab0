//! HTTP routes: the API on both wire protocols, the admin paths and `/health`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tracing::Instrument;

use super::AppState;
use super::{admin, admin_releases};
use crate::api::error::{ApiError, ErrorKind};
use crate::api::wire::Protocol;
use crate::auth::sigv4::{self, RequestHead, Verifier};
use crate::auth::Principal;
use crate::model::TARGET_PREFIX;
use crate::registry::{Route, DEFAULT_BODY_LIMIT};

/// The server's routes: `/health`, the admin paths, the gateway protocol, and every registered
/// AWS service (routed by [`crate::registry::Registry::route`]).
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/admin/activation-keys", post(admin::mint_activation_key))
        .route("/admin/virtual-machines", post(admin::put_virtual_machines))
        .route("/admin/releases", post(admin_releases::publish))
        .route("/admin/releases/list", post(admin_releases::list))
        .route("/admin/update-history", post(admin_releases::history))
        .fallback(aws_api)
        .with_state(state.clone());
    match state.api.link.gateway_hub() {
        Some(hub) => api.merge(crate::gateway::router(state.clone(), hub)).merge(
            crate::backup::routes::router(state.clone(), state.backup.clone()),
        ),
        None => api,
    }
}

/// The largest body a route accepts, as a request extension set by the route
/// (`post(handler).layer(Extension(BodyLimit(bytes)))`); [`DEFAULT_BODY_LIMIT`] without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// How the connection of a request arrived, as request extension.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    pub tls: bool,
}

/// A received request, with its body read.
pub(crate) struct Received {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub over_tls: bool,
    pub body: Bytes,
}

impl Received {
    /// The head, as the signature verifier reads it.
    pub fn head(&self) -> RequestHead<'_> {
        RequestHead {
            method: &self.method,
            path_and_query: &self.path_and_query,
            headers: &self.headers,
            over_tls: self.over_tls,
        }
    }
}

/// Reads a request whose route declared its limit with [`BodyLimit`].
pub(crate) async fn read(request: Request) -> Result<Received, ApiError> {
    let limit = request
        .extensions()
        .get::<BodyLimit>()
        .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
    read_limited(request, limit).await
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::RequestEntityTooLarge,
        format!("the request body is larger than the {limit} bytes this operation accepts"),
    )
}

/// Reads the whole body, refusing one longer than `limit` bytes with a 413 naming the limit.
pub(crate) async fn read_limited(request: Request, limit: usize) -> Result<Received, ApiError> {
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
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit))
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                too_large(limit)
            } else {
                ApiError::serialization(format!("the request body could not be read: {e}"))
            }
        })?
        .to_bytes();
    Ok(Received {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into()),
        headers,
        over_tls: parts.extensions.get::<Transport>().is_some_and(|t| t.tls),
        body,
    })
}

/// Verifies an admin path's signature (signed as the Backup Gateway API) and applies the
/// per-key throttle.
pub(crate) fn authenticate(state: &AppState, req: &Received) -> Result<Principal, ApiError> {
    authenticate_with(state, &state.admin_verifier, req)
}

/// Verifies the signature with `verifier` and applies the per-key throttle.
pub(crate) fn authenticate_with(
    state: &AppState,
    verifier: &Verifier,
    req: &Received,
) -> Result<Principal, ApiError> {
    let principal = sigv4::verify(
        verifier,
        &req.head(),
        &req.body,
        &state.keys,
        state.api.now(),
    )?;
    if !state.throttle.allow(&principal.access_key) {
        return Err(ApiError::new(
            ErrorKind::Throttling,
            "Rate exceeded: too many requests for this access key; retry with backoff",
        ));
    }
    Ok(principal)
}

/// Every request no fixed route claims: an operation of a registered service, or 404.
async fn aws_api(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let Some(route) =
        state
            .registry
            .route(request.method(), request.uri().path(), request.headers())
    else {
        return not_found(request).await;
    };
    let protocol = route.protocol;
    let request_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!(
        "api",
        request_id = %request_id,
        service = route.service.signing_name(),
        op = route.operation_name().unwrap_or("-")
    );
    async {
        let started = Instant::now();
        let response = match run_api(&state, &route, request).await {
            Ok((status, bytes)) => api_response(protocol, status, bytes, &request_id),
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

/// Body limit, signature, operation, decoding, handler, encoding.
async fn run_api(
    state: &AppState,
    route: &Route<'_>,
    request: Request,
) -> Result<(StatusCode, Vec<u8>), ApiError> {
    let received = read_limited(request, route.body_limit()).await?;
    authenticate_with(state, route.service.verifier(), &received)?;
    let operation = route.operation.as_ref().map_err(Clone::clone)?;
    route.protocol.check_content_type(
        received
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
    )?;
    let mut input = route.protocol.decode(&received.body)?;
    if let Value::Object(members) = &mut input {
        for (name, value) in &route.labels {
            members.insert(name.clone(), Value::String(value.clone()));
        }
        if !operation.bindings.is_empty() {
            let query = received.path_and_query.split_once('?').map(|(_, q)| q);
            crate::registry::bind_members(&operation.bindings, query, &received.headers, members)?;
        }
    }
    let output = route.service.handler().call(&operation.name, input).await?;
    let status = StatusCode::from_u16(operation.status).unwrap_or(StatusCode::OK);
    Ok((
        status,
        route
            .protocol
            .encode_output(operation.output.as_deref(), &output),
    ))
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
