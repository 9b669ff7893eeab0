//! Errors returned to API clients: an AWS error type, its HTTP status and a message.

use http::StatusCode;

use crate::store::StoreError;

/// The error types a client can receive, named as AWS names them on the wire (`__type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Validation,
    Serialization,
    UnknownOperation,
    AccessDenied,
    UnrecognizedClient,
    InvalidSignature,
    MissingAuthenticationToken,
    ResourceNotFound,
    Conflict,
    Throttling,
    RequestEntityTooLarge,
    InternalServer,
    // AWS Backup's own errors.
    AlreadyExists,
    InvalidParameterValue,
    MissingParameterValue,
    InvalidRequest,
    ServiceUnavailable,
}

impl ErrorKind {
    /// The `__type` value; SDKs map it to their exception classes.
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::Validation => "ValidationException",
            ErrorKind::Serialization => "SerializationException",
            ErrorKind::UnknownOperation => "UnknownOperationException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::UnrecognizedClient => "UnrecognizedClientException",
            ErrorKind::InvalidSignature => "InvalidSignatureException",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::Conflict => "ConflictException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::RequestEntityTooLarge => "RequestEntityTooLargeException",
            ErrorKind::InternalServer => "InternalServerException",
            ErrorKind::AlreadyExists => "AlreadyExistsException",
            ErrorKind::InvalidParameterValue => "InvalidParameterValueException",
            ErrorKind::MissingParameterValue => "MissingParameterValueException",
            ErrorKind::InvalidRequest => "InvalidRequestException",
            ErrorKind::ServiceUnavailable => "ServiceUnavailableException",
        }
    }

    /// The HTTP status the model (or AWS, for protocol-level errors) gives this error.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::Validation
            | ErrorKind::Serialization
            | ErrorKind::UnknownOperation
            | ErrorKind::AlreadyExists
            | ErrorKind::InvalidParameterValue
            | ErrorKind::MissingParameterValue
            | ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::AccessDenied
            | ErrorKind::UnrecognizedClient
            | ErrorKind::InvalidSignature
            | ErrorKind::MissingAuthenticationToken => StatusCode::FORBIDDEN,
            ErrorKind::ResourceNotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Throttling => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::RequestEntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::InternalServer => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Serialization, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceNotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InternalServer, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.type_name(), self.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Invalid(m) => ApiError::validation(m),
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::internal("internal storage error; see the server log")
            }
        }
    }
}
