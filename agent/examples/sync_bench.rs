//! Metadata sync benchmark: 10,000 VMs (20 clusters x 500) with 3 tags each, real processes
//! (vcsim, bgw-cloud, bgw-agent), driven by boto3.
//!
//! Prints: the bare `vsphere-client` listing time (VMs + tags), the time from
//! `StartVirtualMachinesMetadataSync` to `SUCCEEDED`, the time for a rename to show in
//! `GetVirtualMachine`, the agent's RSS idle and peak during the sync, and its idle CPU.
//!
//! ```text
//! cargo build --release -p bgw-agent -p bgw-cloud
//! cargo run --release -p bgw-agent --example sync_bench [-- CLUSTERS VMS_PER_CLUSTER]
//! ```

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgw_tests::aws::{python, AwsCli, Venv};
use bgw_tests::cloud::{Cloud, CloudOptions};
use bgw_tests::paths::workspace_binary;
use bgw_tests::process::ChildProcess;
use bgw_tests::vcsim::{Vcsim, VcsimOptions};
use bgw_tests::vcsim_soap::SoapSession;
use bgw_tests::vcsim_tags::{Cardinality, TagClient};
use vsphere_client::{Client, ConnectOptions, Secret, Trust, MAX_BATCH};

type BoxError = Box<dyn std::error::Error>;

fn proc_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15; `after` starts at field 3.
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn boto(cloud: &Cloud, script: &str) -> Result<String, BoxError> {
    let out = python(Venv::Cbor, cloud, script)?;
    if !out.success() {
        return Err(format!("python failed: {}", out.stderr).into());
    }
    Ok(out.stdout.trim().to_string())
}

