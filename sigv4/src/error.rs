//! Errors of signing and verifying requests.

use chrono::{DateTime, Utc};

/// Why a request could not be signed, or why a received request is refused.
///
/// The messages follow the wording AWS services use, so that aws-cli and the SDKs show an
/// operator something familiar; none of them contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot sign the request to {uri}: {reason}")]
    Sign { uri: String, reason: String },
    #[error("Missing Authentication Token: sign every request with SigV4 (service {service})")]
    MissingAuthorization { service: String },
    #[error("the Authorization header is not a valid AWS4-HMAC-SHA256 signature: {0}")]
    MalformedAuthorization(String),
    #[error("Credential should be scoped to correct service: '{expected}', not '{found}'")]
    WrongService { found: String, expected: String },
    #[error(
        "Credential should be scoped to a valid region: this endpoint serves '{expected}', not '{found}'"
    )]
    WrongRegion { found: String, expected: String },
    #[error("header {name} is missing or invalid: {reason}")]
    BadHeader { name: &'static str, reason: String },
    #[error("{}", skew_message(*request_time, *server_time, *max_skew_secs))]
    Skewed {
        request_time: DateTime<Utc>,
        server_time: DateTime<Utc>,
        max_skew_secs: i64,
    },
    #[error("The security token included in the request is invalid: unknown access key {0}")]
    UnknownAccessKey(String),
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method."
    )]
    SignatureMismatch,
    #[error(
        "x-amz-content-sha256 UNSIGNED-PAYLOAD is accepted only over TLS; sign the payload hash"
    )]
    UnsignedPayloadRefused,
    #[error("x-amz-content-sha256 {0:?} is not supported: send the hex SHA-256 of the body or UNSIGNED-PAYLOAD")]
    UnsupportedPayloadHash(String),
    #[error(
        "a streamed body needs x-amz-content-sha256: the hex SHA-256 of the body, or UNSIGNED-PAYLOAD over TLS"
    )]
    StreamedPayloadHashMissing,
    #[error(
        "the body does not match its x-amz-content-sha256: declared {declared}, received {received}"
    )]
    PayloadHashMismatch { declared: String, received: String },
    #[error("the request body could not be read: {0}")]
    BodyRead(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `20240102T030405Z`, the form of `x-amz-date`.
pub fn fmt_amz(t: DateTime<Utc>) -> String {
    t.format(crate::AMZ_DATE_FORMAT).to_string()
}

fn skew_message(request: DateTime<Utc>, server: DateTime<Utc>, max_skew_secs: i64) -> String {
    let max = chrono::Duration::seconds(max_skew_secs);
    let minutes = max_skew_secs / 60;
    if request < server {
        format!(
            "Signature expired: {} is now earlier than {} ({} - {minutes} min.); the request time \
             is {}s behind the server clock and at most {minutes} minutes of skew is accepted",
            fmt_amz(request),
            fmt_amz(server - max),
            fmt_amz(server),
            (server - request).num_seconds()
        )
    } else {
        format!(
            "Signature not yet current: {} is still later than {} ({} + {minutes} min.); the \
             request time is {}s ahead of the server clock and at most {minutes} minutes of skew \
             is accepted",
            fmt_amz(request),
            fmt_amz(server + max),
            fmt_amz(server),
            (request - server).num_seconds()
        )
    }
}
