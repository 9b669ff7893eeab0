//! Backup throughput benchmark, side by side in one run: an unthrottled backup of a disk on
//! vcsim's datastore into bgw-cloud on loopback (real processes, driven by boto3), `restic
//! backup` of the same flat file into a fresh local repository, and `zstd -1` of it to disk.
//! Then an incremental backup of the unchanged disk, the agent's memory during a backup, and
//! where the backup's time goes (the agent's per-stage totals).
//!
//! ```text
//! cargo build --release -p bgw-agent -p bgw-cloud
//! cargo run --release -p bgw-agent --example backup_bench [-- SIZE_MIB RUNS]
//! ```
//!
//! Defaults: a 1024 MiB disk, 3 runs. Each run writes new content (a different seed), so every
//! backup is a full one for the cloud and restic alike.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgw_tests::aws::{python, AwsCli, Venv};
use bgw_tests::cloud::{Cloud, CloudOptions};
use bgw_tests::paths::workspace_binary;
use bgw_tests::process::ChildProcess;
use bgw_tests::vcsim::{Vcsim, VcsimOptions};
use bgw_tests::vcsim_disks::{self, DiskImage};
use bgw_tests::vcsim_soap::SoapSession;

type BoxError = Box<dyn std::error::Error>;
const MIB: f64 = 1024.0 * 1024.0;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU ticks of `/proc/PID/stat` (`stat`'s text): user + system of the process itself, or with
/// `children`, of its waited-for children.
fn cpu_ticks(stat: &str, children: bool) -> u64 {
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let first = if children { 13 } else { 11 };
    f.get(first).copied().unwrap_or(0) + f.get(first + 1).copied().unwrap_or(0)
}

/// CPU seconds (user + system) used so far by the processes named `comm`.
fn cpu_secs(comm: &str) -> f64 {
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let p = entry.path();
        if !std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == comm) {
            continue;
        }
        ticks += cpu_ticks(
            &std::fs::read_to_string(p.join("stat")).unwrap_or_default(),
            false,
        );
    }
    ticks as f64 / 100.0
}

fn cpu_all() -> [f64; 3] {
    [
        cpu_secs("bgw-agent"),
        cpu_secs("bgw-cloud"),
        cpu_secs("vcsim"),
    ]
}

fn aws(cloud: &Cloud, service: &str, args: &[&str]) -> Result<serde_json::Value, BoxError> {
    let r = AwsCli::new(cloud).service(service).run(args)?;
    if !r.success() {
        return Err(format!("aws {service} {args:?}: {}", r.stderr()).into());
    }
    Ok(r.json().unwrap_or(serde_json::Value::Null))
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

/// CPU seconds (user + system) of this process's waited-for children so far.
fn children_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    cpu_ticks(&stat, true) as f64 / 100.0
}

/// Runs `cmd` to its end: its wall time and the CPU seconds it used.
fn timed(mut cmd: Command) -> Result<(Duration, f64), BoxError> {
    let cpu = children_cpu_secs();
    let t = Instant::now();
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok((t.elapsed(), children_cpu_secs() - cpu))
}

/// Starts a backup with boto3 and waits for it. Returns the seconds from the job's
/// `CreationDate` to its `CompletionDate` (as the cloud recorded them, so the polling, every
/// 500 ms to leave the CPU to the backup, does not blur the figure) and the bytes transferred.
fn backup_once(cloud: &Cloud, vault: &str, vm_arn: &str) -> Result<(f64, u64), BoxError> {
    let script = format!(
        r#"
import boto3, json, time
c = boto3.client("backup")
j = c.start_backup_job(BackupVaultName="{vault}", ResourceArn="{vm_arn}", IamRoleArn="arn:aws:iam::123456789012:role/b")["BackupJobId"]
while True:
    d = c.describe_backup_job(BackupJobId=j)
    if d["State"] in ("COMPLETED", "FAILED", "ABORTED"):
        break
    time.sleep(0.5)
print(json.dumps({{"s": (d["CompletionDate"] - d["CreationDate"]).total_seconds(), "state": d["State"], "bytes": d.get("BytesTransferred", 0), "msg": d.get("StatusMessage", "")}}))
"#
    );
    let out = python(Venv::Cbor, cloud, &script)?;
    if !out.success() {
        return Err(format!("boto3: {}", out.stderr).into());
    }
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())?;
    if v["state"] != "COMPLETED" {
        return Err(format!("backup ended {}: {}", v["state"], v["msg"]).into());
    }
    Ok((
        v["s"].as_f64().unwrap_or(0.0),
        v["bytes"].as_u64().unwrap_or(0),
    ))
}

