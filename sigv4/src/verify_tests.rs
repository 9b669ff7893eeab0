use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::BodyExt;

use super::*;
use crate::{sign_request, Key, OutgoingRequest, Payload, Scope};

// The credentials and time of AWS's published SigV4 test suite.
const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn suite_time() -> DateTime<Utc> {
    "2015-08-30T12:36:00Z".parse().unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

fn lookup(akid: &str) -> Option<&'static str> {
    (akid == AKID).then_some(SECRET)
}

#[test]
fn accepts_the_aws_test_suite_vectors() {
    let verifier = Verifier::new("service", "us-east-1");
    for (name, method, path, signature) in [
        (
            "get-vanilla",
            "GET",
            "/",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-vanilla-query-order-key-case",
            "GET",
            "/?Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "post-vanilla",
            "POST",
            "/",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
    ] {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={signature}"
        );
        let map = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            ("authorization", &auth),
        ]);
        let head = RequestHead {
            method,
            path_and_query: path,
            headers: &map,
            over_tls: true,
        };
        assert_eq!(
            verifier.verify(&head, b"", suite_time(), lookup).unwrap(),
            AKID,
            "{name}"
        );
        // The same vector with one character of the signature changed is refused.
        let last = if signature.ends_with('0') { "1" } else { "0" };
        let forged = auth.replace(signature, &format!("{}{last}", &signature[..63]));
        let map = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            ("authorization", &forged),
        ]);
        let head = RequestHead {
            headers: &map,
            ..head
        };
        assert!(
            matches!(
                verifier.verify(&head, b"", suite_time(), lookup),
                Err(Error::SignatureMismatch)
            ),
            "{name}"
        );
    }
}

/// Signs as the agent does and returns the headers the server receives.
fn signed(service: &str, payload: Payload<'_>, at: SystemTime, secret: &str) -> HeaderMap {
    let base = [
        ("host", "cloud.example:8443"),
        ("content-type", "application/json"),
    ];
    let out = sign_request(
        &OutgoingRequest {
            method: "POST",
            uri: "https://cloud.example:8443/gateway/v1/heartbeat",
            headers: &base,
            payload,
        },
        &Scope {
            service,
            region: "us-east-1",
        },
        &Key {
            access_key_id: AKID,
            secret_access_key: secret,
        },
        at,
    )
    .unwrap();
    let mut map = headers(&base);
    for (k, v) in out {
        map.insert(k, HeaderValue::from_str(&v).unwrap());
    }
    map
}

fn head(map: &HeaderMap, over_tls: bool) -> RequestHead<'_> {
    RequestHead {
        method: "POST",
        path_and_query: "/gateway/v1/heartbeat",
        headers: map,
        over_tls,
    }
}

fn now() -> DateTime<Utc> {
    "2026-01-01T12:00:00Z".parse().unwrap()
}

fn at(t: DateTime<Utc>) -> SystemTime {
    SystemTime::from(t)
}

#[test]
fn a_signed_buffered_request_verifies_and_changes_do_not() {
    let v = Verifier::new("backup-gateway", "us-east-1");
    let map = signed("backup-gateway", Payload::Bytes(b"{}"), at(now()), SECRET);
    assert_eq!(
        v.verify(&head(&map, true), b"{}", now(), lookup).unwrap(),
        AKID
    );
    // A changed body no longer matches the signed x-amz-content-sha256.
    assert!(matches!(
        v.verify(&head(&map, true), b"{ }", now(), lookup),
        Err(Error::PayloadHashMismatch { .. })
    ));
    // The wrong secret.
    let map = signed("backup-gateway", Payload::Bytes(b"{}"), at(now()), "nope");
    assert!(matches!(
        v.verify(&head(&map, true), b"{}", now(), lookup),
        Err(Error::SignatureMismatch)
    ));
    // An unknown key.
    assert!(matches!(
        v.verify(&head(&map, true), b"{}", now(), |_| None::<String>),
        Err(Error::UnknownAccessKey(k)) if k == AKID
    ));
}

#[test]
fn a_signature_for_another_service_is_refused_by_name() {
    let gateway = Verifier::new("backup-gateway", "us-east-1");
    let backup = Verifier::new("backup", "us-east-1");
    let map = signed("backup", Payload::Bytes(b"{}"), at(now()), SECRET);
    assert_eq!(
        backup
            .verify(&head(&map, true), b"{}", now(), lookup)
            .unwrap(),
        AKID
    );
    let err = gateway
        .verify(&head(&map, true), b"{}", now(), lookup)
        .unwrap_err();
    assert!(
        err.to_string().contains("'backup-gateway', not 'backup'"),
        "{err}"
    );
    let eu = Verifier::new("backup", "eu-west-1");
    assert!(matches!(
        eu.verify(&head(&map, true), b"{}", now(), lookup),
        Err(Error::WrongRegion { .. })
    ));
}

