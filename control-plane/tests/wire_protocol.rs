//! Raw requests to `bgw-cloud`, signed in Rust with `aws-sigv4`: authentication
//! failures (unknown key, wrong secret, skewed clock, tampered payload,
//! unsigned), malformed bodies in both protocols, and throttling. Each check is
//! named in the output; the server must answer every one with a clear error and
//! stay up.

mod support;

use std::time::{Duration, SystemTime};

use serde_json::json;
use support::{
    build_request, cbor, expect_client_error, expect_error, http_client, json_headers, send,
    Checks, CloudServer, Reply, Signing, CBOR_HEADERS, CBOR_PREFIX,
};

struct Wire {
    server: CloudServer,
    http: reqwest::Client,
}

impl Wire {
    fn start(args: &[&str]) -> Wire {
        let server = CloudServer::start(args);
        let http = http_client(&server);
        Wire { server, http }
    }

    fn admin(&self) -> Signing {
        Signing::admin(&self.server)
    }

    fn admin_at(&self, offset_secs: i64) -> Signing {
        let (access_key, secret_key) = self.server.admin_credentials();
        let now = SystemTime::now();
        let time = if offset_secs >= 0 {
            now + Duration::from_secs(offset_secs as u64)
        } else {
            now - Duration::from_secs((-offset_secs) as u64)
        };
        Signing::Key {
            access_key,
            secret_key,
            time,
        }
    }

    /// AWS JSON 1.0: `POST /` with X-Amz-Target.
    async fn json(&self, operation: &str, body: &[u8], signing: &Signing) -> Reply {
        let headers = json_headers(operation);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.raw("/", &headers, body, body, signing).await
    }

    /// Smithy RPC v2 CBOR: `POST /service/.../operation/<Op>`.
    async fn cbor(&self, operation: &str, body: &[u8], signing: &Signing) -> Reply {
        let path = format!("{CBOR_PREFIX}{operation}");
        self.raw(&path, CBOR_HEADERS, body, body, signing).await
    }

    async fn raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        signed_body: &[u8],
        body: &[u8],
        signing: &Signing,
    ) -> Reply {
        let request = build_request(&self.server, path, headers, signed_body, body, signing);
        send(&self.http, request).await
    }

    async fn health(&self) -> Result<(), String> {
        let url = format!("{}/health", self.server.endpoint);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("GET /health answered {}", response.status()));
        }
        Ok(())
    }
}

fn ok_list(reply: &Reply, key: &str) -> Result<(), String> {
    if reply.status != 200 {
        return Err(format!(
            "HTTP {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.raw)
        ));
    }
    if !(reply.body.get(key).is_some_and(|v| v.is_array()) || reply.body.get(key).is_none()) {
        return Err(format!("{key} is not a list: {}", reply.body));
    }
    Ok(())
}

fn message_mentions(reply: &Reply, word: &str) -> Result<(), String> {
    if reply
        .message()
        .to_lowercase()
        .contains(&word.to_lowercase())
    {
        Ok(())
    } else {
        Err(format!(
            "message {:?} does not mention {word:?}",
            reply.message()
        ))
    }
}

fn both(a: Result<(), String>, b: Result<(), String>) -> Result<(), String> {
    a.and(b)
}

