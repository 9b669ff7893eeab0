//! Shared by the backup tests: a gateway with the simulator associated and one VM whose disk
//! holds real data, driven with `aws backup …`.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use bgw_tests::aws::AwsCli;
use bgw_tests::latency_proxy::LatencyProxy;
use bgw_tests::vcsim::VcsimOptions;
use bgw_tests::vcsim_disks::{self, DiskImage, TestVm};
use bgw_tests::vcsim_soap::SoapSession;
use serde_json::Value;

use crate::sync_support::Setup;

pub const ROLE: &str = "arn:aws:iam::123456789012:role/backup";
pub const MIB: usize = 1 << 20;

pub struct BackupSetup {
    pub s: Setup,
    pub hypervisor_arn: String,
    pub vm: TestVm,
    pub vm_arn: String,
    pub image: DiskImage,
    pub vault: String,
    /// Between the agent and the simulator, when started with [`BackupSetup::start_via_proxy`].
    pub proxy: Option<LatencyProxy>,
}

impl BackupSetup {
    /// vcsim with one extra VM `backup-src` whose `size`-byte disk holds a patterned image,
    /// associated with an activated gateway, and a backup vault.
    pub async fn start(size: usize) -> BackupSetup {
        Self::start_with(size, false).await
    }

    /// As [`BackupSetup::start`], but the agent reaches the simulator through a proxy that a
    /// test can cut ([`LatencyProxy::cut`]) to make vCenter unreachable.
    pub async fn start_via_proxy(size: usize) -> BackupSetup {
        Self::start_with(size, true).await
    }

    async fn start_with(size: usize, via_proxy: bool) -> BackupSetup {
        let options = VcsimOptions {
            clusters: 1,
            hosts_per_cluster: 1,
            standalone_hosts: 0,
            vms_per_pool: 1,
            ..Default::default()
        };
        let s = Setup::start(options).await;
        let mut soap = SoapSession::login(&s.vcsim).await.unwrap();
        let vm = vcsim_disks::create_vm(&mut soap, "backup-src", size as u64)
            .await
            .unwrap();
        let image = DiskImage::patterned(size, 11);
        vcsim_disks::put_flat_disk(&s.vcsim, &vm.disk_file, &image.data)
            .await
            .unwrap();
        let proxy = if via_proxy {
            Some(LatencyProxy::start(s.vcsim.addr()).await.unwrap())
        } else {
            None
        };
        let hypervisor_arn = match &proxy {
            Some(p) => s.import_and_associate_at(&p.host_port()),
            None => s.import_and_associate(),
        };
        let vm_arn = wait_for(
            Duration::from_secs(60),
            "the VM in the cloud's inventory",
            || {
                s.vms(&hypervisor_arn)
                    .iter()
                    .find(|v| v["Name"] == "backup-src")
                    .and_then(|v| v["ResourceArn"].as_str().map(str::to_string))
            },
        )
        .await;
        let vault = "vault-1".to_string();
        backup(&s, &["create-backup-vault", "--backup-vault-name", &vault]);
        BackupSetup {
            s,
            hypervisor_arn,
            vm,
            vm_arn,
            image,
            vault,
            proxy,
        }
    }

    pub fn start_backup(&self) -> String {
        let out = backup(
            &self.s,
            &[
                "start-backup-job",
                "--backup-vault-name",
                &self.vault,
                "--resource-arn",
                &self.vm_arn,
                "--iam-role-arn",
                ROLE,
            ],
        );
        out["BackupJobId"].as_str().unwrap().to_string()
    }

    pub fn describe(&self, job: &str) -> Value {
        backup(&self.s, &["describe-backup-job", "--backup-job-id", job])
    }

    /// Waits for the job to reach a final state and returns its description.
    pub async fn wait_done(&self, job: &str, timeout: Duration) -> Value {
        wait_for(timeout, "the backup job to end", || {
            let d = self.describe(job);
            matches!(
                d["State"].as_str(),
                Some("COMPLETED" | "FAILED" | "ABORTED" | "EXPIRED" | "PARTIAL")
            )
            .then_some(d)
        })
        .await
    }

    /// Writes the image to the VM's disk again (after changing it).
    pub async fn rewrite_disk(&self) {
        vcsim_disks::put_flat_disk(&self.s.vcsim, &self.vm.disk_file, &self.image.data)
            .await
            .unwrap();
    }

