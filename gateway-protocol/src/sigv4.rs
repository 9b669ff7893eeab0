//! SigV4 for the gateway protocol: the signing name, and signing as the agent does it.
//!
//! Signing and verification live in `bgw-sigv4`, shared with the cloud's AWS API; this module
//! only binds them to the gateway protocol's signing name. The cloud verifies with
//! `bgw_sigv4::Verifier::new(SERVICE, region)`.

use std::time::SystemTime;

pub use bgw_sigv4::{SignedHeaders, MAX_SKEW};

use crate::error::Error;

/// SigV4 signing name of the gateway protocol.
pub const SERVICE: &str = "backup-gateway";

/// Signs a gateway protocol request. `headers` are the headers that will be sent (at least
/// `host`); `time` is the (skew-corrected) current time.
#[allow(clippy::too_many_arguments)]
pub fn sign_request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    time: SystemTime,
) -> Result<SignedHeaders, Error> {
    Ok(bgw_sigv4::sign_request(
        &bgw_sigv4::OutgoingRequest {
            method,
            uri,
            headers,
            payload: bgw_sigv4::Payload::Bytes(body),
        },
        &bgw_sigv4::Scope {
            service: SERVICE,
            region,
        },
        &bgw_sigv4::Key {
            access_key_id,
            secret_access_key,
        },
        time,
    )?)
}
