//! `bgw-agent vcenter ...`: look at vCenter the way the gateway does.
//!
//! `bgw-agent vcenter inventory --host vc.example.com --username backup@vsphere.local
//! --password-env VC_PASSWORD --thumbprint AB:CD:... --tags --json` prints every VM, one
//! JSON object per line (or a table without `--json`). Errors print one line and exit
//! non-zero: 2 unreachable, 3 untrusted certificate, 4 login refused, 1 anything else.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use vsphere_client::{
    AttachedTag, Client, ConnectOptions, ErrorKind, Secret, Thumbprint, Trust, Vm,
};

#[derive(clap::Subcommand)]
pub enum VcenterCommand {
    /// List every VM with its identity, placement and (optionally) disks and tags.
    Inventory(InventoryArgs),
    /// Make the running agent trust the vCenter certificate it sees next (after a legitimate
    /// certificate replacement): forgets the recorded thumbprint.
    Retrust(RetrustArgs),
}

#[derive(clap::Args)]
pub struct RetrustArgs {
    #[command(flatten)]
    config: crate::cli::daemon::ConfigArg,
    /// Only this host (as configured on the hypervisor); default: every host.
    #[arg(long)]
    host: Option<String>,
}

fn retrust(args: RetrustArgs) -> anyhow::Result<ExitCode> {
    let config = crate::Config::load(&args.config.config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer =
        runtime.block_on(crate::admin::AdminClient::for_config(&config).retrust(args.host))?;
    if let Some(e) = answer.error {
        anyhow::bail!("{e}");
    }
    if answer.forgotten.is_empty() {
        println!("no recorded vCenter thumbprint to forget");
    } else {
        println!(
            "forgot the thumbprint of {}; the agent trusts the certificate it sees next",
            answer.forgotten.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("password").required(true).args(["password_env", "password_file"])))]
#[command(group(clap::ArgGroup::new("trust").args(["ca_file", "thumbprint", "trust_on_first_use"])))]
pub struct InventoryArgs {
    /// vCenter host name or address, optionally with :PORT.
    #[arg(long)]
    host: String,
    /// vCenter user, e.g. backup@vsphere.local.
    #[arg(long)]
    username: String,
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// Read the password from this file (first line).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Trust the CA certificates in this PEM file (instead of the system roots).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Trust exactly the certificate with this SHA-256 thumbprint (AB:CD:... or bare hex).
    #[arg(long, value_name = "SHA256")]
    thumbprint: Option<String>,
    /// Accept the certificate presented now and print its thumbprint to stderr.
    #[arg(long)]
    trust_on_first_use: bool,
    /// Also show the tags attached to each VM.
    #[arg(long)]
    tags: bool,
    /// Also read and show each VM's virtual disks (one more vCenter call per page of VMs;
    /// reading devices is most of what vCenter sends, so they are left out by default).
    #[arg(long)]
    disks: bool,
    /// One JSON object per VM and line instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: VcenterCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        VcenterCommand::Inventory(args) => inventory(args),
        VcenterCommand::Retrust(args) => retrust(args),
    }
}

fn inventory(args: InventoryArgs) -> anyhow::Result<ExitCode> {
    let password = read_password(&args)?;
    let trust = if let Some(path) = &args.ca_file {
        Trust::CaFile(path.clone())
    } else if let Some(t) = &args.thumbprint {
        Trust::Thumbprint(
            t.parse::<Thumbprint>()
                .map_err(|e| anyhow::anyhow!("--thumbprint: {e}"))?,
        )
    } else if args.trust_on_first_use {
        Trust::TrustOnFirstUse
    } else {
        Trust::SystemRoots
    };
    let opts = ConnectOptions {
        page_size: vsphere_client::MAX_BATCH,
        ..ConnectOptions::new(args.host.clone(), args.username.clone(), password, trust)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match rt.block_on(list(opts, &args)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(exit_code(e.kind())))
        }
    }
}

fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Network => 2,
        ErrorKind::Tls => 3,
        ErrorKind::Authentication => 4,
        _ => 1,
    }
}

fn read_password(args: &InventoryArgs) -> anyhow::Result<Secret> {
    if let Some(var) = &args.password_env {
        let value =
            std::env::var(var).with_context(|| format!("environment variable {var} is not set"))?;
        return Ok(Secret::new(value));
    }
    let path = args
        .password_file
        .as_ref()
        .expect("clap requires one password source");
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Secret::new(text.lines().next().unwrap_or_default()))
}

async fn list(opts: ConnectOptions, args: &InventoryArgs) -> vsphere_client::Result<()> {
    let first_use = matches!(opts.trust, Trust::TrustOnFirstUse);
    let (client, info) = Client::connect(opts).await?;
    if first_use {
        if let Some(t) = info.seen_thumbprint {
            eprintln!(
                "trusting {} on first use: SHA-256 thumbprint {t}",
                args.host
            );
        }
    }
    let result = print_inventory(&client, args).await;
    let logout = client.logout().await;
    result.and(logout)
}

