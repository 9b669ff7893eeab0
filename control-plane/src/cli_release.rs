//! `bgw-cloud release ...`: keys, publishing and update history.
//!
//! A release is published straight into the store when no server runs on the data directory,
//! and through the running server's admin paths (signed with the admin credentials in the
//! data directory) when one does: sled admits one process.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use bgw_cloud::release::ReleaseShelf;
use bgw_cloud::store::releases::SledReleases;
use bgw_cloud::store::Store;
use bgw_update::keys::KeyPair;
use bgw_update::{Manifest, Version};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum ReleaseCommand {
    /// Write a new signing key pair: DIR/release.key (secret, 0600) and DIR/release.pub.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign an artifact's manifest and offer the release to every gateway on an older version.
    Publish(PublishArgs),
    /// Show the published releases.
    List {
        #[arg(long)]
        data: PathBuf,
    },
    /// Show a gateway's update attempts.
    History {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        gateway: String,
    },
}

#[derive(Args)]
pub struct PublishArgs {
    /// The control plane's data directory.
    #[arg(long)]
    data: PathBuf,
    /// The artifact made by `packaging/make-update-artifact`.
    #[arg(long)]
    artifact: PathBuf,
    /// The secret key written by `release keygen`.
    #[arg(long)]
    signing_key: PathBuf,
    /// Apply at the next opportunity instead of the next maintenance window.
    #[arg(long)]
    urgent: bool,
    /// The oldest version this release upgrades from.
    #[arg(long)]
    min_version: Option<Version>,
}

pub fn run(command: ReleaseCommand) -> anyhow::Result<()> {
    match command {
        ReleaseCommand::Keygen { out } => {
            let pair = KeyPair::generate(&mut rand::thread_rng());
            let (secret, public) = pair.write(&out)?;
            println!("secret key: {}", secret.display());
            println!(
                "public key: {} (id {})",
                public.display(),
                pair.public().id()
            );
            Ok(())
        }
        ReleaseCommand::Publish(args) => publish(args),
        ReleaseCommand::List { data } => {
            let out = match admin(&data, "/admin/releases/list", json!({}))? {
                Some(v) => v,
                None => {
                    let shelf = shelf(&data)?;
                    let releases: Vec<Value> = shelf
                        .releases()?
                        .into_iter()
                        .map(|r| json!({"Version": r.version, "Size": r.size, "Urgent": r.urgent, "Published": r.published.timestamp()}))
                        .collect();
                    json!({ "Releases": releases })
                }
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        ReleaseCommand::History { data, gateway } => {
            let out = match admin(
                &data,
                "/admin/update-history",
                json!({"GatewayArn": gateway}),
            )? {
                Some(v) => v,
                None => {
                    let history: Vec<Value> = shelf(&data)?
                        .history(&gateway)?
                        .into_iter()
                        .map(|h| json!({"Version": h.version, "Started": h.started.timestamp(), "Ended": h.ended.map(|t| t.timestamp()), "Result": h.result, "Reason": h.reason}))
                        .collect();
                    json!({ "History": history })
                }
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
    }
}

fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let key = KeyPair::read(&args.signing_key)?;
    let version = artifact_version(&args.artifact)?;
    let mut manifest = Manifest::for_file(version, &args.artifact)
        .with_context(|| format!("reading {}", args.artifact.display()))?;
    manifest.min_version = args.min_version;
    manifest.urgent = args.urgent;
    manifest.published_at = Some(chrono::Utc::now());
    let signed = manifest.sign(&key);
    let artifact = std::fs::canonicalize(&args.artifact)?;
    let input = json!({
        "Manifest": signed.manifest,
        "KeyId": signed.key_id,
        "Signature": signed.signature,
        "ArtifactPath": artifact,
    });
    if admin(&args.data, "/admin/releases", input)?.is_none() {
        shelf(&args.data)?.publish(&signed, &artifact, chrono::Utc::now())?;
    }
    println!(
        "published bgw-agent {} ({} bytes, key {}{})",
        manifest.version,
        manifest.size,
        signed.key_id,
        if manifest.urgent { ", urgent" } else { "" }
    );
    Ok(())
}

/// The version in the artifact's `VERSION` file.
fn artifact_version(artifact: &Path) -> anyhow::Result<Version> {
    let out = std::process::Command::new("tar")
        .arg("-xzOf")
        .arg(artifact)
        .arg("VERSION")
        .output()
        .context("running tar")?;
    if !out.status.success() {
        bail!(
            "{} is not an update artifact (no VERSION file): make it with packaging/make-update-artifact",
            artifact.display()
        );
    }
    Ok(Version::parse(String::from_utf8_lossy(&out.stdout).trim())?)
}

fn shelf(data: &Path) -> anyhow::Result<ReleaseShelf> {
    let store = Store::open(&data.join("store"))
        .with_context(|| format!("opening the store in {}", data.display()))?;
    Ok(ReleaseShelf::new(
        Arc::new(SledReleases::open(&store)?),
        data.join("releases"),
    ))
}

/// Calls an admin path of the server running on `data`; `None` when none runs there.
fn admin(data: &Path, path: &str, input: Value) -> anyhow::Result<Option<Value>> {
    let Ok(text) = std::fs::read_to_string(data.join("server.url")) else {
        return Ok(None);
    };
    let mut lines = text.lines();
    let (Some(base), region) = (lines.next(), lines.next().unwrap_or("us-east-1")) else {
        return Ok(None);
    };
    let (akid, secret) = admin_credentials(&data.join("admin-credentials"))?;
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if base.starts_with("https") {
        let pem = std::fs::read(data.join("tls").join("cert.pem"))?;
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let client = builder.build()?;
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let host = url::Url::parse(&url)?
        .host_str()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let host = match url::Url::parse(&url)?.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    let body = serde_json::to_vec(&input)?;
    let headers = [
        ("host", host.as_str()),
        ("content-type", "application/x-amz-json-1.0"),
    ];
    let signed = bgw_sigv4::sign_request(
        &bgw_sigv4::OutgoingRequest {
            method: "POST",
            uri: &url,
            headers: &headers,
            payload: bgw_sigv4::Payload::Bytes(&body),
        },
        &bgw_sigv4::Scope {
            service: "backup-gateway",
            region,
        },
        &bgw_sigv4::Key {
            access_key_id: &akid,
            secret_access_key: &secret,
        },
        std::time::SystemTime::now(),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut request = client.post(&url).body(body);
        for (name, value) in headers
            .iter()
            .map(|(n, v)| (*n, v.to_string()))
            .chain(signed)
        {
            request = request.header(name, value);
        }
        let response = match request.send().await {
            Ok(r) => r,
            // A server URL left by a server that is gone: use the store directly.
            Err(e) if e.is_connect() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "the server refused {path}: {}",
                value
                    .get("message")
                    .or(value.get("Message"))
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given")
            );
        }
        Ok(Some(value))
    })
}

fn admin_credentials(path: &Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the admin credentials {}", path.display()))?;
    let field = |name: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_string())
    };
    match (field("aws_access_key_id"), field("aws_secret_access_key")) {
        (Some(a), Some(s)) => Ok((a, s)),
        _ => bail!("{} holds no admin access key", path.display()),
    }
}
