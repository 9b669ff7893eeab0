//! The gateway protocol's backup paths: `chunks/missing`, chunk `PUT`/`GET`, `jobs/progress`
//! and `jobs/complete` (see `docs/gateway-protocol.md`).
//!
//! A chunk upload is verified from its head (SigV4 over the path, which names the chunk by its
//! content's SHA-256, and over the declared body hash or, over TLS, `UNSIGNED-PAYLOAD`) and
//! its body is streamed through the body-hash check when there is one: at most one chunk
//! (16 MiB) is ever held, and its bytes count toward the job's `BytesTransferred` as they
//! arrive. Whatever the signature covers, the body must decompress to the content its signed
//! name hashes, so an unsigned body is as bound to the request as a signed one.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use bgw_chunks::ChunkHash;
use bgw_protocol::backup::{
    paths, ChunkStored, JobComplete, JobProgress, MissingChunks, MissingChunksRequest,
    JOB_ID_QUERY, MAX_CHUNK_BYTES, RAW_LENGTH_HEADER,
};
use bgw_protocol::ErrorCode;
use bgw_sigv4::RequestHead;
use bytes::BytesMut;
use http_body_util::BodyExt;

use super::BackupService;
use crate::gateway::routes::{authenticate, authenticate_head, receive, signed};
use crate::gateway::service::Refusal;
use crate::server::routes::{BodyLimit, Transport};
use crate::server::AppState;

type Ctx = (Arc<AppState>, Arc<BackupService>);

/// Largest `chunks/missing` body: 4096 hashes of 64 hex digits and their quotes.
pub const MISSING_BODY_LIMIT: usize = 512 * 1024;

pub fn router(state: Arc<AppState>, service: Arc<BackupService>) -> Router {
    Router::new()
        .route(
            paths::CHUNKS_MISSING,
            post(missing).layer(axum::Extension(BodyLimit(MISSING_BODY_LIMIT))),
        )
        .route("/gateway/v1/chunks/{hash}", put(upload).get(download))
        .route(paths::JOBS_PROGRESS, post(progress))
        .route(paths::JOBS_COMPLETE, post(complete))
        .with_state((state, service))
}

type Answer<T> = Result<Json<T>, Refusal>;

async fn missing(State((state, service)): State<Ctx>, request: Request) -> Answer<MissingChunks> {
    let (agent, req): (_, MissingChunksRequest) = signed(&state, request).await?;
    Ok(Json(
        service.missing_chunks(&agent.gateway_arn, &req).await?,
    ))
}

async fn progress(
    State((state, service)): State<Ctx>,
    request: Request,
) -> Answer<serde_json::Value> {
    let (agent, report): (_, JobProgress) = signed(&state, request).await?;
    service.progress(&agent.gateway_arn, &report)?;
    Ok(Json(serde_json::json!({})))
}

async fn complete(
    State((state, service)): State<Ctx>,
    request: Request,
) -> Answer<serde_json::Value> {
    let (agent, report): (_, JobComplete) = signed(&state, request).await?;
    service.complete(&agent.gateway_arn, &report).await?;
    Ok(Json(serde_json::json!({})))
}

fn chunk_name(hash: &str) -> Result<ChunkHash, Refusal> {
    hash.parse()
        .map_err(|m: String| Refusal::new(ErrorCode::InvalidRequest, m))
}

#[derive(serde::Deserialize)]
struct UploadQuery {
    #[serde(rename = "jobId")]
    job_id: Option<String>,
}

async fn upload(
    State((state, service)): State<Ctx>,
    Path(hash): Path<String>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Result<Json<ChunkStored>, Refusal> {
    let hash = chunk_name(&hash)?;
    let job_id = query.job_id.ok_or_else(|| {
        Refusal::new(
            ErrorCode::InvalidRequest,
            format!("a chunk upload names its job: ?{JOB_ID_QUERY}=ID"),
        )
    })?;
    let (parts, body) = request.into_parts();
    let mut headers = parts.headers;
    if !headers.contains_key("host") {
        if let Some(auth) = parts.uri.authority() {
            if let Ok(v) = HeaderValue::from_str(auth.as_str()) {
                headers.insert("host", v);
            }
        }
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let head = RequestHead {
        method: parts.method.as_str(),
        path_and_query: &path_and_query,
        headers: &headers,
        over_tls: parts.extensions.get::<Transport>().is_some_and(|t| t.tls),
    };
    // `UNSIGNED-PAYLOAD` only passes the verifier over TLS.
    let (agent, check) = authenticate_head(&state, &head)?;
    let raw_length = raw_length(&headers, &hash)?;
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_CHUNK_BYTES) {
        return Err(too_large(&hash));
    }
    let job = service.live_job(&agent.gateway_arn, &job_id)?;
    let mut body = check.wrap(body);
    let mut frame = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(next) = body.frame().await {
        let next = next.map_err(|e| match e {
            bgw_sigv4::Error::PayloadHashMismatch { .. } => Refusal::new(
                ErrorCode::ChunkCorrupt,
                format!("chunk {hash}: the body does not match its signed SHA-256 ({e})"),
            ),
            other => Refusal::new(
                ErrorCode::InvalidRequest,
                format!("chunk {hash}: the body could not be read: {other}"),
            ),
        })?;
        if let Some(data) = next.data_ref() {
            if (frame.len() + data.len()) as u64 > MAX_CHUNK_BYTES {
                return Err(too_large(&hash));
            }
            job.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            frame.extend_from_slice(data);
        }
    }
    let stored = service
        .accept_chunk(&job, &hash, raw_length, frame.freeze())
        .await;
    if let Err(e) = &stored {
        tracing::warn!(job = %job_id, chunk = %hash, code = ?e.code(), message = %e.0.message, "chunk refused");
    }
    Ok(Json(stored?))
}

fn too_large(hash: &ChunkHash) -> Refusal {
    Refusal::new(
        ErrorCode::PayloadTooLarge,
        format!("chunk {hash}: a chunk upload is at most {MAX_CHUNK_BYTES} bytes"),
    )
}

fn raw_length(headers: &HeaderMap, hash: &ChunkHash) -> Result<u64, Refusal> {
    headers
        .get(RAW_LENGTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            Refusal::new(
                ErrorCode::InvalidRequest,
                format!("chunk {hash}: header {RAW_LENGTH_HEADER} (the raw length) is required"),
            )
        })
}

async fn download(
    State((state, service)): State<Ctx>,
    Path(hash): Path<String>,
    request: Request,
) -> Result<Response, Refusal> {
    let hash = chunk_name(&hash)?;
    let received = receive(request).await?;
    let agent = authenticate(&state, &received)?;
    let data = service.read_chunk(&agent.gateway_arn, &hash).await?;
    let mut response = (StatusCode::OK, Body::from(data)).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/zstd"),
    );
    Ok(response)
}
