//! SigV4 verification of AWS API requests, on top of the shared `bgw-sigv4` verifier.
//!
//! Each registered service has its own [`Verifier`] (its signing name and the server's
//! region); this module looks the access key up in the [`KeyRing`] and turns a refusal into the
//! error AWS clients expect (`MissingAuthenticationToken`, `UnrecognizedClient` or
//! `InvalidSignature`, all 403; a skewed clock names both times).

use bgw_sigv4::Error as SigError;
pub use bgw_sigv4::{RequestHead, Verifier, MAX_SKEW};
use chrono::{DateTime, Utc};

use super::{KeyRing, Principal};
use crate::api::error::{ApiError, ErrorKind};

/// Verifies a request whose body has been read; returns who signed it.
pub fn verify(
    verifier: &Verifier,
    head: &RequestHead<'_>,
    body: &[u8],
    keys: &KeyRing,
    now: DateTime<Utc>,
) -> Result<Principal, ApiError> {
    let mut role = None;
    let access_key = verifier
        .verify(head, body, now, |akid| {
            let (secret, r) = keys.lookup(akid)?;
            role = Some(r);
            Some(secret.expose().to_owned())
        })
        .map_err(api_error)?;
    let role = role.ok_or_else(|| ApiError::internal("verified key has no role"))?;
    Ok(Principal { access_key, role })
}

/// The API error for a refused signature.
pub fn api_error(e: SigError) -> ApiError {
    let kind = match &e {
        SigError::MissingAuthorization { .. } => ErrorKind::MissingAuthenticationToken,
        SigError::UnknownAccessKey(_) => ErrorKind::UnrecognizedClient,
        SigError::Sign { .. } | SigError::BodyRead(_) => ErrorKind::InternalServer,
        _ => ErrorKind::InvalidSignature,
    };
    ApiError::new(kind, e.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::auth::Role;
    use crate::secret::Secret;
    use http::{HeaderMap, HeaderValue};

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// Signs as aws-cli does for AWS JSON 1.0 (no x-amz-content-sha256 header).
    fn signed_headers(body: &[u8], at: DateTime<Utc>, secret: &str) -> HeaderMap {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let identity =
            aws_credential_types::Credentials::new(AKID, secret, None, None, "test").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("backup-gateway")
            .time(SystemTime::from(at))
            .settings(SigningSettings::default())
            .build()
            .unwrap();
        let req_headers = [
            ("host", "127.0.0.1:8443"),
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "BackupOnPremises_v20210101.ListGateways"),
        ];
        let signable = SignableRequest::new(
            "POST",
            "https://127.0.0.1:8443/",
            req_headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params.into()).unwrap().into_parts();
        let mut headers = HeaderMap::new();
        for (k, v) in req_headers {
            headers.insert(k, HeaderValue::from_static(v));
        }
        for (k, v) in instructions.headers() {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers
    }

    fn check(headers: &HeaderMap, body: &[u8], at: DateTime<Utc>) -> Result<Principal, ApiError> {
        let keys = KeyRing::default();
        keys.insert(AKID, Secret::new(SECRET), Role::Admin);
        let head = RequestHead {
            method: "POST",
            path_and_query: "/",
            headers,
            over_tls: true,
        };
        let verifier = Verifier::new("backup-gateway", "us-east-1");
        verify(&verifier, &head, body, &keys, at)
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_correct_signature_gives_the_keys_role() {
        let headers = signed_headers(b"{}", now(), SECRET);
        assert_eq!(check(&headers, b"{}", now()).unwrap().role, Role::Admin);
    }

    #[test]
    fn refusals_map_to_the_errors_aws_clients_expect() {
        let headers = signed_headers(b"{}", now(), "not-the-secret");
        let err = check(&headers, b"{}", now()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidSignature);
        assert_eq!(err.kind.status(), http::StatusCode::FORBIDDEN);
        let headers = signed_headers(b"{}", now(), SECRET);
        let err = check(&headers, b"{\"MaxResults\":1}", now()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidSignature);

        let err = check(&headers, b"{}", now() + chrono::Duration::minutes(6)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidSignature);
        assert!(err.message.contains("20260101T120000Z"), "{}", err.message);
        assert!(err.message.contains("20260101T120100Z"), "{}", err.message);
        assert!(err.message.contains("5 min"), "{}", err.message);

        let mut headers = signed_headers(b"{}", now(), SECRET);
        let auth = headers["authorization"]
            .to_str()
            .unwrap()
            .replace(AKID, "AKIDUNKNOWN");
        headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        assert_eq!(
            check(&headers, b"{}", now()).unwrap_err().kind,
            ErrorKind::UnrecognizedClient
        );
        headers.remove("authorization");
        assert_eq!(
            check(&headers, b"{}", now()).unwrap_err().kind,
            ErrorKind::MissingAuthenticationToken
        );
    }
}
