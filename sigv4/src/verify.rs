//! Verifying received requests (the cloud's side).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use chrono::{DateTime, NaiveDateTime, Utc};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::Error;
use crate::{Authorization, HashingBody, AMZ_DATE_FORMAT, MAX_SKEW, UNSIGNED_PAYLOAD};

/// When a request may leave its body out of the signature (`x-amz-content-sha256:
/// UNSIGNED-PAYLOAD`). Without a payload hash, only the transport protects the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnsignedPayload {
    /// Never: every body must be hashed into the signature.
    Refused,
    /// Only on connections that arrived over TLS (the default).
    #[default]
    OverTls,
    /// Always, also over plain HTTP (tests and trusted networks only).
    Accepted,
}

/// The head of a received request.
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// Path and query exactly as received (already percent-encoded).
    pub path_and_query: &'a str,
    /// All received headers; `host` must be among them (HTTP/2 servers add it from the URI).
    pub headers: &'a HeaderMap,
    /// Whether the request arrived over TLS.
    pub over_tls: bool,
}

/// Verifies SigV4 signatures for one signing name and region.
#[derive(Debug, Clone)]
pub struct Verifier {
    service: String,
    region: String,
    unsigned_payload: UnsignedPayload,
}

/// A request whose head carries a valid signature.
#[derive(Debug)]
pub struct Verified {
    pub access_key_id: String,
    /// What remains to check on the body as it streams.
    pub payload: PayloadCheck,
}

/// The check a streamed body must still pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadCheck {
    /// `UNSIGNED-PAYLOAD`: the body is not covered.
    Unsigned,
    /// The body must hash to this SHA-256.
    Sha256([u8; 32]),
}

impl PayloadCheck {
    /// Wraps a streamed body so that reading it to the end fails if its hash differs.
    pub fn wrap<B>(self, body: B) -> HashingBody<B> {
        match self {
            PayloadCheck::Unsigned => HashingBody::new(body, None),
            PayloadCheck::Sha256(hash) => HashingBody::new(body, Some(hash)),
        }
    }
}

/// What the canonical request uses as the payload hash.
enum PayloadHash {
    Unsigned,
    Sha256(String),
}

