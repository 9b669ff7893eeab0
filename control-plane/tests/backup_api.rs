//! The AWS Backup API driven by the unmodified aws-cli and boto3, against a server in this
//! process, with a gateway played by the test: it takes the BACKUP_VM and RESTORE_VM commands
//! from its long-poll and speaks the gateway protocol (SigV4-signed chunk uploads, progress,
//! completion) as `bgw-agent` does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bgw_cloud::clock::SystemClock;
use bgw_cloud::config::{ServeConfig, TlsMode};
use bgw_cloud::gateway::GatewayHub;
use bgw_cloud::store::{GatewayAgent, GatewayCredential};
use bgw_protocol::backup::{
    chunk_path, paths, AgentJobState, ChunkHash, DiskManifest, JobComplete, JobOutcome,
    JobProgress, MissingChunks, MissingChunksRequest, RAW_LENGTH_HEADER,
};
use bgw_protocol::commands::{CommandBatch, CommandKind, CommandPoll};
use serde_json::{json, Value};

const REGION: &str = "us-east-1";
const GW_KEY: &str = "AKIDGATEWAYTEST00001";
const GW_SECRET: &str = "gateway-secret-for-the-backup-api-test";

fn venv() -> PathBuf {
    std::env::var_os("BGW_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv"))
}

/// The server, its URL and data directory, and an HTTP client for the gateway side.
struct Cloud {
    url: String,
    data: PathBuf,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Cloud {
    async fn start() -> (Cloud, Arc<bgw_cloud::server::AppState>) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut config = ServeConfig::new("127.0.0.1:0", &data);
        config.tls = TlsMode::PlainHttp;
        let hub = GatewayHub::default();
        let server = bgw_cloud::server::bind_with(config, Arc::new(SystemClock), Arc::new(hub))
            .await
            .unwrap();
        let url = server.url();
        let state = server.state();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        let cloud = Cloud {
            url,
            data,
            http: reqwest::Client::new(),
            stop: Some(tx),
            _dir: dir,
        };
        (cloud, state)
    }

    /// Runs `aws SERVICE ARGS…` as a user would; returns the JSON output or the error text.
    async fn aws(&self, service: &str, args: &[&str]) -> Result<Value, String> {
        let aws = venv().join("bin/aws");
        assert!(
            aws.exists(),
            "{} not found: run scripts/test, which installs the AWS client venvs (or set BGW_VENV)",
            aws.display()
        );
        let output = tokio::process::Command::new(aws)
            .args([
                "--region",
                REGION,
                "--endpoint-url",
                &self.url,
                "--output",
                "json",
            ])
            .arg(service)
            .args(args)
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.data.join("admin-credentials"),
            )
            .env("AWS_CONFIG_FILE", self.data.join("no-such-config"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .await
            .unwrap();
        if output.status.success() {
            let out = String::from_utf8_lossy(&output.stdout);
            Ok(if out.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&out).unwrap()
            })
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    async fn backup(&self, args: &[&str]) -> Value {
        self.aws("backup", args)
            .await
            .unwrap_or_else(|e| panic!("aws backup {}: {e}", args[0]))
    }

    /// A gateway protocol request signed with the gateway's key.
    async fn gateway(
        &self,
        method: &str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let uri = format!("{}{path_and_query}", self.url);
        let host = self.url.trim_start_matches("http://").to_owned();
        let mut headers: Vec<(&str, &str)> = vec![("host", host.as_str())];
        headers.extend_from_slice(extra);
        let signed = bgw_protocol::sigv4::sign_request(
            method,
            &uri,
            &headers,
            &body,
            GW_KEY,
            GW_SECRET,
            REGION,
            SystemTime::now(),
        )
        .unwrap();
        let mut request = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                &uri,
            )
            .body(body);
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        for (k, v) in &signed {
            request = request.header(*k, v.as_str());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    }

    async fn gateway_json<T: serde::de::DeserializeOwned>(&self, path: &str, body: Value) -> T {
        let (status, raw) = self
            .gateway(
                "POST",
                path,
                &[("content-type", "application/json")],
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&raw));
        serde_json::from_slice(&raw).unwrap()
    }

    async fn poll(&self) -> Vec<CommandKind> {
        let batch: CommandBatch = self
            .gateway_json(
                bgw_protocol::paths::COMMANDS_POLL,
                serde_json::to_value(CommandPoll { wait_seconds: 2 }).unwrap(),
            )
            .await;
        batch.commands.into_iter().map(|c| c.kind).collect()
    }

