//! `bgw-agent run | check-config | activation-key | status | jobs`: the daemon and the commands that
//! talk to it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::admin::AdminClient;
use crate::config::Config;
use crate::daemon;

#[derive(clap::Args)]
pub struct ConfigArg {
    /// Configuration file (TOML).
    #[arg(
        long,
        short,
        env = "BGW_AGENT_CONFIG",
        default_value = "/etc/bgw-agent/agent.toml"
    )]
    pub config: PathBuf,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct JobsArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the jobs as JSON (`{"jobs": [...]}`).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct ActivationKeyArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The region to activate in, e.g. us-east-1.
    #[arg(long)]
    pub region: String,
}

/// Logs go to stderr, structured, without colour when not on a terminal (journald).
pub fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("BGW_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if std::env::var("BGW_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

pub fn run(args: ConfigArg) -> anyhow::Result<ExitCode> {
    crate::memory::limit_arenas();
    init_tracing();
    let config = load(&args.config)?;
    // The launcher may run another version instead (exec) or supervise a trial.
    let launcher = crate::updater::launcher::Launcher::new(&config, &args.config);
    if launcher.start()? == crate::updater::launcher::Start::Supervise {
        return Ok(launcher.supervise()?);
    }
    if crate::build_fault() == crate::BuildFault::ExitAtStart {
        tracing::error!("this build is broken on purpose (BGW_BUILD_FAULT=exit-at-start)");
        return Ok(ExitCode::FAILURE);
    }
    let signalled = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone(), signalled.clone()));
        daemon::run(config, shutdown).await
    })?;
    // Do not wait for stragglers (e.g. a DNS lookup in a blocking thread).
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    // The agent stopped: for good, or to restart into a staged version.
    Ok(launcher.after_daemon(signalled.load(Ordering::SeqCst))?)
}

async fn stop_on_signal(shutdown: CancellationToken, signalled: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    signalled.store(true, Ordering::SeqCst);
    shutdown.cancel();
}

pub fn check_config(args: ConfigArg) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    // Also proves the CA file holds usable certificates.
    crate::cloud::CloudClient::new(
        &config.cloud,
        crate::clock::CloudTime::new(std::sync::Arc::new(crate::clock::SystemClock)),
    )?;
    println!(
        "{}: OK (cloud {} in {}, state in {}, time zone {}, heartbeat every {})",
        args.config.display(),
        config.cloud.endpoint,
        config.cloud.region,
        config.gateway.state_dir.display(),
        config.gateway.timezone.name(),
        humantime::format_duration(config.gateway.heartbeat_interval),
    );
    Ok(ExitCode::SUCCESS)
}

fn small_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn activation_key(args: ActivationKeyArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config.config)?;
    let (status, answer) =
        small_runtime()?.block_on(AdminClient::for_config(&config).activation_key(&args.region))?;
    match answer.activation_key {
        Some(key) if status == 200 => {
            println!("{key}");
            if let Some(expires) = answer.expires_at {
                eprintln!("expires at {expires}; pass it to `aws backup-gateway create-gateway --activation-key`");
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!(
                "error: {}",
                answer.error.unwrap_or_else(|| format!("HTTP {status}"))
            );
            Ok(ExitCode::from(if status == 503 {
                crate::cli::exit::TEMPORARY
            } else {
                crate::cli::exit::FAILURE
            }))
        }
    }
}

pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config.config)?;
    let report = small_runtime()?.block_on(AdminClient::for_config(&config).status())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
    println!("bgw-agent {}", report.version);
    println!(
        "  gateway:      {}",
        if report.activated {
            or(&report.gateway_arn, "?")
        } else {
            match &report.pending_activation_key {
                Some(k) => format!("not activated (key {k} waiting for CreateGateway)"),
                None => "not activated".into(),
            }
        }
    );
    println!("  time zone:    {}", report.timezone);
    println!("  heartbeat:    {}", or(&report.last_heartbeat, "never"));
    if let Some(e) = &report.cloud.last_error {
        println!("  cloud error:  {e}");
    }
    println!(
        "  hypervisor:   {} {}{}",
        report.hypervisor.state,
        or(&report.hypervisor.host, "(none)"),
        report
            .hypervisor
            .message
            .as_ref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    );
    println!(
        "  sync:         {} (last success {})",
        report.sync.last_status.map_or("never run", |s| s.as_str()),
        or(&report.sync.last_success, "never")
    );
    let limit = |l: Option<u64>| l.map_or("unlimited".to_string(), |b| format!("{b} bit/s"));
    println!(
        "  bandwidth:    {}{}",
        limit(report.bandwidth.current_limit_bps),
        report
            .bandwidth
            .next_change_at
            .as_ref()
            .map(|at| format!(", {} from {at}", limit(report.bandwidth.next_limit_bps)))
            .unwrap_or_default()
    );
    println!(
        "  maintenance:  {}",
        or(&report.maintenance.next_window_start, "not set")
    );
    let u = &report.update;
    println!(
        "  update:       {}{}{}{}",
        u.state,
        u.staged_version
            .as_ref()
            .map(|v| format!(", {v} staged"))
            .unwrap_or_default(),
        u.available_version
            .as_ref()
            .map(|v| format!(", {v} offered"))
            .unwrap_or_default(),
        if u.apply_now {
            ", apply now requested"
        } else {
            ""
        }
    );
    if let Some(a) = &u.last_attempt {
        println!(
            "  last update:  {} {} (started {}{}){}",
            a.version,
            a.result,
            crate::status::rfc3339(a.started_at),
            a.ended_at
                .map(|t| format!(", ended {}", crate::status::rfc3339(t)))
                .unwrap_or_default(),
            a.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn jobs(args: JobsArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config.config)?;
    let answer = small_runtime()?.block_on(AdminClient::for_config(&config).jobs())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", jobs_table(&answer.jobs));
    Ok(ExitCode::SUCCESS)
}

/// One line per job, oldest first.
fn jobs_table(jobs: &[crate::jobs::JobRecord]) -> String {
    if jobs.is_empty() {
        return "no jobs\n".to_string();
    }
    let mut out = format!(
        "{:<38} {:<14} {:<10} {:<9} {:<20} SUBJECT\n",
        "ID", "KIND", "STATE", "PROGRESS", "CREATED"
    );
    for job in jobs {
        let progress = match job.progress.total {
            Some(total) if total > 0 => format!("{}%", job.progress.done * 100 / total),
            _ => job.progress.done.to_string(),
        };
        out.push_str(&format!(
            "{:<38} {:<14} {:<10} {:<9} {:<20} {}{}{}\n",
            job.id.to_string(),
            job.kind.as_str(),
            format!("{:?}", job.state).to_uppercase(),
            progress,
            crate::status::rfc3339(job.created_at),
            job.subject,
            if job.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            job.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default(),
        ));
    }
    out
}