impl Verifier {
    /// A verifier for `service` (the signing name) in `region`; `UNSIGNED-PAYLOAD` over TLS only.
    pub fn new(service: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            region: region.into(),
            unsigned_payload: UnsignedPayload::default(),
        }
    }

    /// Sets when `UNSIGNED-PAYLOAD` is accepted.
    pub fn with_unsigned_payload(mut self, policy: UnsignedPayload) -> Self {
        self.unsigned_payload = policy;
        self
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Verifies a request whose whole body has been read. `lookup` maps an access key id to its
    /// secret; `now` is the server clock. Returns the access key id.
    pub fn verify<S: AsRef<str>>(
        &self,
        head: &RequestHead<'_>,
        body: &[u8],
        now: DateTime<Utc>,
        lookup: impl FnOnce(&str) -> Option<S>,
    ) -> Result<String, Error> {
        let received = hex::encode(Sha256::digest(body));
        let hash = match self.declared_payload(head)? {
            None => PayloadHash::Sha256(received),
            Some(PayloadCheck::Unsigned) => PayloadHash::Unsigned,
            Some(PayloadCheck::Sha256(declared)) => {
                let declared = hex::encode(declared);
                if declared != received {
                    return Err(Error::PayloadHashMismatch { declared, received });
                }
                PayloadHash::Sha256(received)
            }
        };
        self.verify_head(head, hash, now, lookup)
    }

    /// Verifies a request whose body is still to be streamed: the signature covers the
    /// declared `x-amz-content-sha256`, and [`Verified::payload`] checks the body against it.
    pub fn verify_streamed<S: AsRef<str>>(
        &self,
        head: &RequestHead<'_>,
        now: DateTime<Utc>,
        lookup: impl FnOnce(&str) -> Option<S>,
    ) -> Result<Verified, Error> {
        let payload = self
            .declared_payload(head)?
            .ok_or(Error::StreamedPayloadHashMissing)?;
        let hash = match &payload {
            PayloadCheck::Unsigned => PayloadHash::Unsigned,
            PayloadCheck::Sha256(h) => PayloadHash::Sha256(hex::encode(h)),
        };
        let access_key_id = self.verify_head(head, hash, now, lookup)?;
        Ok(Verified {
            access_key_id,
            payload,
        })
    }

    /// The body check `x-amz-content-sha256` asks for, if the header is there.
    fn declared_payload(&self, head: &RequestHead<'_>) -> Result<Option<PayloadCheck>, Error> {
        let Some(value) = header(head.headers, "x-amz-content-sha256")? else {
            return Ok(None);
        };
        if value == UNSIGNED_PAYLOAD {
            let allowed = match self.unsigned_payload {
                UnsignedPayload::Refused => false,
                UnsignedPayload::OverTls => head.over_tls,
                UnsignedPayload::Accepted => true,
            };
            return if allowed {
                Ok(Some(PayloadCheck::Unsigned))
            } else {
                Err(Error::UnsignedPayloadRefused)
            };
        }
        let mut hash = [0u8; 32];
        match hex::decode_to_slice(value, &mut hash) {
            Ok(()) => Ok(Some(PayloadCheck::Sha256(hash))),
            Err(_) => Err(Error::UnsupportedPayloadHash(value.to_owned())),
        }
    }

    fn verify_head<S: AsRef<str>>(
        &self,
        head: &RequestHead<'_>,
        payload: PayloadHash,
        now: DateTime<Utc>,
        lookup: impl FnOnce(&str) -> Option<S>,
    ) -> Result<String, Error> {
        let Some(value) = header(head.headers, "authorization")? else {
            return Err(Error::MissingAuthorization {
                service: self.service.clone(),
            });
        };
        let auth = Authorization::parse(value)?;
        if auth.service != self.service {
            return Err(Error::WrongService {
                found: auth.service,
                expected: self.service.clone(),
            });
        }
        if auth.region != self.region {
            return Err(Error::WrongRegion {
                found: auth.region,
                expected: self.region.clone(),
            });
        }
        let bad_date = |reason: String| Error::BadHeader {
            name: "x-amz-date",
            reason,
        };
        let amz_date =
            header(head.headers, "x-amz-date")?.ok_or_else(|| bad_date("it is required".into()))?;
        let request_time = NaiveDateTime::parse_from_str(amz_date, AMZ_DATE_FORMAT)
            .map_err(|_| bad_date(format!("{amz_date:?} is not in the form YYYYMMDDTHHMMSSZ")))?
            .and_utc();
        if auth.date.len() != 8 || !amz_date.starts_with(&auth.date) {
            return Err(Error::MalformedAuthorization(format!(
                "credential scope date {} does not match X-Amz-Date {amz_date}",
                auth.date
            )));
        }
        let max_skew = chrono::Duration::from_std(MAX_SKEW).unwrap_or(chrono::Duration::MAX);
        if (now - request_time).abs() > max_skew {
            return Err(Error::Skewed {
                request_time,
                server_time: now,
                max_skew_secs: max_skew.num_seconds(),
            });
        }
        if !auth.signed_headers.iter().any(|h| h == "host") {
            return Err(Error::MalformedAuthorization(
                "the host header must be signed".into(),
            ));
        }
        let secret = lookup(&auth.access_key_id)
            .ok_or_else(|| Error::UnknownAccessKey(auth.access_key_id.clone()))?;

        // Exactly the headers the client listed, with repeated values joined as SigV4 says.
        let mut signed: Vec<(&str, String)> = Vec::with_capacity(auth.signed_headers.len());
        for name in &auth.signed_headers {
            let values: Vec<&str> = head
                .headers
                .get_all(name.as_str())
                .iter()
                .map(|v| {
                    v.to_str().map_err(|_| Error::BadHeader {
                        name: "signed header",
                        reason: format!("{name} is not valid text"),
                    })
                })
                .collect::<Result<_, _>>()?;
            if values.is_empty() {
                return Err(Error::MalformedAuthorization(format!(
                    "signed header {name} is missing from the request"
                )));
            }
            signed.push((name, values.join(",")));
        }
        let host = header(head.headers, "host")?.unwrap_or("localhost");
        let uri = format!("http://{host}{}", head.path_and_query);

        let identity = Credentials::new(
            auth.access_key_id.as_str(),
            secret.as_ref(),
            None,
            None,
            "bgw-verifier",
        )
        .into();
        let mut settings = SigningSettings::default();
        // Exactly the client's SignedHeaders are handed over, so nothing is excluded.
        settings.excluded_headers = Some(Vec::new());
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(SystemTime::from(request_time))
            .settings(settings)
            .build()
            .map_err(|e| Error::Sign {
                uri: uri.clone(),
                reason: e.to_string(),
            })?;
        let body = match payload {
            PayloadHash::Unsigned => SignableBody::UnsignedPayload,
            PayloadHash::Sha256(hex) => SignableBody::Precomputed(hex),
        };
        let cannot = |e: &dyn std::fmt::Display| {
            Error::MalformedAuthorization(format!("the request cannot be canonicalised: {e}"))
        };
        let signable = SignableRequest::new(
            head.method,
            uri.as_str(),
            signed.iter().map(|(k, v)| (*k, v.as_str())),
            body,
        )
        .map_err(|e| cannot(&e))?;
        let output = sign(signable, &params.into()).map_err(|e| cannot(&e))?;
        if output
            .signature()
            .as_bytes()
            .ct_eq(auth.signature.as_bytes())
            .into()
        {
            Ok(auth.access_key_id)
        } else {
            Err(Error::SignatureMismatch)
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, Error> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| Error::BadHeader {
                name,
                reason: "it is not valid text".into(),
            })
        })
        .transpose()
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