    async fn upload(
        &self,
        job_id: &str,
        hash: &ChunkHash,
        raw: &[u8],
        frame: &[u8],
    ) -> (u16, Value) {
        let length = raw.len().to_string();
        let (status, body) = self
            .gateway(
                "PUT",
                &format!("{}?jobId={job_id}", chunk_path(hash)),
                &[(RAW_LENGTH_HEADER, &length)],
                frame.to_vec(),
            )
            .await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// A chunk upload whose body is left out of the signature (`UNSIGNED-PAYLOAD`).
    async fn upload_unsigned(
        &self,
        job_id: &str,
        hash: &ChunkHash,
        raw: &[u8],
        frame: &[u8],
    ) -> u16 {
        let uri = format!("{}{}?jobId={job_id}", self.url, chunk_path(hash));
        let host = self.url.trim_start_matches("http://").to_owned();
        let length = raw.len().to_string();
        let headers = [
            ("host", host.as_str()),
            (RAW_LENGTH_HEADER, length.as_str()),
        ];
        let signed = bgw_sigv4::sign_request(
            &bgw_sigv4::OutgoingRequest {
                method: "PUT",
                uri: &uri,
                headers: &headers,
                payload: bgw_sigv4::Payload::Unsigned,
            },
            &bgw_sigv4::Scope {
                service: bgw_protocol::sigv4::SERVICE,
                region: REGION,
            },
            &bgw_sigv4::Key {
                access_key_id: GW_KEY,
                secret_access_key: GW_SECRET,
            },
            SystemTime::now(),
        )
        .unwrap();
        let mut request = self
            .http
            .put(&uri)
            .header(RAW_LENGTH_HEADER, length.as_str())
            .body(frame.to_vec());
        for (k, v) in &signed {
            request = request.header(*k, v.as_str());
        }
        request.send().await.unwrap().status().as_u16()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
    }
}

/// Admin-side set-up through the Backup Gateway API and the admin paths: a gateway, a
/// hypervisor it serves, one VM; the gateway's key as activation would store it.
async fn gateway_with_a_vm(cloud: &Cloud, state: &bgw_cloud::server::AppState) -> String {
    let key = cloud
        .signed_admin("/admin/activation-keys", json!({}))
        .await["ActivationKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let gw = cloud
        .aws(
            "backup-gateway",
            &[
                "create-gateway",
                "--activation-key",
                &key,
                "--gateway-display-name",
                "gw-1",
                "--gateway-type",
                "BACKUP_VM",
            ],
        )
        .await
        .unwrap()["GatewayArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let hv = cloud
        .aws(
            "backup-gateway",
            &[
                "import-hypervisor-configuration",
                "--name",
                "vc-1",
                "--host",
                "vcenter.example.com",
            ],
        )
        .await
        .unwrap()["HypervisorArn"]
        .as_str()
        .unwrap()
        .to_owned();
    cloud
        .aws(
            "backup-gateway",
            &[
                "associate-gateway-to-server",
                "--gateway-arn",
                &gw,
                "--server-arn",
                &hv,
            ],
        )
        .await
        .unwrap();
    let store = &state.api.store;
    store
        .create_gateway_agent(&GatewayAgent {
            gateway_arn: gw.clone(),
            agent_id: "agent-1".into(),
            access_key_id: GW_KEY.into(),
            previous_access_key_id: None,
            config_version: 0,
            config_hash: String::new(),
            heartbeat_interval_secs: 60,
        })
        .unwrap();
    store
        .put_gateway_credential(
            GW_KEY,
            &GatewayCredential {
                gateway_arn: gw.clone(),
                secret_access_key: bgw_cloud::secret::Secret::new(GW_SECRET),
                created: chrono::Utc::now(),
            },
        )
        .unwrap();
    let vms = cloud
        .signed_admin(
            "/admin/virtual-machines",
            json!({"HypervisorArn": hv, "VirtualMachines": [
                {"InstanceUuid": "uuid-1", "Name": "web-1", "Path": "/DC0/vm/prod/web-1", "HostName": "esx-1"}]}),
        )
        .await;
    vms["VirtualMachines"][0]["ResourceArn"]
        .as_str()
        .unwrap_or_else(|| panic!("VM ARN in {vms}"))
        .to_owned()
}

impl Cloud {
    /// An admin path, signed with the admin key through botocore (as the Python suites do).
    async fn signed_admin(&self, path: &str, body: Value) -> Value {
        let script = r#"
import json, sys, urllib.request
import botocore.auth, botocore.awsrequest, boto3
url, body = sys.argv[1], sys.argv[2].encode()
creds = boto3.session.Session(region_name="us-east-1").get_credentials().get_frozen_credentials()
req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
botocore.auth.SigV4Auth(creds, "backup-gateway", "us-east-1").add_auth(req)
p = req.prepare()
with urllib.request.urlopen(urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers))) as r:
    print(r.read().decode())
"#;
        let output = tokio::process::Command::new(venv().join("bin/python"))
            .args([
                "-c",
                script,
                &format!("{}{path}", self.url),
                &body.to_string(),
            ])
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.data.join("admin-credentials"),
            )
            .env("AWS_CONFIG_FILE", self.data.join("no-such-config"))
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

fn zstd_frame(raw: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(raw, 1).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_and_a_restore_driven_by_aws_cli_and_a_gateway() {
    let (cloud, state) = Cloud::start().await;
    let vm = gateway_with_a_vm(&cloud, &state).await;

    cloud
        .backup(&["create-backup-vault", "--backup-vault-name", "vault-1"])
        .await;
    let err = cloud
        .aws(
            "backup",
            &["create-backup-vault", "--backup-vault-name", "vault-1"],
        )
        .await
        .unwrap_err();
    assert!(err.contains("AlreadyExistsException"), "{err}");
    let started = cloud
        .backup(&[
            "start-backup-job",
            "--backup-vault-name",
            "vault-1",
            "--resource-arn",
            &vm,
            "--iam-role-arn",
            "arn:aws:iam::123456789012:role/backup",
            "--idempotency-token",
            "tok-1",
        ])
        .await;
    let job_id = started["BackupJobId"].as_str().unwrap().to_owned();
    let again = cloud
        .backup(&[
            "start-backup-job",
            "--backup-vault-name",
            "vault-1",
            "--resource-arn",
            &vm,
            "--iam-role-arn",
            "arn:aws:iam::123456789012:role/backup",
            "--idempotency-token",
            "tok-1",
        ])
        .await;
    assert_eq!(
        again["BackupJobId"], started["BackupJobId"],
        "idempotency token honoured"
    );

    // The gateway receives the job.
    let commands = cloud.poll().await;
    let Some(CommandKind::BackupVm(cmd)) = commands.into_iter().next() else {
        panic!("BACKUP_VM expected");
    };
    assert_eq!(cmd.job_id, job_id);
    assert_eq!(cmd.instance_uuid, "uuid-1");
    let _: Value = cloud
        .gateway_json(
            paths::JOBS_PROGRESS,
            serde_json::to_value(JobProgress {
                job_id: job_id.clone(),
                state: AgentJobState::Running,
                percent_done: 5.0,
                bytes_read: 0,
                backup_size_bytes: Some(3 * 1024 * 1024),
            })
            .unwrap(),
        )
        .await;

    // A 3 MiB disk in 1 MiB chunks, one of them sent corrupted first.
    let chunk_size = 1024 * 1024;
    let disk: Vec<u8> = (0..3 * chunk_size).map(|i| (i % 251) as u8).collect();
    let pieces: Vec<&[u8]> = disk.chunks(chunk_size).collect();
    let hashes: Vec<ChunkHash> = pieces.iter().map(|p| ChunkHash::of(p)).collect();
    let missing: MissingChunks = cloud
        .gateway_json(
            paths::CHUNKS_MISSING,
            serde_json::to_value(MissingChunksRequest {
                job_id: job_id.clone(),
                hashes: hashes.clone(),
            })
            .unwrap(),
        )
        .await;
    assert_eq!(missing.missing, hashes);
    // Over plain HTTP the body's hash must be signed (UNSIGNED-PAYLOAD is for TLS only).
    let status = cloud
        .upload_unsigned(&job_id, &hashes[0], pieces[0], &zstd_frame(pieces[0]))
        .await;
    assert_eq!(status, 403, "UNSIGNED-PAYLOAD over plain HTTP is refused");
    let (status, body) = cloud
        .upload(&job_id, &hashes[0], pieces[0], &zstd_frame(pieces[1]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "ChunkCorrupt");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains(hashes[0].as_str()));
    let mut sent = 0;
    for (piece, hash) in pieces.iter().zip(&hashes) {
        let frame = zstd_frame(piece);
        sent += frame.len();
        let (status, body) = cloud.upload(&job_id, hash, piece, &frame).await;
        assert_eq!(status, 200, "{body}");
    }
    let running = cloud
        .backup(&["describe-backup-job", "--backup-job-id", &job_id])
        .await;
    assert_eq!(running["State"], "RUNNING");
    assert!(
        running["BytesTransferred"].as_u64().unwrap() >= sent as u64,
        "bytes received so far: {running}"
    );
    let listed = cloud
        .backup(&["list-backup-jobs", "--by-state", "RUNNING"])
        .await;
    assert_eq!(listed["BackupJobs"].as_array().unwrap().len(), 1);
    let listed = cloud
        .backup(&["list-backup-jobs", "--by-state", "COMPLETED"])
        .await;
    assert_eq!(listed["BackupJobs"].as_array().unwrap().len(), 0);

    let manifest = DiskManifest {
        key: "2000".into(),
        label: "Hard disk 1".into(),
        capacity_bytes: disk.len() as u64,
        chunk_size: chunk_size as u64,
        chunks: hashes.clone(),
        change_id: Some("52 aa/1".into()),
    };
    let _: Value = cloud
        .gateway_json(
            paths::JOBS_COMPLETE,
            serde_json::to_value(JobComplete {
                job_id: job_id.clone(),
                outcome: JobOutcome::Succeeded {
                    disks: vec![manifest.clone()],
                    vm_name: Some("web-1".into()),
                    created_instance_uuid: None,
                },
            })
            .unwrap(),
        )
        .await;
    let done = cloud
        .backup(&["describe-backup-job", "--backup-job-id", &job_id])
        .await;
    assert_eq!(done["State"], "COMPLETED");
    assert_eq!(done["PercentDone"], "100.0");
    assert_eq!(done["BackupSizeInBytes"], disk.len() as u64);
    assert!(done["CompletionDate"].is_number());
    let rp = done["RecoveryPointArn"].as_str().unwrap().to_owned();
    let points = cloud
        .backup(&[
            "list-recovery-points-by-backup-vault",
            "--backup-vault-name",
            "vault-1",
        ])
        .await;
    assert_eq!(points["RecoveryPoints"][0]["RecoveryPointArn"], rp.as_str());
    let points = cloud
        .backup(&["list-recovery-points-by-resource", "--resource-arn", &vm])
        .await;
    assert_eq!(points["RecoveryPoints"].as_array().unwrap().len(), 1);
    let described = cloud
        .backup(&[
            "describe-recovery-point",
            "--backup-vault-name",
            "vault-1",
            "--recovery-point-arn",
            &rp,
        ])
        .await;
    assert_eq!(described["Status"], "COMPLETED");
    assert_eq!(described["ResourceName"], "web-1");
    let vm_now = cloud
        .aws(
            "backup-gateway",
            &["get-virtual-machine", "--resource-arn", &vm],
        )
        .await
        .unwrap();
    assert!(
        vm_now["VirtualMachine"]["LastBackupDate"].is_number(),
        "{vm_now}"
    );
    let err = cloud
        .aws(
            "backup",
            &["delete-backup-vault", "--backup-vault-name", "vault-1"],
        )
        .await
        .unwrap_err();
    assert!(err.contains("InvalidRequestException"), "{err}");

    // Restore.
    let metadata = cloud
        .backup(&[
            "get-recovery-point-restore-metadata",
            "--backup-vault-name",
            "vault-1",
            "--recovery-point-arn",
            &rp,
        ])
        .await;
    assert_eq!(metadata["RestoreMetadata"]["vmName"], "web-1");
    assert_eq!(metadata["RestoreMetadata"]["folder"], "/DC0/vm/prod");
    let err = cloud
        .aws(
            "backup",
            &[
                "start-restore-job",
                "--recovery-point-arn",
                &rp,
                "--metadata",
                "vmName=copy",
            ],
        )
        .await
        .unwrap_err();
    assert!(
        err.contains("MissingParameterValueException") && err.contains("datastore"),
        "{err}"
    );
    let restore = cloud
        .backup(&[
            "start-restore-job",
            "--recovery-point-arn",
            &rp,
            "--metadata",
            "vmName=web-1-copy,datastore=LocalDS_0,host=esx-1,powerOn=false",
        ])
        .await;
    let restore_id = restore["RestoreJobId"].as_str().unwrap().to_owned();
    let Some(CommandKind::RestoreVm(cmd)) = cloud.poll().await.into_iter().next() else {
        panic!("RESTORE_VM expected");
    };
    assert_eq!(cmd.disks, vec![manifest]);
    let mut restored = Vec::new();
    for hash in &cmd.disks[0].chunks {
        let (status, frame) = cloud
            .gateway("GET", &chunk_path(hash), &[], Vec::new())
            .await;
        assert_eq!(status, 200);
        restored.extend(zstd::bulk::decompress(&frame, chunk_size).unwrap());
    }
    assert!(
        restored == disk,
        "the restored disk equals the source bit for bit"
    );
    let _: Value = cloud
        .gateway_json(
            paths::JOBS_COMPLETE,
            serde_json::to_value(JobComplete {
                job_id: restore_id.clone(),
                outcome: JobOutcome::Succeeded {
                    disks: vec![],
                    vm_name: Some("web-1-copy".into()),
                    created_instance_uuid: Some("uuid-restored".into()),
                },
            })
            .unwrap(),
        )
        .await;
    let described = cloud
        .backup(&["describe-restore-job", "--restore-job-id", &restore_id])
        .await;
    assert_eq!(described["Status"], "COMPLETED");
    assert!(described["CreatedResourceArn"]
        .as_str()
        .unwrap()
        .contains(":vm/vm-"));
    let listed = cloud
        .backup(&["list-restore-jobs", "--by-status", "COMPLETED"])
        .await;
    assert_eq!(listed["RestoreJobs"].as_array().unwrap().len(), 1);

    // Deleting the recovery point empties the vault. Its chunks were written less than a
    // minute ago, so the sweep the deletion starts keeps them (freeing is covered by the
    // service's tests).
    cloud
        .backup(&[
            "delete-recovery-point",
            "--backup-vault-name",
            "vault-1",
            "--recovery-point-arn",
            &rp,
        ])
        .await;
    cloud
        .backup(&["delete-backup-vault", "--backup-vault-name", "vault-1"])
        .await;
    assert_eq!(stored_chunks(&cloud.data.join("chunks")), 3);
    cloud.stop().await;
}

/// Chunk files under a directory chunk store.
fn stored_chunks(root: &Path) -> usize {
    let mut n = 0;
    for a in std::fs::read_dir(root).unwrap().flatten() {
        if a.file_name() == "tmp" {
            continue;
        }
        for b in std::fs::read_dir(a.path()).unwrap().flatten() {
            n += std::fs::read_dir(b.path()).unwrap().count();
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_sees_the_models_errors_and_paging() {
    let (cloud, _state) = Cloud::start().await;
    let script = r#"
import os, sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
c = boto3.session.Session(region_name="us-east-1").client(
    "backup", endpoint_url=sys.argv[1], config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))
def code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"] + ": " + e.response["Error"]["Message"]
    return "no error"
for i in range(5):
    c.create_backup_vault(BackupVaultName="v-%d" % i)
page1 = c.list_backup_vaults(MaxResults=2)
page2 = c.list_backup_vaults(MaxResults=2, NextToken=page1["NextToken"])
names = [v["BackupVaultName"] for v in page1["BackupVaultList"] + page2["BackupVaultList"]]
assert names == ["v-0", "v-1", "v-2", "v-3"], names
allv = [v["BackupVaultName"] for p in c.get_paginator("list_backup_vaults").paginate(PaginationConfig={"PageSize": 2}) for v in p["BackupVaultList"]]
assert len(allv) == 5, allv
r = code(lambda: c.create_backup_vault(BackupVaultName="bad name!"))
assert r.startswith("InvalidParameterValueException") and "BackupVaultName" in r, r
r = code(lambda: c.describe_backup_job(BackupJobId="nope"))
assert r.startswith("ResourceNotFoundException"), r
r = code(lambda: c.start_backup_job(BackupVaultName="v-0", ResourceArn="arn:aws:ec2:us-east-1:123456789012:instance/i-1", IamRoleArn="arn:aws:iam::123456789012:role/r"))
assert r.startswith("InvalidParameterValueException") and "virtual machine" in r, r
r = code(lambda: c.start_backup_job(BackupVaultName="v-0", ResourceArn="arn:aws:backup-gateway:us-east-1:123456789012:vm/vm-0000000000000000"))
assert r.startswith("MissingParameterValueException") and "IamRoleArn" in r, r
r = code(lambda: c.list_backup_jobs(ByState="SLEEPING"))
assert r.startswith("InvalidParameterValueException") and "ByState" in r, r
r = code(lambda: c.list_backup_vaults(NextToken="forged"))
assert r.startswith("InvalidParameterValueException") and "NextToken" in r, r
jobs = c.list_backup_jobs(ByCreatedAfter="2020-01-01T00:00:00Z", ByResourceType="VirtualMachine")
assert jobs["BackupJobs"] == [], jobs
print("ok")
"#;
    let output = tokio::process::Command::new(venv().join("bin/python"))
        .args(["-c", script, &cloud.url])
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            cloud.data.join("admin-credentials"),
        )
        .env("AWS_CONFIG_FILE", cloud.data.join("no-such-config"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("ok"),
        "boto3 checks failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    cloud.stop().await;
}
