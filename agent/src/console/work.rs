//! The console's background work: each [`Action`] that takes time runs on its own thread
//! (admin API calls and checks with timeouts, files written, programs with a deadline) and
//! sends its result back as an [`Event`]; the menu keeps answering meanwhile.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::term::{block_on, AGENT_TIMEOUT};
use super::{Action, AgentView, Event};
use crate::config::Config;

/// Everything the background workers need.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) config: Config,
    pub(super) config_path: PathBuf,
    pub(super) root: PathBuf,
}

/// Runs `action`'s work on its own thread; its result comes back as an event.
pub(super) fn spawn_work(
    action: Action,
    ctx: Ctx,
    status: AgentView,
    resources: super::resources::Report,
    tx: mpsc::Sender<Event>,
) {
    std::thread::spawn(move || {
        let event = match action {
            Action::RequestActivationKey { region } => {
                let answer = block_on(async {
                    tokio::time::timeout(
                        Duration::from_secs(20),
                        crate::admin::AdminClient::for_config(&ctx.config).activation_key(&region),
                    )
                    .await
                });
                Event::ActivationKey(match answer {
                    Err(_) => Err("the agent did not answer within 20 s".into()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Ok(Ok((_, a))) => match a.activation_key {
                        Some(key) => Ok(super::activation::IssuedKey {
                            key,
                            expires_at: a.expires_at,
                        }),
                        None => Err(a.error.unwrap_or_else(|| "no key in the answer".into())),
                    },
                })
            }
            Action::LoadLogs => Event::Logs(super::logs::recent(&ctx.root, 100)),
            Action::ExportBundle => Event::Exported(super::logs::export(
                &ctx.root,
                &ctx.config_path,
                status.status(),
                &resources,
                chrono::Utc::now(),
            )),
            Action::Retrust => {
                let answer = block_on(async {
                    tokio::time::timeout(
                        Duration::from_secs(10),
                        crate::admin::AdminClient::for_config(&ctx.config).retrust(None),
                    )
                    .await
                });
                Event::Retrusted(match answer {
                    Err(_) => Err("the agent did not answer within 10 s".into()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Ok(Ok(a)) => match a.error {
                        Some(e) => Err(e),
                        None if a.forgotten.is_empty() => {
                            Ok("No recorded vCenter thumbprint to forget.".into())
                        }
                        None => Ok(format!(
                            "Forgot the thumbprint of {}; the certificate seen next is trusted.",
                            a.forgotten.join(", ")
                        )),
                    },
                })
            }
            Action::LoadNetwork => Event::Network(super::network::Snapshot {
                system: super::netconf::read_system(&ctx.root),
                proxy: ctx.current_config().cloud.proxy.map(|p| p.to_string()),
            }),
            Action::WriteNetwork(plan) => Event::NetworkSaved(write_network(&ctx, &plan)),
            Action::SaveProxy(proxy) => Event::NetworkSaved(save_proxy(&ctx, proxy)),
            Action::TestConnectivity => {
                let config = ctx.current_config();
                let ntp = super::systime::read_ntp(&ctx.root).effective();
                let run = super::connectivity::plan(&config, status.status(), &ntp);
                let _ = tx.send(Event::Connectivity(run.clone()));
                block_on(futures::future::join_all(
                    run.rows.iter().enumerate().filter_map(|(index, row)| {
                        let check = row.check.clone()?;
                        let (tx, config) = (tx.clone(), config.clone());
                        Some(async move {
                            let outcome = super::connectivity::check(&check, &config).await;
                            let _ = tx.send(Event::Checked { index, outcome });
                        })
                    }),
                ));
                return;
            }
            Action::LoadTime => Event::Time(
                super::systime::read_ntp(&ctx.root),
                Some(ctx.current_config().gateway.timezone.name().to_string()),
            ),
            Action::SetTimezone(zone) => Event::TimeSaved(set_timezone(&ctx, &zone)),
            Action::SaveNtp(servers) => Event::TimeSaved(save_ntp(&ctx, &servers)),
            Action::RunProgram(program) => Event::ProgramDone(run_program(&program, &tx)),
            Action::Redraw | Action::Quit => return,
        };
        let _ = tx.send(event);
    });
}

impl Ctx {
    /// The configuration file as it is now (the console may have changed it).
    fn current_config(&self) -> Config {
        Config::load(&self.config_path).unwrap_or_else(|_| self.config.clone())
    }

    fn real_root(&self) -> bool {
        self.root == Path::new("/")
    }
}

/// Runs a system command with a deadline; `Err` says why it failed.
fn run_bounded(program: &str, args: &[&str], deadline: Duration) -> Result<(), String> {
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program} cannot run: {e}"))?;
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!(
                    "{program} {}: {status} {}",
                    args.join(" "),
                    err.trim()
                ));
            }
            Ok(None) if started.elapsed() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not finish within {} s",
                    deadline.as_secs()
                ));
            }
        }
    }
}

