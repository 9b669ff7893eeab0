//! The gateway protocol's logic, callable without HTTP: the routes in [`super::routes`] parse
//! a request, call one of these and answer with its result or its [`Refusal`].
//!
//! Each service works on the narrow store interface it needs ([`crate::store::domain`]), so
//! its tests run on the in-memory stores.

pub mod activation;
pub mod credentials;
pub mod heartbeat;
pub mod metadata;

use bgw_protocol::{ErrorBody, ErrorCode};

use crate::store::StoreError;

/// A request the protocol refuses, answered as [`ErrorBody`].
#[derive(Debug)]
pub struct Refusal(pub ErrorBody);

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal(ErrorBody::new(code, message))
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => Refusal::new(ErrorCode::NotFound, e.to_string()),
            StoreError::Invalid(m) | StoreError::Conflict(m) => {
                Refusal::new(ErrorCode::InvalidRequest, m)
            }
            other => {
                tracing::error!(error = %other, "store failure in the gateway protocol");
                Refusal::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}
