//! SigV4 verification of incoming requests.
//!
//! The canonical request is rebuilt by the `aws-sigv4` crate from what was received: the method,
//! path and query, exactly the headers the client listed in `SignedHeaders`, and the SHA-256 of
//! the real body. It is signed with the stored secret at the request's own `X-Amz-Date`, and the
//! result is compared with the client's signature in constant time.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use chrono::{DateTime, NaiveDateTime, Utc};
use http::HeaderMap;
use subtle::ConstantTimeEq;

use super::{KeyRing, Principal};
use crate::api::error::{ApiError, ErrorKind};

/// Signing name of the service in credential scopes.
pub const SIGNING_NAME: &str = "backup-gateway";
/// Largest accepted difference between the request time and the server clock.
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(5);

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What a verifier needs to know about one request.
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// Path and query exactly as received (already percent-encoded).
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::InvalidSignature, message)
}

struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, ApiError> {
    let incomplete = || {
        ApiError::new(
            ErrorKind::InvalidSignature,
            "Authorization header is not a complete AWS4-HMAC-SHA256 signature \
             (needs Credential, SignedHeaders and Signature)",
        )
    };
    let rest = value
        .strip_prefix(ALGORITHM)
        .ok_or_else(|| invalid(format!("only {ALGORITHM} signatures are accepted")))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (credential, signed, signature) = (
        credential.ok_or_else(incomplete)?,
        signed.ok_or_else(incomplete)?,
        signature.ok_or_else(incomplete)?,
    );
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, terminator] = scope[..] else {
        return Err(invalid(format!(
            "credential scope {credential:?} is not ACCESS_KEY/DATE/REGION/SERVICE/aws4_request"
        )));
    };
    if terminator != "aws4_request" {
        return Err(invalid("credential scope must end with aws4_request"));
    }
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| invalid(format!("header {name} is not valid text")))
        })
        .transpose()
}

/// Verifies a request's SigV4 signature; returns who signed it.
pub fn verify(
    request: &RequestParts<'_>,
    keys: &KeyRing,
    region: &str,
    now: DateTime<Utc>,
) -> Result<Principal, ApiError> {
    let Some(auth_value) = header_str(request.headers, "authorization")? else {
        return Err(ApiError::new(
            ErrorKind::MissingAuthenticationToken,
            "Missing Authentication Token: sign every request with SigV4 (service backup-gateway)",
        ));
    };
    let auth = parse_authorization(auth_value)?;

    let Some((secret, role)) = keys.lookup(auth.access_key) else {
        return Err(ApiError::new(
            ErrorKind::UnrecognizedClient,
            "The security token included in the request is invalid: unknown access key",
        ));
    };
    if auth.service != SIGNING_NAME {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{SIGNING_NAME}', not '{}'",
            auth.service
        )));
    }
    if auth.region != region {
        return Err(invalid(format!(
            "Credential should be scoped to a valid region: this endpoint serves '{region}', not '{}'",
            auth.region
        )));
    }

    let amz_date = header_str(request.headers, "x-amz-date")?
        .ok_or_else(|| invalid("X-Amz-Date header is required"))?;
    let request_time = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| {
            invalid(format!(
                "X-Amz-Date {amz_date:?} is not in the form YYYYMMDDTHHMMSSZ"
            ))
        })?
        .and_utc();
    if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(invalid(format!(
            "credential scope date {} does not match X-Amz-Date {amz_date}",
            auth.date
        )));
    }
    check_skew(request_time, now)?;

    if !auth.signed_headers.contains(&"host") {
        return Err(invalid("the host header must be signed"));
    }
    let mut signed: Vec<(&str, String)> = Vec::new();
    for name in &auth.signed_headers {
        let values: Vec<&str> = request
            .headers
            .get_all(*name)
            .iter()
            .map(|v| {
                v.to_str()
                    .map_err(|_| invalid(format!("header {name} is not valid text")))
            })
            .collect::<Result<_, _>>()?;
        if values.is_empty() {
            return Err(invalid(format!(
                "signed header {name} is missing from the request"
            )));
        }
        signed.push((name, values.join(",")));
    }
    let host = header_str(request.headers, "host")?.unwrap_or("localhost");
    let uri = format!("http://{host}{}", request.path_and_query);

    let identity =
        Credentials::new(auth.access_key, secret.expose(), None, None, "bgw-cloud").into();
    let mut settings = SigningSettings::default();
    // Exactly the client's SignedHeaders are handed over, so nothing is excluded.
    settings.excluded_headers = Some(Vec::new());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(SIGNING_NAME)
        .time(SystemTime::from(request_time))
        .settings(settings)
        .build()
        .map_err(|e| ApiError::internal(format!("signing parameters: {e}")))?;
    let signable = SignableRequest::new(
        request.method,
        uri,
        signed.iter().map(|(k, v)| (*k, v.as_str())),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| invalid(format!("request cannot be canonicalised: {e}")))?;
    let output = sign(signable, &params.into())
        .map_err(|e| invalid(format!("request cannot be canonicalised: {e}")))?;

    let expected = output.signature().as_bytes();
    if expected.ct_eq(auth.signature.as_bytes()).into() {
        Ok(Principal {
            access_key: auth.access_key.to_owned(),
            role,
        })
    } else {
        Err(invalid(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        ))
    }
}