    /// Restores `recovery_point` as a new VM `name` and returns the restored disk's bytes.
    pub async fn restore_disk(&self, recovery_point: &str, name: &str) -> Vec<u8> {
        let metadata = format!("vmName={name},datastore=LocalDS_0,cluster=DC0_C0,powerOn=true");
        let restore = backup(
            &self.s,
            &[
                "start-restore-job",
                "--recovery-point-arn",
                recovery_point,
                "--iam-role-arn",
                ROLE,
                "--metadata",
                &metadata,
            ],
        );
        let restore = restore["RestoreJobId"].as_str().unwrap().to_string();
        let done = wait_for(Duration::from_secs(120), "the restore to end", || {
            let d = backup(
                &self.s,
                &["describe-restore-job", "--restore-job-id", &restore],
            );
            matches!(
                d["Status"].as_str(),
                Some("COMPLETED" | "FAILED" | "ABORTED")
            )
            .then_some(d)
        })
        .await;
        assert_eq!(done["Status"], "COMPLETED", "{done:#}");

        let mut soap = SoapSession::login(&self.s.vcsim).await.unwrap();
        let vms = soap.list_vms().await.unwrap();
        let restored = vms
            .iter()
            .find(|v| v.name == name)
            .expect("the restored VM exists");
        assert_eq!(restored.power_state, "poweredOn");
        let (_, file) = vcsim_disks::first_disk(&mut soap, &restored.moref)
            .await
            .unwrap();
        vcsim_disks::get_flat_disk(&self.s.vcsim, &file)
            .await
            .unwrap()
    }

    /// Asserts that `data` is the source image, naming the first byte that differs.
    pub fn assert_is_source(&self, data: &[u8]) {
        assert_eq!(data.len(), self.image.data.len());
        assert!(
            data == self.image.data,
            "the restored disk differs from the source at byte {:?}",
            data.iter().zip(&self.image.data).position(|(x, y)| x != y)
        );
    }

    pub async fn snapshots(&self) -> Vec<String> {
        let mut soap = SoapSession::login(&self.s.vcsim).await.unwrap();
        vcsim_disks::snapshot_names(&mut soap, &self.vm.moref)
            .await
            .unwrap()
    }

    /// Sets a bandwidth limit for the whole week and waits until the agent applies it.
    pub async fn limit(&self, bits_per_sec: u64) {
        let intervals = format!(
            r#"[{{"DaysOfWeek":[0,1,2,3,4,5,6],"StartHourOfDay":0,"StartMinuteOfHour":0,"EndHourOfDay":23,"EndMinuteOfHour":59,"AverageUploadRateLimitInBitsPerSec":{bits_per_sec}}}]"#
        );
        self.s.aws(&[
            "put-bandwidth-rate-limit-schedule",
            "--gateway-arn",
            &self.s.gateway_arn,
            "--bandwidth-rate-limit-intervals",
            &intervals,
        ]);
        self.s
            .wait_status("the limit at the agent", |s| {
                (s["bandwidth"]["current_limit_bps"] == bits_per_sec).then_some(())
            })
            .await;
    }

    /// Starts a backup and waits until it runs and the cloud has received more than
    /// `min_bytes`; returns the job id and the bytes received by then.
    pub async fn start_backup_uploading(&self, min_bytes: u64) -> (String, u64) {
        let job = self.start_backup();
        let sent = wait_for(Duration::from_secs(60), "the backup to upload", || {
            let d = self.describe(&job);
            (d["State"] == "RUNNING" && bytes_transferred(&d) > min_bytes)
                .then(|| bytes_transferred(&d))
        })
        .await;
        (job, sent)
    }
}

/// `aws backup <args>` as JSON; fails the test with aws-cli's message.
pub fn backup(s: &Setup, args: &[&str]) -> Value {
    let r = AwsCli::new(&s.cloud)
        .service("backup")
        .run(args)
        .expect("run aws-cli");
    assert!(r.success(), "aws backup {args:?} failed: {}", r.stderr());
    r.json().unwrap_or(Value::Null)
}

/// Polls `probe` every 200 ms until it returns `Some`, for at most `timeout`.
pub async fn wait_for<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn bytes_transferred(d: &Value) -> u64 {
    d["BytesTransferred"].as_u64().unwrap_or(0)
}