fn aws(cloud: &Cloud, args: &[&str]) -> Result<serde_json::Value, BoxError> {
    let r = AwsCli::new(cloud).run(args)?;
    if !r.success() {
        return Err(format!("aws {args:?}: {}", r.stderr()).into());
    }
    Ok(r.json()?)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let clusters: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let per_cluster: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500);
    let opts = VcsimOptions {
        clusters,
        hosts_per_cluster: 1,
        standalone_hosts: 0,
        vms_per_pool: per_cluster,
        ..VcsimOptions::default()
    };
    let t = Instant::now();
    let vc = Vcsim::start(opts.clone())?;
    let n = opts.expected_vm_count();
    eprintln!("vcsim with {n} VMs up in {:.1?}", t.elapsed());
    let mut soap = SoapSession::login(&vc).await?;
    let vms = soap.list_vms().await?;
    let morefs: Vec<&str> = vms.iter().map(|v| v.moref.as_str()).collect();
    let tagger = TagClient::login(&vc).await?;
    for (cat, tag) in [
        ("Environment", "prod"),
        ("Team", "web"),
        ("Backup", "daily"),
    ] {
        let c = tagger.create_category(cat, Cardinality::Single).await?;
        let id = tagger.create_tag(&c, tag).await?;
        for chunk in morefs.chunks(MAX_BATCH) {
            tagger.attach_tag_to_vms(&id, chunk).await?;
        }
    }

    // Baseline: the bare client, VMs and tags.
    let t = Instant::now();
    let pin = vc.thumbprint_sha256().parse()?;
    let (client, _) = Client::connect(ConnectOptions::new(
        vc.host_port(),
        vc.username(),
        Secret::new(vc.password()),
        Trust::Thumbprint(pin),
    ))
    .await?;
    let listed = client.list_vms().await?;
    let ids: Vec<String> = listed.iter().map(|v| v.moref.clone()).collect();
    let _tags = client.tags_for(&ids).await?;
    let bare = t.elapsed();
    client.logout().await?;
    drop(listed);

    // The system.
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
    cmd.arg("run").arg("--config").arg(&config);
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
    // Activated, no hypervisor yet: the agent's floor.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let activated_rss = proc_field(pid, "VmRSS:");
    let host = vc.host_port();
    let hv = aws(
        &cloud,
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
        &[
            "associate-gateway-to-server",
            "--gateway-arn",
            &gw,
            "--server-arn",
            &hv,
        ],
    )?;

    // The association triggers a first sync; wait for it, then let the agent settle.
    let wait_sync = format!(
        r#"
import boto3, time
c = boto3.client("backup-gateway")
t = time.time()
while time.time() - t < 600:
    h = c.get_hypervisor(HypervisorArn="{hv}")["Hypervisor"]
    if h.get("LatestMetadataSyncStatus") == "SUCCEEDED" and h.get("State") == "ONLINE":
        break
    time.sleep(0.2)
print(len(c.list_virtual_machines(HypervisorArn="{hv}", MaxResults=1000)["VirtualMachines"]))
"#
    );
    boto(&cloud, &wait_sync)?;
    // Idle: 30 s after the sync, once the upload and the change watch's first listing are over.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let idle_rss = proc_field(pid, "VmRSS:");
    let idle_anon = proc_field(pid, "RssAnon:");
    let idle_file = proc_field(pid, "RssFile:");
    let c0 = cpu_ticks(pid);
    let idle_window = Duration::from_secs(30);
    tokio::time::sleep(idle_window).await;
    let ticks = cpu_ticks(pid) - c0;
    let hz = 100.0; // USER_HZ on Linux
    let idle_cpu = ticks as f64 / hz / idle_window.as_secs_f64() * 100.0;

    // Peak RSS during the measured sync, sampled every 20 ms.
    let peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(proc_field(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let timed_sync = format!(
        r#"
import boto3, time
c = boto3.client("backup-gateway")
before = c.get_hypervisor(HypervisorArn="{hv}")["Hypervisor"].get("LastSuccessfulMetadataSyncTime")
t = time.time()
c.start_virtual_machines_metadata_sync(HypervisorArn="{hv}")
while time.time() - t < 600:
    h = c.get_hypervisor(HypervisorArn="{hv}")["Hypervisor"]
    if h.get("LatestMetadataSyncStatus") == "SUCCEEDED" and h.get("LastSuccessfulMetadataSyncTime") != before:
        break
    time.sleep(0.05)
print(time.time() - t)
"#
    );
    let sync_secs: f64 = boto(&cloud, &timed_sync)?.parse()?;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();

    // Rename visibility.
    let target = &vms[vms.len() / 2];
    let uuid = &target.instance_uuid;
    let find_arn = format!(
        r#"
import boto3
c = boto3.client("backup-gateway")
p = c.get_paginator("list_virtual_machines")
for page in p.paginate(HypervisorArn="{hv}"):
    for v in page["VirtualMachines"]:
        if v["Name"] == "{name}":
            print(v["ResourceArn"]); raise SystemExit
"#,
        name = target.name
    );
    let vm_arn = boto(&cloud, &find_arn)?;
    let rename = format!(
        r#"
import boto3, time, sys
c = boto3.client("backup-gateway")
c.get_virtual_machine(ResourceArn="{vm_arn}")
print("ready", flush=True)
sys.stdin.readline()
t = time.time()
while time.time() - t < 60:
    if c.get_virtual_machine(ResourceArn="{vm_arn}")["VirtualMachine"]["Name"] == "bench-renamed":
        break
    time.sleep(0.02)
print(time.time() - t)
"#
    );
    // Start the poller first (Python start-up is not part of the figure), then rename.
    let venv = Venv::Cbor.python()?;
    let mut poller = Command::new(venv);
    poller
        .arg("-c")
        .arg(&rename)
        .env("AWS_ENDPOINT_URL", cloud.endpoint())
        .env("AWS_CA_BUNDLE", cloud.ca_file())
        .env("AWS_DEFAULT_REGION", cloud.region())
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            cloud.admin_credentials_file(),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = poller.spawn()?;
    {
        use std::io::{BufRead, Write};
        let mut out = std::io::BufReader::new(child.stdout.take().ok_or("stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        soap.rename("VirtualMachine", &target.moref, "bench-renamed")
            .await?;
        writeln!(child.stdin.take().ok_or("stdin")?)?;
        line.clear();
        out.read_line(&mut line)?;
        let rename_secs: f64 = line.trim().parse()?;
        let _ = child.wait();

        println!("VMs: {n} x 3 tags (instance UUID of the renamed VM: {uuid})");
        println!(
            "bare vsphere-client listing with tags: {:.2} s",
            bare.as_secs_f64()
        );
        println!(
            "StartVirtualMachinesMetadataSync -> SUCCEEDED: {sync_secs:.2} s ({:.2}x the bare listing)",
            sync_secs / bare.as_secs_f64()
        );
        println!("rename visible in GetVirtualMachine: {rename_secs:.2} s");
    }
    println!(
        "agent RSS activated, before any hypervisor: {:.1} MB",
        activated_rss as f64 / 1024.0
    );
    println!(
        "agent RSS idle: {:.1} MB (anonymous {:.1} MB, file-backed {:.1} MB)",
        idle_rss as f64 / 1024.0,
        idle_anon as f64 / 1024.0,
        idle_file as f64 / 1024.0
    );
    println!(
        "agent RSS peak during the sync: {:.1} MB",
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
    println!(
        "agent idle CPU: {idle_cpu:.2} % over {} s",
        idle_window.as_secs()
    );
    drop(agent);
    Ok(())
}
