//! Errors of the protocol crate and the error body the cloud sends back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Failures of the protocol crate: signing a gateway request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sign(#[from] bgw_sigv4::Error),
}

/// Machine-readable error codes of the gateway protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The body or a parameter is invalid. Do not retry unchanged.
    InvalidRequest,
    /// The signature or the access key is not valid.
    AccessDenied,
    /// The request time is too far from the cloud's clock; `server_time` says by how much.
    RequestTimeTooSkewed,
    /// The activation key is unknown, used, or bound to another agent.
    InvalidActivationKey,
    /// The activation key expired before `CreateGateway` consumed it.
    ActivationKeyExpired,
    /// The gateway was deleted in the cloud: the agent must be re-activated.
    GatewayDeleted,
    /// The object does not exist.
    NotFound,
    /// An uploaded chunk's content does not match its name, or its frame does not decompress
    /// to the announced length; the message names the chunk. Read and send it again.
    ChunkCorrupt,
    /// The job named has ended (stopped, failed or completed): stop working on it.
    JobNotRunning,
    /// The body is larger than this path accepts; the message names the limit.
    PayloadTooLarge,
    /// Too many requests from this address; retry after backing off.
    TooManyRequests,
    /// Retry later.
    Unavailable,
    /// A bug in the cloud.
    Internal,
}

/// The JSON body of every non-2xx gateway protocol response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// The cloud's clock when it answered, so the agent can correct a skewed clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<DateTime<Utc>>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            server_time: None,
        }
    }

    /// The HTTP status the cloud answers with for this code.
    pub fn status(&self) -> u16 {
        match self.code {
            ErrorCode::InvalidRequest | ErrorCode::ChunkCorrupt => 400,
            ErrorCode::AccessDenied | ErrorCode::RequestTimeTooSkewed => 403,
            ErrorCode::InvalidActivationKey | ErrorCode::NotFound => 404,
            ErrorCode::JobNotRunning => 409,
            ErrorCode::ActivationKeyExpired | ErrorCode::GatewayDeleted => 410,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}