fn check_skew(request_time: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), ApiError> {
    let fmt = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    if request_time < now - MAX_SKEW {
        return Err(invalid(format!(
            "Signature expired: {} is now earlier than {} ({} - 5 min.); the request time is {}s \
             behind the server clock and at most 5 minutes of skew is accepted",
            fmt(request_time),
            fmt(now - MAX_SKEW),
            fmt(now),
            (now - request_time).num_seconds()
        )));
    }
    if request_time > now + MAX_SKEW {
        return Err(invalid(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.); the request time \
             is {}s ahead of the server clock and at most 5 minutes of skew is accepted",
            fmt(request_time),
            fmt(now + MAX_SKEW),
            fmt(now),
            (request_time - now).num_seconds()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::secret::Secret;
    use http::HeaderValue;

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// Signs like a client would (with the same crate, but from the client's side).
    fn signed_headers(body: &[u8], at: DateTime<Utc>, secret: &str) -> HeaderMap {
        let identity = Credentials::new(AKID, secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(SIGNING_NAME)
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
        let signed: Vec<(String, String)> = instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for (k, v) in signed {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(&v).unwrap(),
            );
        }
        headers
    }

    fn ring() -> KeyRing {
        let ring = KeyRing::default();
        ring.insert(AKID, Secret::new(SECRET), Role::Admin);
        ring
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T12:00:00Z".parse().unwrap()
    }

    fn check(headers: &HeaderMap, body: &[u8], at: DateTime<Utc>) -> Result<Principal, ApiError> {
        let parts = RequestParts {
            method: "POST",
            path_and_query: "/",
            headers,
            body,
        };
        verify(&parts, &ring(), "us-east-1", at)
    }

    #[test]
    fn accepts_a_correct_signature() {
        let headers = signed_headers(b"{}", now(), SECRET);
        let p = check(&headers, b"{}", now()).unwrap();
        assert_eq!(p.role, Role::Admin);
    }

    #[test]
    fn rejects_wrong_secret_and_tampered_body() {
        let headers = signed_headers(b"{}", now(), "not-the-secret");
        let err = check(&headers, b"{}", now()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidSignature);
        let headers = signed_headers(b"{}", now(), SECRET);
        let err = check(&headers, b"{\"MaxResults\":1}", now()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidSignature);
    }

    #[test]
    fn rejects_skew_naming_both_times() {
        let headers = signed_headers(b"{}", now(), SECRET);
        let later = now() + chrono::Duration::minutes(6);
        let err = check(&headers, b"{}", later).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidSignature);
        assert!(err.message.contains("20260101T120000Z"), "{}", err.message);
        assert!(err.message.contains("20260101T120100Z"), "{}", err.message);
        assert!(err.message.contains("5 min"));
        let earlier = now() - chrono::Duration::minutes(6);
        assert!(check(&headers, b"{}", earlier).is_err());
        assert!(check(&headers, b"{}", now() + chrono::Duration::minutes(4)).is_ok());
    }

    #[test]
    fn unknown_key_and_missing_signature() {
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

    #[test]
    fn garbage_authorization_is_an_error_not_a_panic() {
        let mut headers = signed_headers(b"{}", now(), SECRET);
        for bad in [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=00",
            "Basic Zm9vOmJhcg==",
        ] {
            headers.insert("authorization", HeaderValue::from_static(bad));
            assert!(check(&headers, b"{}", now()).is_err());
        }
    }
}
