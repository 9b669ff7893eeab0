//! SigV4 signing (agent side) and verification (cloud side) for the gateway protocol.
//!
//! Both ends use the `aws-sigv4` crate to build the canonical request, so they cannot disagree
//! on canonicalisation. The verifier re-signs the received request with the secret it knows
//! for the access key, at the time the request claims, and compares signatures in constant time.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::error::Error;

/// SigV4 signing name of the service.
pub const SERVICE: &str = "backup-gateway";
/// The cloud refuses requests whose time is further than this from its own clock.
pub const MAX_SKEW: Duration = Duration::from_secs(300);

/// Headers to add to a request: `authorization`, `x-amz-date`, `x-amz-content-sha256`.
pub type SignedHeaders = Vec<(&'static str, String)>;

/// Signs a request. `headers` are the headers that will be sent (at least `host`);
/// `time` is the (skew-corrected) current time.
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
    let sign_err = |reason: String| Error::Sign {
        uri: uri.to_string(),
        reason,
    };
    let identity = Credentials::new(access_key_id, secret_access_key, None, None, "bgw").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| sign_err(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        method,
        uri,
        headers.iter().copied(),
        SignableBody::Bytes(body),
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

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    pub fn parse(value: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::MalformedAuthorization(why.to_string());
        let rest = value
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or_else(|| bad("the algorithm must be AWS4-HMAC-SHA256"))?;
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
        let credential = credential.ok_or_else(|| bad("Credential is missing"))?;
        let mut scope = credential.split('/');
        let (Some(akid), Some(date), Some(region), Some(service), Some("aws4_request"), None) = (
            scope.next(),
            scope.next(),
            scope.next(),
            scope.next(),
            scope.next(),
            scope.next(),
        ) else {
            return Err(bad(
                "Credential must be AKID/DATE/REGION/SERVICE/aws4_request",
            ));
        };
        Ok(Self {
            access_key_id: akid.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            signed_headers: signed
                .ok_or_else(|| bad("SignedHeaders is missing"))?
                .split(';')
                .map(str::to_string)
                .collect(),
            signature: signature
                .ok_or_else(|| bad("Signature is missing"))?
                .to_string(),
        })
    }
}

/// Parses an `x-amz-date` value (`20240102T030405Z`).
pub fn parse_amz_date(value: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// A received request, as the verifier needs it.
pub struct ReceivedRequest<'a> {
    pub method: &'a str,
    /// Path and query exactly as received.
    pub path_and_query: &'a str,
    /// All received headers (names in any case).
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Verifies a signed request. `lookup` maps an access key id to its secret; `now` is the
/// server's clock. Returns the access key id on success.
pub fn verify_request(
    request: &ReceivedRequest<'_>,
    region: &str,
    now: DateTime<Utc>,
    lookup: impl FnOnce(&str) -> Option<String>,
) -> Result<String, Error> {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let auth = Authorization::parse(
        header("authorization")
            .ok_or_else(|| Error::MalformedAuthorization("no authorization header".into()))?,
    )?;
    if auth.service != SERVICE {
        return Err(Error::WrongService {
            found: auth.service,
            expected: SERVICE.into(),
        });
    }
    if auth.region != region {
        return Err(Error::WrongRegion {
            found: auth.region,
            expected: region.into(),
        });
    }
    let amz_date = header("x-amz-date")
        .and_then(parse_amz_date)
        .ok_or_else(|| Error::MalformedAuthorization("x-amz-date is missing or invalid".into()))?;
    let skew = (now - amz_date).num_seconds().abs();
    if skew > MAX_SKEW.as_secs() as i64 {
        return Err(Error::Skewed {
            request_time: amz_date,
            server_time: now,
            max_skew_secs: MAX_SKEW.as_secs() as i64,
        });
    }
    let secret = lookup(&auth.access_key_id)
        .ok_or_else(|| Error::UnknownAccessKey(auth.access_key_id.clone()))?;
    let signed: Vec<(&str, &str)> = request
        .headers
        .iter()
        .filter(|(n, _)| {
            !n.eq_ignore_ascii_case("authorization")
                && !n.eq_ignore_ascii_case("x-amz-date")
                && !n.eq_ignore_ascii_case("x-amz-content-sha256")
                && auth
                    .signed_headers
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(n))
        })
        .copied()
        .collect();
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(amz_date.timestamp().max(0) as u64);
    let expected = sign_request(
        request.method,
        request.path_and_query,
        &signed,
        request.body,
        &auth.access_key_id,
        &secret,
        region,
        time,
    )?;
    let expected_auth = expected
        .iter()
        .find(|(n, _)| *n == "authorization")
        .map(|(_, v)| Authorization::parse(v))
        .transpose()?
        .ok_or(Error::SignatureMismatch)?;
    if constant_time_eq(
        expected_auth.signature.as_bytes(),
        auth.signature.as_bytes(),
    ) && expected_auth.signed_headers == auth.signed_headers
    {
        Ok(auth.access_key_id)
    } else {
        Err(Error::SignatureMismatch)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(body: &[u8], time: SystemTime) -> Vec<(String, String)> {
        let headers = [
            ("host", "cloud.example:8443"),
            ("content-type", "application/json"),
        ];
        let mut out: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        for (n, v) in sign_request(
            "POST",
            "https://cloud.example:8443/gateway/v1/heartbeat",
            &headers,
            body,
            "AKIDGW",
            "s3cret",
            "us-east-1",
            time,
        )
        .unwrap()
        {
            out.push((n.to_string(), v));
        }
        out
    }

    fn verify(
        headers: &[(String, String)],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        verify_request(
            &ReceivedRequest {
                method: "POST",
                path_and_query: "/gateway/v1/heartbeat",
                headers: &h,
                body,
            },
            "us-east-1",
            now,
            |akid| (akid == "AKIDGW").then(|| "s3cret".to_string()),
        )
    }

    #[test]
    fn a_signed_request_verifies_and_a_changed_body_does_not() {
        let now = SystemTime::now();
        let headers = signed(b"{}", now);
        assert_eq!(verify(&headers, b"{}", Utc::now()).unwrap(), "AKIDGW");
        assert!(matches!(
            verify(&headers, b"{ }", Utc::now()),
            Err(Error::SignatureMismatch)
        ));
    }

    #[test]
    fn a_skewed_request_is_refused_with_both_times() {
        let headers = signed(b"{}", SystemTime::now() - Duration::from_secs(900));
        assert!(matches!(
            verify(&headers, b"{}", Utc::now()),
            Err(Error::Skewed { .. })
        ));
    }

    #[test]
    fn authorization_header_is_parsed() {
        let a = Authorization::parse(
            "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/backup-gateway/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(a.access_key_id, "AK");
        assert_eq!(a.signed_headers, vec!["host", "x-amz-date"]);
        assert!(Authorization::parse("Bearer x").is_err());
    }
}
