//! In-process tests of the whole HTTP stack: bind on port 0, sign requests with SigV4, and
//! exercise what the SDK suites cannot reach without a gateway (VMs recorded by a sync).

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde_json::{json, Value};

use crate::api::wire::Protocol;
use crate::auth::credentials;
use crate::clock::SystemClock;
use crate::config::{ServeConfig, TlsMode};
use crate::error::Error;
use crate::link::RecordOnly;
use crate::registry::{AwsService, HandlerFuture, ServiceHandler, DEFAULT_BODY_LIMIT};
use crate::server::bind_with;

struct Running {
    url: String,
    key: credentials::AccessKey,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    start_with(Vec::new()).await
}

/// Starts a server with further services registered beside the Backup Gateway API.
async fn start_with(services: Vec<AwsService>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new("127.0.0.1:0", dir.path().join("data"));
    config.tls = TlsMode::PlainHttp;
    let mut server = bind_with(config.clone(), Arc::new(SystemClock), Arc::new(RecordOnly))
        .await
        .unwrap();
    for service in services {
        server.register(service).unwrap();
    }
    let url = server.url();
    let key =
        credentials::load_or_create(&config.admin_credentials_path(), &mut rand::thread_rng())
            .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    Running {
        url,
        key,
        stop: Some(tx),
        task,
        _dir: dir,
    }
}

