//! Inventory benchmark: 10,000 VMs (20 clusters x 500 VMs) with 3 tags each.
//!
//! Starts the simulator, tags every VM, then in alternating rounds times
//!
//! - `bgw-agent vcenter inventory --tags --json` (the operator command, a fresh process whose
//!   output is read to the end),
//! - the same listing with tags through the library in a fresh process (so its peak RSS is the
//!   listing's own), with wall time, HTTP requests and peak RSS,
//! - pyvmomi fetching five plain properties of the same VMs (from the venv at `$BGW_VENV`,
//!   default `.tools/venv`),
//!
//! and prints the medians. The agent binary is `$BGW_AGENT_BIN`, or `bgw-agent` next to the
//! example's profile directory (build it with `cargo build --release -p bgw-agent`).
//!
//! ```text
//! cargo build --release -p bgw-agent
//! cargo run --release -p vsphere-client --example inventory_bench [-- CLUSTERS VMS_PER_CLUSTER]
//! ```

use std::process::Command;
use std::time::Instant;

use bgw_tests::vcsim::{Vcsim, VcsimOptions};
use bgw_tests::vcsim_soap::SoapSession;
use bgw_tests::vcsim_tags::{Cardinality, TagClient};
use vsphere_client::{Client, ConnectOptions, Secret, Trust, MAX_BATCH};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("BENCH_CHILD").is_some() {
        return measure().await;
    }
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
    eprintln!(
        "vcsim with {} VMs up in {:.1?}",
        opts.expected_vm_count(),
        t.elapsed()
    );

    let t = Instant::now();
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
    eprintln!(
        "tagged {} VMs with 3 tags in {:.1?}",
        vms.len(),
        t.elapsed()
    );

    // Alternate rounds: the listing in a fresh process, then pyvmomi, so that neither gets a
    // simulator warmed up by the other only. The first round includes the simulator's
    // cold start for the listing.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let venv = std::env::var("BGW_VENV")
        .unwrap_or_else(|_| format!("{}/../.tools/venv", env!("CARGO_MANIFEST_DIR")));
    let script = format!("{}/bench/pyvmomi_fetch.py", env!("CARGO_MANIFEST_DIR"));
    let addr = vc.addr();
    let pyvmomi = |properties: &str| {
        Command::new(format!("{venv}/bin/python"))
            .arg(&script)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .arg(vc.username())
            .arg(vc.password())
            .arg(vc.ca_file())
            .arg(properties)
            .output()
    };
    let agent = std::env::var_os("BGW_AGENT_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap_or_default();
            let profile = exe
                .parent()
                .and_then(|p| p.parent())
                .map(|p| p.to_path_buf());
            profile.unwrap_or_default().join("bgw-agent")
        });
    if !agent.is_file() {
        return Err(format!(
            "{} not found: run cargo build --release -p bgw-agent or set BGW_AGENT_BIN",
            agent.display()
        )
        .into());
    }
    let (mut cli, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        println!("round {round}:");
        // The operator command, as a user runs it.
        let t = Instant::now();
        let out = Command::new(&agent)
            .args(["vcenter", "inventory", "--host", &vc.host_port()])
            .args(["--username", vc.username(), "--password-env", "BENCH_PASS"])
            .args(["--thumbprint", &vc.thumbprint_sha256(), "--tags", "--json"])
            .env("BENCH_PASS", vc.password())
            .output()?;
        let secs = t.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!(
                "bgw-agent vcenter inventory failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let lines = out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty());
        let (mut listed, mut tagged) = (0usize, 0usize);
        for line in lines {
            listed += 1;
            let v: serde_json::Value = serde_json::from_slice(line)?;
            if v["tags"].as_array().is_some_and(|t| t.len() == 3) {
                tagged += 1;
            }
        }
        println!(
            "bgw-agent vcenter inventory --tags --json: {listed} VMs ({tagged} with 3 tags) in {secs:.3} s, {} MB of output",
            out.stdout.len() / 1_000_000
        );
        cli.push(secs);

        let out = Command::new(std::env::current_exe()?)
            .env("BENCH_CHILD", "1")
            .env("BENCH_HOST", vc.host_port())
            .env("BENCH_USER", vc.username())
            .env("BENCH_PASS", vc.password())
            .env("BENCH_THUMBPRINT", vc.thumbprint_sha256())
            .output()?;
        if !out.status.success() {
            return Err(format!("listing failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        print!("{text}");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        if let Some(secs) = text
            .split(" in ")
            .nth(1)
            .and_then(|r| r.split(" s,").next())
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            ours.push(secs);
        }

        // pyvmomi, five plain properties, same VMs, same run.
        match pyvmomi("plain") {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                let mut parts = text.split_whitespace();
                let n = parts.next().unwrap_or("?");
                let secs = parts.next().unwrap_or("?");
                println!("pyvmomi (5 plain properties): {n} VMs in {secs} s");
                if let Ok(v) = secs.parse::<f64>() {
                    theirs.push(v);
                }
            }
            Ok(o) => println!(
                "pyvmomi failed (install it with scripts/lib/tools.sh ensure_venvs): {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
            Err(e) => println!("pyvmomi not run ({venv}/bin/python: {e})"),
        }
    }
    // The same property list through pyvmomi, once, on request (it takes minutes).
    if std::env::var("BENCH_PYVMOMI_FULL").is_ok_and(|v| v == "1") {
        let o = pyvmomi("full")?;
        let text = String::from_utf8_lossy(&o.stdout);
        let mut parts = text.split_whitespace();
        println!(
            "pyvmomi (the listing's own property list, with devices): {} VMs in {} s",
            parts.next().unwrap_or("?"),
            parts.next().unwrap_or("?")
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied()
    };
    if let (Some(a), Some(b)) = (median(&mut cli), median(&mut theirs.clone())) {
        println!(
            "median of {rounds} rounds: bgw-agent vcenter inventory --tags --json {a:.3} s, pyvmomi {b:.3} s (5 plain properties): {}",
            if a < b { "faster" } else { "NOT faster" }
        );
    }
    if let (Some(a), Some(b)) = (median(&mut ours), median(&mut theirs)) {
        println!(
            "median of {rounds} rounds: vsphere-client {a:.3} s (listing with tags), pyvmomi {b:.3} s (5 plain properties)"
        );
    }
    soap.logout().await?;
    Ok(())
}

async fn measure() -> Result<(), Box<dyn std::error::Error>> {
    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} not set"));
    let t = Instant::now();
    let mut opts = ConnectOptions::new(
        var("BENCH_HOST")?,
        var("BENCH_USER")?,
        Secret::new(var("BENCH_PASS")?),
        Trust::Thumbprint(var("BENCH_THUMBPRINT")?.parse()?),
    );
    opts.page_size = MAX_BATCH;
    let (client, _) = Client::connect(opts).await?;
    let connected = t.elapsed();
    let mut first_page = None;
    let mut tag_time = std::time::Duration::ZERO;
    let mut pages = client.inventory_stream();
    let (mut vms, mut tagged, mut disks) = (0usize, 0usize, 0usize);
    use futures::StreamExt;
    while let Some(page) = pages.next().await {
        let page = page?;
        first_page.get_or_insert(t.elapsed());
        let morefs: Vec<String> = page.iter().map(|v| v.moref.clone()).collect();
        let tt = Instant::now();
        let tags = client.tags_for(&morefs).await?;
        tag_time += tt.elapsed();
        for vm in &page {
            vms += 1;
            disks += vm.disks.len();
            if tags.of_vm(&vm.moref).len() == 3 {
                tagged += 1;
            }
        }
    }
    let listed = t.elapsed();
    client.logout().await?;
    let wall = t.elapsed();
    eprintln!(
        "phases: connected {connected:.3?}, first page {:.3?}, listed {listed:.3?}, tag calls {tag_time:.3?}",
        first_page.unwrap_or_default()
    );
    println!(
        "vsphere-client (full listing with tags): {vms} VMs ({tagged} with 3 tags, {disks} disks) in {:.3} s, {} HTTP requests, peak RSS {} MB",
        wall.as_secs_f64(),
        client.request_count(),
        peak_rss_kb() / 1024
    );
    Ok(())
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
