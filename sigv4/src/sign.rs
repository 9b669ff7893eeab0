//! Signing outgoing requests (the agent's side).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;

use crate::error::Error;
use crate::{Payload, Scope};

/// Headers to add to a signed request: `authorization`, `x-amz-date`, `x-amz-content-sha256`.
pub type SignedHeaders = Vec<(&'static str, String)>;

/// An outgoing request as the signer sees it.
pub struct OutgoingRequest<'a> {
    pub method: &'a str,
    /// The full URL the request goes to.
    pub uri: &'a str,
    /// Headers that will be sent and signed (at least `host`).
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: Payload<'a>,
}

/// An access key and its secret.
pub struct Key<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
}

/// Signs `request` for `scope` at `time` (the skew-corrected current time). The signature
/// always covers `x-amz-content-sha256`, so the receiver can check a streamed body against it.
pub fn sign_request(
    request: &OutgoingRequest<'_>,
    scope: &Scope<'_>,
    key: &Key<'_>,
    time: SystemTime,
) -> Result<SignedHeaders, Error> {
    let sign_err = |reason: String| Error::Sign {
        uri: request.uri.to_string(),
        reason,
    };
    let identity =
        Credentials::new(key.access_key_id, key.secret_access_key, None, None, "bgw").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| sign_err(e.to_string()))?
        .into();
    let body = match request.payload {
        Payload::Bytes(bytes) => SignableBody::Bytes(bytes),
        Payload::Sha256(hex) => SignableBody::Precomputed(hex.to_owned()),
        Payload::Unsigned => SignableBody::UnsignedPayload,
    };
    let signable = SignableRequest::new(
        request.method,
        request.uri,
        request.headers.iter().copied(),
        body,
    )
    .map_err(|e| sign_err(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| sign_err(e.to_string()))?
        .into_parts();
    let (out, _) = instructions.into_parts();
    Ok(out
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}