impl Running {
    async fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Vec<u8>) {
        self.send("POST", path, "backup-gateway", headers, body)
            .await
    }

    /// Sends a request signed with the admin key for the signing name `service`.
    async fn send(
        &self,
        method: &str,
        path: &str,
        service: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let host = self.url.trim_start_matches("http://").to_owned();
        let mut all: Vec<(&str, &str)> = vec![("host", host.as_str())];
        all.extend_from_slice(headers);
        let identity = Credentials::new(
            &self.key.access_key_id,
            self.key.secret_access_key.expose(),
            None,
            None,
            "test",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .unwrap();
        let signable = SignableRequest::new(
            method,
            format!("{}{path}", self.url),
            all.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params.into()).unwrap().into_parts();
        let mut request = reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", self.url),
            )
            .body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        for (k, v) in instructions.headers() {
            request = request.header(k, v);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    }

    async fn json(&self, op: &str, input: Value) -> (u16, Value) {
        let target = format!("BackupOnPremises_v20210101.{op}");
        let (status, body) = self
            .post(
                "/",
                &[
                    ("content-type", "application/x-amz-json-1.0"),
                    ("x-amz-target", &target),
                ],
                serde_json::to_vec(&input).unwrap(),
            )
            .await;
        (status, serde_json::from_slice(&body).unwrap())
    }

    async fn admin(&self, path: &str, input: Value) -> (u16, Value) {
        let (status, body) = self
            .post(
                path,
                &[("content-type", "application/json")],
                serde_json::to_vec(&input).unwrap(),
            )
            .await;
        (status, serde_json::from_slice(&body).unwrap())
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn vms_recorded_by_a_sync_are_listed_paged_filtered_and_detailed() {
    let server = start().await;
    let (status, hv) = server
        .json(
            "ImportHypervisorConfiguration",
            json!({"Name": "vc1", "Host": "vc1.example.com", "Password": "pw"}),
        )
        .await;
    assert_eq!(status, 200, "{hv}");
    let hv = hv["HypervisorArn"].as_str().unwrap().to_owned();
    let (_, other) = server
        .json(
            "ImportHypervisorConfiguration",
            json!({"Name": "vc2", "Host": "vc2.example.com"}),
        )
        .await;
    let other = other["HypervisorArn"].as_str().unwrap().to_owned();

    let vms: Vec<Value> = (0..5)
        .map(|i| {
            json!({"InstanceUuid": format!("uuid-{i}"), "Name": format!("vm-{i}"),
                   "Path": "/dc1/vm/prod", "HostName": "esx1", "LastBackupDate": 1767225600,
                   "VmwareTags": [{"VmwareCategory": "env", "VmwareTagName": "prod"}]})
        })
        .collect();
    let (status, out) = server
        .admin(
            "/admin/virtual-machines",
            json!({"HypervisorArn": hv, "VirtualMachines": vms}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let (status, _) = server
        .admin(
            "/admin/virtual-machines",
            json!({"HypervisorArn": other, "VirtualMachines": [{"InstanceUuid": "x", "Name": "elsewhere"}]}),
        )
        .await;
    assert_eq!(status, 200);

    // Pages of 2 over this hypervisor's 5 VMs, ordered by ARN, none from the other hypervisor.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"HypervisorArn": hv, "MaxResults": 2});
        if let Some(t) = &token {
            input["NextToken"] = json!(t);
        }
        let (status, page) = server.json("ListVirtualMachines", input).await;
        assert_eq!(status, 200, "{page}");
        for vm in page["VirtualMachines"].as_array().unwrap() {
            assert_eq!(vm["HypervisorId"], json!(hv));
            assert_eq!(vm["LastBackupDate"], json!(1767225600));
            seen.push(vm["ResourceArn"].as_str().unwrap().to_owned());
        }
        match page.get("NextToken") {
            Some(t) => token = Some(t.as_str().unwrap().to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "VMs are listed in ARN order");
    let (_, all) = server.json("ListVirtualMachines", json!({})).await;
    assert_eq!(all["VirtualMachines"].as_array().unwrap().len(), 6);

    let (status, vm) = server
        .json("GetVirtualMachine", json!({"ResourceArn": seen[0]}))
        .await;
    assert_eq!(status, 200, "{vm}");
    assert_eq!(
        vm["VirtualMachine"]["VmwareTags"],
        json!([{"VmwareCategory": "env", "VmwareTagName": "prod"}])
    );
    assert_eq!(vm["VirtualMachine"]["Path"], json!("/dc1/vm/prod"));

    // VMs take tags like any resource, and go away with their hypervisor.
    let (status, _) = server
        .json(
            "TagResource",
            json!({"ResourceARN": seen[0], "Tags": [{"Key": "app", "Value": "db"}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .json("DeleteHypervisor", json!({"HypervisorArn": hv}))
        .await;
    assert_eq!(status, 200);
    let (status, err) = server
        .json("GetVirtualMachine", json!({"ResourceArn": seen[0]}))
        .await;
    assert_eq!(status, 404, "{err}");
    assert_eq!(err["__type"], json!("ResourceNotFoundException"));
    server.stop().await;
}

#[tokio::test]
async fn cbor_requests_get_cbor_answers_with_tagged_timestamps() {
    let server = start().await;
    let (status, key) = server.admin("/admin/activation-keys", json!({})).await;
    assert_eq!(status, 200);
    let mut body = Vec::new();
    ciborium::into_writer(
        &ciborium::Value::Map(vec![
            (
                "ActivationKey".into(),
                key["ActivationKey"].as_str().unwrap().into(),
            ),
            ("GatewayDisplayName".into(), "gw-cbor".into()),
            ("GatewayType".into(), "BACKUP_VM".into()),
        ]),
        &mut body,
    )
    .unwrap();
    let cbor = [
        ("content-type", "application/cbor"),
        ("smithy-protocol", "rpc-v2-cbor"),
    ];
    let (status, out) = server
        .post(
            "/service/BackupOnPremises_v20210101/operation/CreateGateway",
            &cbor,
            body,
        )
        .await;
    assert_eq!(status, 200);
    let out: ciborium::Value = ciborium::from_reader(out.as_slice()).unwrap();
    let arn = out.as_map().unwrap()[0].1.as_text().unwrap().to_owned();

    let mut body = Vec::new();
    ciborium::into_writer(
        &ciborium::Value::Map(vec![("GatewayArn".into(), arn.as_str().into())]),
        &mut body,
    )
    .unwrap();
    let (status, out) = server
        .post(
            "/service/BackupOnPremises_v20210101/operation/GetGateway",
            &cbor,
            body,
        )
        .await;
    assert_eq!(status, 200);
    let out: ciborium::Value = ciborium::from_reader(out.as_slice()).unwrap();
    let gateway = out.as_map().unwrap()[0].1.as_map().unwrap();
    let last_seen = gateway
        .iter()
        .find(|(k, _)| k.as_text() == Some("LastSeenTime"))
        .map(|(_, v)| v)
        .unwrap();
    assert!(
        matches!(last_seen, ciborium::Value::Tag(1, _)),
        "{last_seen:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn admin_paths_refuse_unsigned_callers() {
    let server = start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/admin/activation-keys", server.url))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["__type"], json!("AccessDeniedException"));
    let health = reqwest::get(format!("{}/health", server.url))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    server.stop().await;
}

/// A REST-JSON service signed as `vaults-test` that answers with what it was given.
struct Vaults;

impl ServiceHandler for Vaults {
    fn call<'a>(&'a self, operation: &'a str, input: Value) -> HandlerFuture<'a> {
        Box::pin(async move { Ok(json!({ "Operation": operation, "Input": input })) })
    }
}

fn vaults() -> AwsService {
    AwsService::new("Test vaults", "vaults-test", Arc::new(Vaults))
        .protocol(Protocol::RestJson)
        .rest_operation(
            "PUT",
            "/test-vaults/{BackupVaultName}",
            "CreateBackupVault",
            None,
        )
        .unwrap()
        .body_limit("CreateBackupVault", 64)
}

#[tokio::test]
async fn a_second_service_is_reached_by_its_rest_path_and_signed_with_its_own_name() {
    let server = start_with(vec![vaults()]).await;
    let json_type = [("content-type", "application/json")];
    let (status, body) = server
        .send(
            "PUT",
            "/test-vaults/vault%201",
            "vaults-test",
            &json_type,
            br#"{"EncryptionKeyArn":"k"}"#.to_vec(),
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["Operation"], "CreateBackupVault");
    assert_eq!(body["Input"]["BackupVaultName"], "vault 1");
    assert_eq!(body["Input"]["EncryptionKeyArn"], "k");

    // Signed for the other service: refused, naming the signing name this path needs.
    let (status, body) = server
        .send(
            "PUT",
            "/test-vaults/v",
            "backup-gateway",
            &json_type,
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(status, 403);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("'vaults-test', not 'backup-gateway'"),
        "{text}"
    );

    // The Backup Gateway API is still there beside it.
    let (status, _) = server.json("ListGateways", json!({})).await;
    assert_eq!(status, 200);
    // And a path no service serves is 404.
    let (status, _) = server
        .send("GET", "/test-vaults/v", "vaults-test", &[], Vec::new())
        .await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn each_operation_refuses_bodies_over_its_own_limit_with_413() {
    let server = start_with(vec![vaults()]).await;
    // 64 bytes for this operation.
    let body = format!(r#"{{"EncryptionKeyArn":"{}"}}"#, "k".repeat(60));
    let (status, answer) = server
        .send(
            "PUT",
            "/test-vaults/v",
            "vaults-test",
            &[("content-type", "application/json")],
            body.into_bytes(),
        )
        .await;
    assert_eq!(status, 413);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("64 bytes"), "{text}");
    assert!(text.contains("RequestEntityTooLargeException"), "{text}");

    // The Backup Gateway API keeps 1 MiB: just under passes the limit, just over does not.
    let padding = |n: usize| format!(r#"{{"NextToken":"{}"}}"#, "a".repeat(n));
    let over = padding(DEFAULT_BODY_LIMIT);
    let (status, answer) = server
        .post(
            "/",
            &[
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amz-target", "BackupOnPremises_v20210101.ListGateways"),
            ],
            over.into_bytes(),
        )
        .await;
    assert_eq!(status, 413);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.contains(&format!("{DEFAULT_BODY_LIMIT} bytes")),
        "{text}"
    );
    let under = padding(DEFAULT_BODY_LIMIT - 100);
    let (status, answer) = server
        .post(
            "/",
            &[
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amz-target", "BackupOnPremises_v20210101.ListGateways"),
            ],
            under.into_bytes(),
        )
        .await;
    assert_ne!(status, 413, "{}", String::from_utf8_lossy(&answer));
    server.stop().await;
}