/// The last `backup ended` line of the agent's log, as `key=value` pairs, and the wall time
/// of that job's data phase (from its first `backing up a disk` to `backup ended`).
fn stage_line(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let Some(end) = lines.iter().rposition(|l| l.contains("backup ended")) else {
        return String::new();
    };
    let start = lines[..end]
        .iter()
        .rposition(|l| l.contains("backup ended"))
        .map_or(0, |i| i + 1);
    let at = |l: &str| {
        l.split_whitespace()
            .next()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let data_phase = lines[start..end]
        .iter()
        .find(|l| l.contains("backing up a disk"))
        .and_then(|l| at(l))
        .zip(at(lines[end]))
        .map(|(a, b)| format!(" data_phase_ms={}", (b - a).num_milliseconds()))
        .unwrap_or_default();
    let keys = [
        "read=",
        "sent=",
        "read_ms=",
        "hash_ms=",
        "ask_ms=",
        "compress_ms=",
        "upload_ms=",
    ];
    let pairs: Vec<&str> = lines[end]
        .split_whitespace()
        .filter(|w| keys.iter().any(|k| w.starts_with(k)))
        .collect();
    format!("{}{data_phase}", pairs.join(" "))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let size_mib: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1024);
    let runs: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let size = size_mib << 20;
    // Examples live in `target/release/examples/`; the binaries one level up.
    if let Some(dir) = std::env::current_exe()?.parent().and_then(Path::parent) {
        for (var, bin) in [
            ("BGW_CLOUD_BIN", "bgw-cloud"),
            ("BGW_AGENT_BIN", "bgw-agent"),
        ] {
            if std::env::var_os(var).is_none() {
                std::env::set_var(var, dir.join(bin));
            }
        }
    }

    let vc = Vcsim::start(VcsimOptions {
        clusters: 1,
        hosts_per_cluster: 1,
        standalone_hosts: 0,
        vms_per_pool: 1,
        ..VcsimOptions::default()
    })?;
    let mut soap = SoapSession::login(&vc).await?;
    let vm = vcsim_disks::create_vm(&mut soap, "bench", size as u64).await?;

    let cloud = Cloud::start(CloudOptions::default())?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[cloud]\nendpoint = \"{}\"\nregion = \"{}\"\nca_file = \"{}\"\n\n[gateway]\n\
             state_dir = \"{}\"\ntimezone = \"UTC\"\nactivation_listen = \"127.0.0.1:0\"\n\
             heartbeat_interval = \"2s\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[metrics]\nlisten = \"off\"\n",
            cloud.endpoint(),
            cloud.region(),
            cloud.ca_file().display(),
            dir.path().join("state").display()
        ),
    )?;
    let mut cmd = Command::new(workspace_binary("bgw-agent", "BGW_AGENT_BIN")?);
    cmd.arg("run")
        .arg("--config")
        .arg(&config)
        .env("BGW_LOG", "info");
    let agent = ChildProcess::spawn("bgw-agent", cmd, dir.path())?;
    let pid = agent.id().ok_or("agent not running")?;
    let endpoints = dir.path().join("state/endpoints.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    let ep: serde_json::Value = loop {
        if let Some(v) = std::fs::read(&endpoints)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            break v;
        }
        if Instant::now() > deadline {
            return Err("agent did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let url = format!(
        "http://{}/?activationRegion={}&gatewayType=BACKUP_VM&no_redirect",
        ep["activation"].as_str().unwrap_or_default(),
        cloud.region()
    );
    let key = loop {
        let r = reqwest::get(&url).await?;
        if r.status().is_success() {
            break r.text().await?.trim().to_string();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let gw = aws(
        &cloud,
        "backup-gateway",
        &[
            "create-gateway",
            "--activation-key",
            &key,
            "--gateway-display-name",
            "bench",
            "--gateway-type",
            "BACKUP_VM",
        ],
    )?["GatewayArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let host = vc.host_port();
    let hv = aws(
        &cloud,
        "backup-gateway",
        &[
            "import-hypervisor-configuration",
            "--name",
            "bench",
            "--host",
            &host,
            "--username",
            vc.username(),
            "--password",
            vc.password(),
        ],
    )?["HypervisorArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    aws(
        &cloud,
        "backup-gateway",
        &[
            "associate-gateway-to-server",
            "--gateway-arn",
            &gw,
            "--server-arn",
            &hv,
        ],
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let vm_arn = loop {
        let vms = aws(
            &cloud,
            "backup-gateway",
            &["list-virtual-machines", "--hypervisor-arn", &hv],
        )?;
        if let Some(a) = vms["VirtualMachines"]
            .as_array()
            .and_then(|l| l.iter().find(|v| v["Name"] == "bench"))
            .and_then(|v| v["ResourceArn"].as_str())
        {
            break a.to_string();
        }
        if Instant::now() > deadline {
            return Err("the VM did not reach the cloud".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    aws(
        &cloud,
        "backup",
        &["create-backup-vault", "--backup-vault-name", "bench"],
    )?;
    let idle_rss = rss_kib(pid);
    println!(
        "disk {size_mib} MiB, {runs} runs; agent idle RSS {:.1} MiB",
        idle_rss as f64 / 1024.0
    );
    println!(
        "{:<4} {:>14} {:>12} {:>14} {:>14} {:>12}",
        "run", "bgw (MiB/s)", "sent (MiB)", "peak RSS (MiB)", "restic (MiB/s)", "zstd -1"
    );

    let restic_pw = dir.path().join("restic-password");
    std::fs::write(&restic_pw, "bench")?;
    for run in 1..=runs {
        let image = DiskImage::patterned(size, 1000 + u64::from(run));
        vcsim_disks::put_flat_disk(&vc, &vm.disk_file, &image.data).await?;
        drop(image);
        let flat =
            find_file(&vc.datastore_root(), "bench-flat.vmdk").ok_or("flat file not found")?;

        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        let cpu0 = cpu_all();
        let (secs, sent) = backup_once(&cloud, "bench", &vm_arn)?;
        let cpu1 = cpu_all();
        stop.store(true, Ordering::Relaxed);
        let _ = sampler.join();

        let repo = dir.path().join("restic-repo");
        let _ = std::fs::remove_dir_all(&repo);
        let restic = |sub: &[&str]| {
            let mut c = Command::new("restic");
            c.args(sub)
                .arg("--repo")
                .arg(&repo)
                .arg("--password-file")
                .arg(&restic_pw)
                .arg("--quiet");
            c
        };
        timed(restic(&["init"]))?;
        let mut rb = restic(&["backup"]);
        rb.arg(&flat);
        let (restic_t, restic_cpu) = timed(rb)?;
        let _ = std::fs::remove_dir_all(&repo);
        let out = dir.path().join("out.zst");
        let mut z = Command::new("zstd");
        z.arg("-1")
            .arg("-q")
            .arg("-f")
            .arg(&flat)
            .arg("-o")
            .arg(&out);
        let (zstd_t, zstd_cpu) = timed(z)?;
        let _ = std::fs::remove_file(&out);

        let mibs = size as f64 / MIB;
        println!(
            "{run:<4} {:>14.1} {:>12.1} {:>14.1} {:>14.1} {:>12.1}",
            mibs / secs,
            sent as f64 / MIB,
            peak.load(Ordering::Relaxed) as f64 / 1024.0,
            mibs / restic_t.as_secs_f64(),
            mibs / zstd_t.as_secs_f64()
        );
        println!(
            "     CPU s: agent {:.1}, cloud {:.1}, vcsim {:.1} (wall {secs:.1} s on {} cores); \
             restic {restic_cpu:.1} (wall {:.1} s); zstd {zstd_cpu:.1}",
            cpu1[0] - cpu0[0],
            cpu1[1] - cpu0[1],
            cpu1[2] - cpu0[2],
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            restic_t.as_secs_f64(),
        );
        println!("     stages: {}", stage_line(agent.stderr_log()));
    }
    let (secs, sent) = backup_once(&cloud, "bench", &vm_arn)?;
    println!(
        "incremental (unchanged disk): {secs:.2} s, {:.3} MiB sent; stages: {}",
        sent as f64 / MIB,
        stage_line(agent.stderr_log())
    );
    Ok(())
}