fn write_network(ctx: &Ctx, plan: &super::netconf::Plan) -> Result<String, String> {
    let written = super::netconf::write(&ctx.root, plan)?;
    let names: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let dir = super::under_root(&ctx.root, super::netconf::NETWORK_DIR);
    let saved = format!("Saved {} in {}", names.join(", "), dir.display());
    if !ctx.real_root() {
        return Ok(format!("{saved}."));
    }
    match run_bounded("networkctl", &["reload"], Duration::from_secs(10)) {
        Ok(()) => Ok(format!("{saved}; applied (networkctl reload).")),
        // Saved all the same: the message says so (an error would read "Not saved").
        Err(why) => Ok(format!(
            "{saved}, but not applied: {why}. Run networkctl reload as root."
        )),
    }
}

fn save_proxy(ctx: &Ctx, proxy: Option<crate::config::ProxyUrl>) -> Result<String, String> {
    let value = proxy
        .as_ref()
        .map(|p| p.expose().as_str().trim_end_matches('/').to_string());
    super::config_file::set_key(&ctx.config_path, "cloud", "proxy", value.as_deref())?;
    let what = match &proxy {
        Some(p) => format!("Cloud proxy {p} saved"),
        None => "Cloud proxy removed".to_string(),
    };
    if !ctx.real_root() {
        return Ok(format!(
            "{what}; the agent uses it once restarted: systemctl restart bgw-agent"
        ));
    }
    // The agent reads the proxy when it starts. A restart stops running jobs (backups,
    // restores, a sync), so it is left for later while any runs.
    let jobs = block_on(async {
        tokio::time::timeout(
            AGENT_TIMEOUT * 2,
            crate::admin::AdminClient::for_config(&ctx.config).jobs(),
        )
        .await
    });
    let running = match jobs {
        Ok(Ok(answer)) => answer.jobs.iter().filter(|j| !j.state.is_final()).count(),
        _ => {
            return Ok(format!(
                "{what}; the agent (not answering) uses it when it starts."
            ))
        }
    };
    if running > 0 {
        return Ok(format!(
            "{what}. {running} job(s) running, so the agent was not restarted: it uses the \
             proxy once restarted. Save it again when they have ended."
        ));
    }
    match run_bounded(
        "systemctl",
        &["try-restart", "bgw-agent"],
        Duration::from_secs(30),
    ) {
        Ok(()) => Ok(format!(
            "{what}; the agent has restarted with the new setting."
        )),
        Err(why) => Ok(format!(
            "{what}, but the agent was not restarted: {why}. Run systemctl restart bgw-agent \
             as root."
        )),
    }
}

fn set_timezone(ctx: &Ctx, zone: &str) -> Result<String, String> {
    super::config_file::set_key(&ctx.config_path, "gateway", "timezone", Some(zone))?;
    let answer = block_on(async {
        tokio::time::timeout(
            AGENT_TIMEOUT * 2,
            crate::admin::AdminClient::for_config(&ctx.config).set_timezone(zone),
        )
        .await
    });
    match answer {
        Ok(Ok(_)) => Ok(format!(
            "Time zone {zone}: in use now, reported at the next heartbeat."
        )),
        Ok(Err(crate::Error::AdminRefused {
            status, message, ..
        })) if status != 404 => Err(format!("the agent refused {zone}: {message}")),
        Ok(Err(crate::Error::AdminRefused { .. })) => Ok(format!(
            "Time zone {zone} saved; restart the agent to use it: systemctl restart bgw-agent"
        )),
        _ => Ok(format!(
            "Time zone {zone} saved; the agent (not answering) uses it when it starts."
        )),
    }
}

fn save_ntp(ctx: &Ctx, servers: &[String]) -> Result<String, String> {
    let saved = super::systime::write_ntp(&ctx.root, servers)?;
    if !ctx.real_root() {
        return Ok(saved);
    }
    match run_bounded(
        "systemctl",
        &["try-restart", "systemd-timesyncd"],
        Duration::from_secs(10),
    ) {
        Ok(()) => Ok(format!("{saved} timesyncd restarted.")),
        Err(why) => Ok(format!(
            "{saved} Not applied: {why}. Run systemctl restart systemd-timesyncd as root."
        )),
    }
}

/// Runs a program of the command prompt, its output lines sent as they come.
fn run_program(program: &super::shell::Program, tx: &mpsc::Sender<Event>) -> Result<(), String> {
    use std::io::BufRead;
    let Some(path) = program.path() else {
        return Err(format!("{} is not installed on this gateway", program.name));
    };
    let mut child = std::process::Command::new(&path)
        .args(&program.args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{} cannot run: {e}", program.name))?;
    let mut readers = Vec::new();
    let out: Option<Box<dyn Read + Send>> = child.stdout.take().map(|o| Box::new(o) as _);
    let err: Option<Box<dyn Read + Send>> = child.stderr.take().map(|e| Box::new(e) as _);
    for stream in [out, err].into_iter().flatten() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(|l| l.ok())
            {
                let _ = tx.send(Event::Output(line));
            }
        }));
    }
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < program.deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} stopped after {} s",
                    program.name,
                    program.deadline.as_secs()
                ));
            }
        }
    };
    for r in readers {
        let _ = r.join();
    }
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} ended with {status}", program.name))
    }
}