async fn print_inventory(client: &Client, args: &InventoryArgs) -> vsphere_client::Result<()> {
    let mut pages = client.inventory_stream();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !args.json {
        let _ = writeln!(
            out,
            "{:<10} {:<24} {:<10} {:<20} {:<20} {:>5}  PATH",
            "MOREF", "NAME", "POWER", "ESXI HOST", "GUEST HOSTNAME", "DISKS"
        );
    }
    use futures::StreamExt;
    while let Some(page) = pages.next().await {
        let mut page = page?;
        if args.disks {
            client.fill_disks(&mut page).await?;
        }
        let tags = if args.tags {
            let morefs: Vec<String> = page.iter().map(|v| v.moref.clone()).collect();
            Some(client.tags_for(&morefs).await?)
        } else {
            None
        };
        for vm in &page {
            let vm_tags = tags.as_ref().map(|t| t.of_vm(&vm.moref));
            let line = if args.json {
                json_line(vm, args.disks, vm_tags.as_deref())
            } else {
                table_line(vm, args.disks, vm_tags.as_deref())
            };
            if writeln!(out, "{line}").is_err() {
                return Ok(()); // stdout closed (e.g. piped into head)
            }
        }
    }
    let _ = out.flush();
    Ok(())
}

fn json_line(vm: &Vm, disks: bool, tags: Option<&[AttachedTag]>) -> String {
    let mut v = json!({
        "moref": vm.moref,
        "instance_uuid": vm.instance_uuid,
        "name": vm.name,
        "path": vm.path,
        "guest_hostname": vm.guest_hostname,
        "esxi_host": vm.esxi_host,
        "power_state": vm.power_state.as_str(),
    });
    if disks {
        v["disks"] = json!(vm.disks);
    }
    if let Some(tags) = tags {
        v["tags"] = json!(tags);
    }
    v.to_string()
}

fn table_line(vm: &Vm, disks: bool, tags: Option<&[AttachedTag]>) -> String {
    let disk_count = if disks {
        vm.disks.len().to_string()
    } else {
        "-".into()
    };
    let mut line = format!(
        "{:<10} {:<24} {:<10} {:<20} {:<20} {:>5}  {}",
        vm.moref,
        vm.name,
        vm.power_state.as_str(),
        vm.esxi_host.as_deref().unwrap_or("-"),
        vm.guest_hostname.as_deref().unwrap_or("-"),
        disk_count,
        vm.path
    );
    if let Some(tags) = tags {
        let list: Vec<String> = tags
            .iter()
            .map(|t| format!("{}:{}", t.category, t.name))
            .collect();
        line.push_str(&format!("  [{}]", list.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsphere_client::{Disk, PowerState};

    fn vm() -> Vm {
        Vm {
            moref: "vm-42".into(),
            instance_uuid: Some("5003a1b2-0000-0000-0000-000000000042".into()),
            bios_uuid: None,
            name: "web01".into(),
            path: "/DC0/vm/Prod/web01".into(),
            template: false,
            guest_hostname: Some("web01.example.com".into()),
            guest_ip: None,
            power_state: PowerState::PoweredOn,
            esxi_host: Some("esx1.example.com".into()),
            datastores: vec!["ds1".into()],
            disks: vec![Disk {
                key: 2000,
                label: "Hard disk 1".into(),
                capacity_bytes: 1 << 30,
                file_name: "[ds1] web01/web01.vmdk".into(),
                cbt_enabled: true,
                change_id: Some("52 de c0 d9 98 1e 2b 6b-a0 4b 6e 5e 0c 45 a1 4d/12".into()),
                controller_key: 1000,
                unit_number: Some(0),
                thin_provisioned: Some(true),
            }],
            resource_pool: None,
            change_tracking: true,
        }
    }

    #[test]
    fn json_lines_have_the_documented_keys() {
        let plain: serde_json::Value =
            serde_json::from_str(&json_line(&vm(), false, None)).unwrap();
        assert!(
            plain.get("disks").is_none(),
            "disks only with --disks: {plain}"
        );
        let line = json_line(&vm(), true, None);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "disks",
                "esxi_host",
                "guest_hostname",
                "instance_uuid",
                "moref",
                "name",
                "path",
                "power_state"
            ]
        );
        assert_eq!(v["power_state"], "poweredOn");
        assert_eq!(v["disks"][0]["capacity_bytes"], 1u64 << 30);

        let tags = [AttachedTag {
            category: "Environment".into(),
            name: "prod".into(),
            description: "production".into(),
        }];
        let v: serde_json::Value =
            serde_json::from_str(&json_line(&vm(), false, Some(&tags))).unwrap();
        assert_eq!(
            v["tags"],
            serde_json::json!([{"category": "Environment", "name": "prod", "description": "production"}])
        );
    }

    #[test]
    fn table_lines_show_tags_as_category_and_name() {
        let tags = [AttachedTag {
            category: "Environment".into(),
            name: "prod".into(),
            description: String::new(),
        }];
        let line = table_line(&vm(), true, Some(&tags));
        assert!(line.starts_with("vm-42"), "{line}");
        assert!(
            line.contains("/DC0/vm/Prod/web01") && line.ends_with("[Environment:prod]"),
            "{line}"
        );
    }

    #[test]
    fn exit_codes_tell_the_failure_apart() {
        assert_eq!(exit_code(ErrorKind::Network), 2);
        assert_eq!(exit_code(ErrorKind::Tls), 3);
        assert_eq!(exit_code(ErrorKind::Authentication), 4);
        assert_eq!(exit_code(ErrorKind::Fault), 1);
    }
}