const AUTH_ERRORS: &[&str] = &[
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication() {
    let w = Wire::start(&[]);
    let mut checks = Checks::default();
    let empty_json = b"{}";
    let empty_cbor = cbor(&json!({}));
    let (access_key, secret_key) = w.server.admin_credentials();

    checks.check(
        "GET /health answers 200 without authentication",
        w.health().await,
    );

    let r = w.json("ListGateways", empty_json, &w.admin()).await;
    checks.check("signed JSON ListGateways -> 200", ok_list(&r, "Gateways"));
    checks.check(
        "JSON response Content-Type is application/x-amz-json-1.0",
        if r.content_type.starts_with("application/x-amz-json-1.0") {
            Ok(())
        } else {
            Err(format!("Content-Type {:?}", r.content_type))
        },
    );

    let r = w.cbor("ListGateways", &empty_cbor, &w.admin()).await;
    checks.check("signed CBOR ListGateways -> 200", ok_list(&r, "Gateways"));
    checks.check(
        "CBOR response Content-Type is application/cbor",
        if r.content_type.starts_with("application/cbor") {
            Ok(())
        } else {
            Err(format!("Content-Type {:?}", r.content_type))
        },
    );

    for (protocol, is_cbor) in [("JSON", false), ("CBOR", true)] {
        let send = |signing: Signing| {
            let w = &w;
            let body: Vec<u8> = if is_cbor {
                empty_cbor.clone()
            } else {
                empty_json.to_vec()
            };
            async move {
                if is_cbor {
                    w.cbor("ListGateways", &body, &signing).await
                } else {
                    w.json("ListGateways", &body, &signing).await
                }
            }
        };

        let r = send(Signing::None).await;
        checks.check(
            &format!("{protocol}: unsigned request -> 403"),
            expect_error(&r, 403, AUTH_ERRORS),
        );

        let r = send(Signing::Key {
            access_key: "AKIAUNKNOWNKEY000000".into(),
            secret_key: secret_key.clone(),
            time: SystemTime::now(),
        })
        .await;
        checks.check(
            &format!("{protocol}: unknown access key -> 403 UnrecognizedClientException"),
            expect_error(&r, 403, &["UnrecognizedClientException"]),
        );

        let r = send(Signing::Key {
            access_key: access_key.clone(),
            secret_key: format!("{secret_key}x"),
            time: SystemTime::now(),
        })
        .await;
        checks.check(
            &format!("{protocol}: wrong secret -> 403 InvalidSignatureException"),
            expect_error(&r, 403, &["InvalidSignatureException"]),
        );
        checks.check(
            &format!("{protocol}: the secret never appears in an answer"),
            if String::from_utf8_lossy(&r.raw).contains(&secret_key) {
                Err("secret echoed".into())
            } else {
                Ok(())
            },
        );

        for offset in [6 * 60, -6 * 60, 3600] {
            let r = send(w.admin_at(offset)).await;
            checks.check(
                &format!("{protocol}: request time {offset:+} s off -> 403 naming the skew"),
                both(
                    expect_error(&r, 403, &["InvalidSignatureException"]),
                    message_mentions(&r, "skew"),
                ),
            );
        }
        let r = send(w.admin_at(-4 * 60)).await;
        checks.check(
            &format!("{protocol}: request time 4 minutes behind is accepted"),
            ok_list(&r, "Gateways"),
        );
    }

    // The signature covers the payload hash: a body changed after signing is refused.
    let headers = json_headers("ListGateways");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = w
        .raw("/", &headers, b"{}", br#"{"MaxResults": 1}"#, &w.admin())
        .await;
    checks.check(
        "JSON: body changed after signing -> 403 InvalidSignatureException",
        expect_error(&r, 403, &["InvalidSignatureException"]),
    );
    let signed = cbor(&json!({}));
    let sent = cbor(&json!({"MaxResults": 1}));
    let r = w
        .raw(
            &format!("{CBOR_PREFIX}ListGateways"),
            CBOR_HEADERS,
            &signed,
            &sent,
            &w.admin(),
        )
        .await;
    checks.check(
        "CBOR: body changed after signing -> 403 InvalidSignatureException",
        expect_error(&r, 403, &["InvalidSignatureException"]),
    );

    // The operation is part of what is signed: a signature for one target is not valid for another.
    let signed_for = json_headers("ListGateways");
    let sent_as = json_headers("ListHypervisors");
    let request = build_request(
        &w.server,
        "/",
        &signed_for
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
        b"{}",
        b"{}",
        &w.admin(),
    );
    let mut request = request;
    request
        .headers_mut()
        .insert("x-amz-target", sent_as[1].1.parse().expect("header value"));
    let r = send(&w.http, request).await;
    checks.check(
        "JSON: X-Amz-Target changed after signing -> 403",
        expect_error(&r, 403, AUTH_ERRORS),
    );

    checks.check("server still answers /health", w.health().await);
    checks.finish(&w.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies() {
    let w = Wire::start(&[]);
    let mut checks = Checks::default();
    let admin = w.admin();
    let arn = "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-0000000000000000";

    let full = cbor(&json!({ "GatewayArn": arn }));
    let r = w.cbor("GetGateway", &full[..full.len() / 2], &admin).await;
    checks.check(
        "CBOR: truncated body -> 400 SerializationException",
        expect_error(&r, 400, &["SerializationException"]),
    );
    checks.check(
        "CBOR: the error body is CBOR",
        if r.content_type.starts_with("application/cbor") {
            Ok(())
        } else {
            Err(format!("Content-Type {:?}", r.content_type))
        },
    );

    let r = w
        .cbor("GetGateway", &[0xff, 0x00, 0x13, 0x37], &admin)
        .await;
    checks.check(
        "CBOR: garbage bytes -> 400 SerializationException",
        expect_error(&r, 400, &["SerializationException"]),
    );

    let r = w.cbor("GetGateway", &cbor(&json!([arn])), &admin).await;
    checks.check(
        "CBOR: an array instead of a map -> 400 SerializationException",
        expect_error(&r, 400, &["SerializationException"]),
    );

    let r = w
        .cbor("GetGateway", &cbor(&json!({ "GatewayArn": 5 })), &admin)
        .await;
    checks.check(
        "CBOR: a number where a string belongs -> 400",
        expect_error(&r, 400, &["SerializationException", "ValidationException"]),
    );

    let r = w.json("GetGateway", br#"{"GatewayArn":"#, &admin).await;
    checks.check(
        "JSON: invalid JSON -> 400 SerializationException",
        expect_error(&r, 400, &["SerializationException"]),
    );

    let r = w
        .json("GetGateway", br#"["not", "an", "object"]"#, &admin)
        .await;
    checks.check(
        "JSON: an array instead of an object -> 400 SerializationException",
        expect_error(&r, 400, &["SerializationException"]),
    );

    let r = w.json("GetGateway", br#"{"GatewayArn": 5}"#, &admin).await;
    checks.check(
        "JSON: a number where a string belongs -> 400",
        expect_error(&r, 400, &["SerializationException", "ValidationException"]),
    );

    let r = w
        .json(
            "PutMaintenanceStartTime",
            format!(r#"{{"GatewayArn":"{arn}","HourOfDay":"one","MinuteOfHour":0,"DayOfWeek":1}}"#)
                .as_bytes(),
            &admin,
        )
        .await;
    checks.check(
        "JSON: a string where an integer belongs -> 400",
        expect_error(&r, 400, &["SerializationException", "ValidationException"]),
    );

    let r = w
        .raw(
            "/",
            &[
                ("content-type", "text/plain"),
                ("x-amz-target", "BackupOnPremises_v20210101.ListGateways"),
            ],
            b"{}",
            b"{}",
            &admin,
        )
        .await;
    checks.check(
        "JSON endpoint with Content-Type text/plain -> clear 4xx",
        expect_client_error(&r),
    );

    let path = format!("{CBOR_PREFIX}ListGateways");
    let r = w
        .raw(
            &path,
            &[
                ("content-type", "application/json"),
                ("smithy-protocol", "rpc-v2-cbor"),
            ],
            b"{}",
            b"{}",
            &admin,
        )
        .await;
    checks.check(
        "CBOR endpoint with Content-Type application/json -> clear 4xx",
        expect_client_error(&r),
    );

    let r = w
        .raw(
            "/",
            &[("content-type", "application/x-amz-json-1.0")],
            b"{}",
            b"{}",
            &admin,
        )
        .await;
    checks.check(
        "JSON without X-Amz-Target -> clear 4xx",
        expect_client_error(&r),
    );

    let r = w.json("NoSuchOperation", b"{}", &admin).await;
    checks.check(
        "JSON: unknown operation -> clear 4xx naming it",
        both(
            expect_client_error(&r),
            mention_any(&r, &["NoSuchOperation", "UnknownOperation"]),
        ),
    );
    let r = w.cbor("NoSuchOperation", &cbor(&json!({})), &admin).await;
    checks.check(
        "CBOR: unknown operation -> clear 4xx naming it",
        both(
            expect_client_error(&r),
            mention_any(&r, &["NoSuchOperation", "UnknownOperation"]),
        ),
    );

    let r = w
        .raw(
            "/",
            &[
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amz-target", "SomeOtherService_20200101.ListGateways"),
            ],
            b"{}",
            b"{}",
            &admin,
        )
        .await;
    checks.check(
        "JSON: another service's target prefix -> clear 4xx",
        expect_client_error(&r),
    );

    // Still serving, and still correct.
    checks.check("server still answers /health", w.health().await);
    let r = w.json("ListGateways", b"{}", &admin).await;
    checks.check("JSON ListGateways still works", ok_list(&r, "Gateways"));
    let r = w.cbor("ListGateways", &cbor(&json!({})), &admin).await;
    checks.check("CBOR ListGateways still works", ok_list(&r, "Gateways"));
    let mut server = w.server;
    checks.check(
        "process still running",
        if server.is_running() {
            Ok(())
        } else {
            Err("bgw-cloud exited".into())
        },
    );
    checks.check(
        "no panic in the server log",
        if server.log().contains("panicked") {
            Err("the log shows a panic".into())
        } else {
            Ok(())
        },
    );
    checks.finish(&server);
}

fn mention_any(reply: &Reply, words: &[&str]) -> Result<(), String> {
    let text = format!("{} {}", reply.error_type(), reply.message());
    if words.iter().any(|w| text.contains(w)) {
        Ok(())
    } else {
        Err(format!("{text:?} mentions none of {words:?}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_carry_modeled_members() {
    let w = Wire::start(&[]);
    let mut checks = Checks::default();
    let admin = w.admin();
    let missing = json!({"GatewayArn": "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-0000000000000000"});
    let r = w
        .json("GetGateway", missing.to_string().as_bytes(), &admin)
        .await;
    checks.check(
        "JSON: 404 ResourceNotFoundException",
        expect_error(&r, 404, &["ResourceNotFoundException"]),
    );
    checks.check("JSON: body has ErrorCode and Message", members(&r));
    let r = w.cbor("GetGateway", &cbor(&missing), &admin).await;
    checks.check(
        "CBOR: 404 ResourceNotFoundException",
        expect_error(&r, 404, &["ResourceNotFoundException"]),
    );
    checks.check("CBOR: body has ErrorCode and Message", members(&r));
    let r = w
        .json("GetGateway", br#"{"GatewayArn": "short"}"#, &admin)
        .await;
    checks.check(
        "JSON: 400 ValidationException",
        expect_error(&r, 400, &["ValidationException"]),
    );
    checks.check(
        "JSON: validation body has ErrorCode and Message",
        members(&r),
    );
    let r = w
        .cbor("GetGateway", &cbor(&json!({"GatewayArn": "short"})), &admin)
        .await;
    checks.check(
        "CBOR: 400 ValidationException",
        expect_error(&r, 400, &["ValidationException"]),
    );
    checks.check(
        "CBOR: validation body has ErrorCode and Message",
        members(&r),
    );
    checks.finish(&w.server);
}

fn members(reply: &Reply) -> Result<(), String> {
    let has = |k: &str| {
        reply
            .body
            .get(k)
            .and_then(|v| v.as_str())
            .is_some_and(|s| !s.is_empty())
    };
    if has("ErrorCode") && has("Message") {
        Ok(())
    } else {
        Err(format!(
            "error body lacks ErrorCode or Message: {}",
            reply.body
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_are_throttled() {
    let w = Wire::start(&["--throttle-rps", "2", "--throttle-burst", "2"]);
    let mut checks = Checks::default();
    let admin = w.admin();
    for (protocol, is_cbor) in [("JSON", false), ("CBOR", true)] {
        let mut throttled = None;
        for _ in 0..12 {
            let r = if is_cbor {
                w.cbor("ListGateways", &cbor(&json!({})), &admin).await
            } else {
                w.json("ListGateways", b"{}", &admin).await
            };
            if r.status != 200 {
                throttled = Some(r);
                break;
            }
        }
        checks.check(
            &format!(
                "{protocol}: a burst of 12 requests -> 429 ThrottlingException with ErrorCode"
            ),
            match &throttled {
                Some(r) => both(expect_error(r, 429, &["ThrottlingException"]), members(r)),
                None => Err("12 back-to-back requests were all served".into()),
            },
        );
    }
    // Throttling is per access key: another (unknown) key is refused for
    // what it is, not throttled on the admin key's account.
    let (_, secret) = w.server.admin_credentials();
    let r = w
        .json(
            "ListGateways",
            b"{}",
            &Signing::Key {
                access_key: "AKIAUNKNOWNKEY000000".into(),
                secret_key: secret,
                time: SystemTime::now(),
            },
        )
        .await;
    checks.check(
        "an unknown key during throttling -> 403, not 429",
        expect_error(&r, 403, &["UnrecognizedClientException"]),
    );
    checks.check("/health is not throttled", w.health().await);
    checks.finish(&w.server);
}