#[test]
fn skew_beyond_five_minutes_is_refused_naming_the_server_time() {
    let v = Verifier::new("backup-gateway", "us-east-1");
    let map = signed("backup-gateway", Payload::Bytes(b"{}"), at(now()), SECRET);
    let within = now() + chrono::Duration::minutes(4);
    assert!(v.verify(&head(&map, true), b"{}", within, lookup).is_ok());
    for (server, words) in [
        (now() + chrono::Duration::minutes(6), "Signature expired"),
        (now() - chrono::Duration::minutes(6), "not yet current"),
    ] {
        let err = v
            .verify(&head(&map, true), b"{}", server, lookup)
            .unwrap_err();
        let Error::Skewed {
            request_time,
            server_time,
            max_skew_secs,
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!(
            (*request_time, *server_time, *max_skew_secs),
            (now(), server, 300)
        );
        let text = err.to_string();
        assert!(text.contains(words), "{text}");
        assert!(text.contains("20260101T120000Z"), "{text}");
        assert!(text.contains(&crate::error::fmt_amz(server)), "{text}");
        assert!(text.contains("skew"), "{text}");
    }
}

#[test]
fn unsigned_payload_is_accepted_over_tls_only_unless_configured() {
    let map = signed("backup-gateway", Payload::Unsigned, at(now()), SECRET);
    let default = Verifier::new("backup-gateway", "us-east-1");
    assert_eq!(
        default
            .verify(&head(&map, true), b"anything", now(), lookup)
            .unwrap(),
        AKID
    );
    assert!(matches!(
        default.verify(&head(&map, false), b"anything", now(), lookup),
        Err(Error::UnsignedPayloadRefused)
    ));
    let refused = default
        .clone()
        .with_unsigned_payload(UnsignedPayload::Refused);
    assert!(refused
        .verify_streamed(&head(&map, true), now(), lookup)
        .is_err());
    let accepted = default.with_unsigned_payload(UnsignedPayload::Accepted);
    let verified = accepted
        .verify_streamed(&head(&map, false), now(), lookup)
        .unwrap();
    assert_eq!(verified.payload, PayloadCheck::Unsigned);
}

/// A body delivered in the given chunks, as a network would.
struct Chunked(std::collections::VecDeque<Bytes>);

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

fn chunked(parts: &[&'static [u8]]) -> Chunked {
    Chunked(parts.iter().map(|p| Bytes::from_static(p)).collect())
}

#[tokio::test]
async fn a_streamed_body_is_checked_against_its_declared_hash_at_the_end() {
    let v = Verifier::new("backup-gateway", "us-east-1");
    let body: &[u8] = b"chunk-one|chunk-two";
    let declared = hex::encode(Sha256::digest(body));
    let map = signed(
        "backup-gateway",
        Payload::Sha256(&declared),
        at(now()),
        SECRET,
    );
    let verified = v
        .verify_streamed(&head(&map, false), now(), lookup)
        .unwrap();
    assert_eq!(verified.access_key_id, AKID);

    let good = verified
        .payload
        .clone()
        .wrap(chunked(&[b"chunk-one|", b"chunk-two"]));
    assert_eq!(
        good.collect().await.unwrap().to_bytes(),
        Bytes::from_static(body)
    );

    let bad = verified
        .payload
        .wrap(chunked(&[b"chunk-one|", b"chunk-TWO"]));
    let err = bad.collect().await.unwrap_err();
    assert!(
        matches!(err, Error::PayloadHashMismatch { ref declared, .. } if declared == &hex::encode(Sha256::digest(body))),
        "{err}"
    );

    // Buffered, the same request is checked against the whole body at once.
    assert!(v.verify(&head(&map, false), body, now(), lookup).is_ok());
    assert!(v
        .verify(&head(&map, false), b"other", now(), lookup)
        .is_err());
}

#[test]
fn a_streamed_body_needs_a_declared_hash() {
    let v = Verifier::new("backup-gateway", "us-east-1");
    let mut map = signed("backup-gateway", Payload::Bytes(b""), at(now()), SECRET);
    map.remove("x-amz-content-sha256");
    assert!(matches!(
        v.verify_streamed(&head(&map, true), now(), lookup),
        Err(Error::StreamedPayloadHashMissing)
    ));
    map.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    );
    assert!(matches!(
        v.verify_streamed(&head(&map, true), now(), lookup),
        Err(Error::UnsupportedPayloadHash(_))
    ));
}

#[test]
fn a_missing_authorization_names_the_service() {
    let v = Verifier::new("backup", "us-east-1");
    let map = headers(&[("host", "h")]);
    let err = v.verify(&head(&map, true), b"", now(), lookup).unwrap_err();
    assert!(matches!(err, Error::MissingAuthorization { .. }));
    assert!(err.to_string().contains("service backup)"), "{err}");
}
