//! AWS Signature Version 4 for the backup gateway: signing (the agent) and verification (the
//! cloud, for every AWS service it serves and for the gateway protocol).
//!
//! Both ends build the canonical request with the `aws-sigv4` crate, so they cannot disagree on
//! canonicalisation. A [`Verifier`] is made for one signing name and region; it re-signs the
//! received request with the secret it looks up for the access key, at the time the request
//! claims, and compares signatures in constant time. Requests further than [`MAX_SKEW`] from the
//! server clock are refused with [`Error::Skewed`], which names both times.
//!
//! A buffered body is hashed and checked whole. A streamed body is verified from its head: the
//! signature covers the declared `x-amz-content-sha256`, and [`PayloadCheck::wrap`] hashes the
//! body as it is read and fails the read at the end if the hash differs, so a large upload is
//! never held in memory. `UNSIGNED-PAYLOAD` is accepted only as [`UnsignedPayload`] allows
//! (by default: over TLS).
//!
//! ```
//! use bgw_sigv4::{RequestHead, Verifier};
//! let verifier = Verifier::new("backup-gateway", "us-east-1");
//! let headers = http::HeaderMap::new();
//! let head = RequestHead { method: "POST", path_and_query: "/", headers: &headers, over_tls: true };
//! let refused = verifier.verify(&head, b"{}", chrono::Utc::now(), |_| None::<String>);
//! assert!(matches!(refused, Err(bgw_sigv4::Error::MissingAuthorization { .. })));
//! ```

mod authorization;
mod body;
pub mod error;
mod sign;
mod verify;

pub use authorization::Authorization;
pub use body::HashingBody;
pub use error::Error;
pub use sign::{sign_request, Key, OutgoingRequest, SignedHeaders};
pub use verify::{PayloadCheck, RequestHead, UnsignedPayload, Verified, Verifier};

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Largest accepted difference between a request's `x-amz-date` and the server clock.
pub const MAX_SKEW: std::time::Duration = std::time::Duration::from_secs(300);
/// `x-amz-content-sha256` value of a request whose body is not covered by the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The form of `x-amz-date`.
pub const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Which service and region a signature is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// The signing name, e.g. `backup-gateway` or `backup`.
    pub service: &'a str,
    pub region: &'a str,
}

/// What the signature says about the body of an outgoing request.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// The whole body: its SHA-256 is signed.
    Bytes(&'a [u8]),
    /// The hex SHA-256 of a body that will be streamed.
    Sha256(&'a str),
    /// The body is not covered (`UNSIGNED-PAYLOAD`; only over TLS).
    Unsigned,
}
