//! The launcher: `bgw-agent run` starts the committed version, runs a new version on trial
//! and restores the previous one when the trial fails.
//!
//! The packaged binary (read-only `/usr`) is the launcher. At start it finishes what the
//! previous process left in the update record: a pending apply starts the trial, a trial that
//! never committed (the new version crashed, hung, exited or the power went) is rolled back.
//! Then it runs the committed version from `state_dir/versions/` (by `exec`, so the process
//! stays the same), or itself when none is newer.
//!
//! - **Under systemd** (`NOTIFY_SOCKET` set) the agent exits with [`EXIT_APPLY_UPDATE`] to
//!   apply; the unit's restart policy starts the launcher again, which `exec`s the trial. A
//!   trial that exits, crashes or misses the deadline (it stops itself; the watchdog catches a
//!   hang) is rolled back at the next start.
//! - **Otherwise** the process the operator started stays in charge: when its agent stops to
//!   apply, it [`supervises`](Launcher::supervise) the new version as a child, and rolls back
//!   (then `exec`s the previous version) when the child exits or the deadline passes before
//!   it commits.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bgw_update::Version;
use chrono::{DateTime, Utc};

use super::record::{BaseBinary, Phase, RecordFile, UpdateRecord};
use super::staging::Versions;
use super::{EXIT_APPLY_UPDATE, EXIT_TRIAL_FAILED};
use crate::config::Config;
use crate::error::{Error, Result};

/// Environment variable telling an agent how it was started.
pub const ROLE_ENV: &str = "BGW_AGENT_ROLE";

/// How often the supervisor looks at the trial.
const POLL: Duration = Duration::from_millis(200);
/// A trial child gets this long to stop after SIGTERM before SIGKILL.
const CHILD_STOP_GRACE: Duration = Duration::from_secs(3);

/// Who started this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The operator or systemd: this process launches.
    Launcher,
    /// `exec`ed by the launcher, which already chose this version.
    Launched,
    /// A child of a supervising launcher: applying an update means exiting.
    Child,
}

impl Role {
    pub fn from_env() -> Self {
        match std::env::var(ROLE_ENV).as_deref() {
            Ok("launched") => Role::Launched,
            Ok("child") => Role::Child,
            _ => Role::Launcher,
        }
    }
}

/// What the launcher does at start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    InProcess,
    Supervise,
    /// Replace this process with that version's agent.
    Exec(Version),
}

/// What `bgw-agent run` does after the launcher looked at the record.
#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    /// Run the agent in this process.
    InProcess,
    /// Supervise the trial of a new version.
    Supervise,
}

pub struct Launcher {
    file: RecordFile,
    versions: Versions,
    config_path: PathBuf,
    trial_deadline: Duration,
    own: Version,
    role: Role,
    systemd: bool,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

impl Launcher {
    pub fn new(config: &Config, config_path: &Path) -> Self {
        let own = Version::parse(crate::version()).unwrap_or(Version {
            major: 0,
            minor: 0,
            patch: 0,
        });
        let systemd = std::env::var_os("NOTIFY_SOCKET").is_some();
        Self::with(config, config_path, own, Role::from_env(), systemd)
    }

    /// A launcher of version `own`, started as `role`, under systemd or not.
    pub(crate) fn with(
        config: &Config,
        config_path: &Path,
        own: Version,
        role: Role,
        systemd: bool,
    ) -> Self {
        Launcher {
            file: RecordFile::new(&config.gateway.state_dir),
            versions: Versions::new(&config.gateway.state_dir),
            config_path: config_path.to_owned(),
            trial_deadline: config.updates.trial_deadline,
            own,
            role,
            systemd,
        }
    }

    /// Finishes what the previous process left, then `exec`s the committed version or says
    /// how to go on.
    pub fn start(&self) -> Result<Start> {
        if self.role != Role::Launcher {
            return Ok(Start::InProcess);
        }
        let mut record = self.file.load()?;
        let before = record.clone();
        record.base = Some(BaseBinary {
            version: self.own,
            path: std::env::current_exe().map_err(|source| Error::Io {
                what: "finding the agent's own binary".into(),
                source,
            })?,
        });
        let plan = self.plan(&mut record, now());
        if record != before {
            self.file.save(&record)?;
        }
        match plan {
            Plan::InProcess => Ok(Start::InProcess),
            Plan::Supervise => Ok(Start::Supervise),
            Plan::Exec(version) => Err(self.exec(&record, version)),
        }
    }

    /// What to run, given the record a previous process left (changed in place: a trial that
    /// never committed is rolled back, a pending apply under systemd starts its trial).
    pub(crate) fn plan(&self, record: &mut UpdateRecord, now: DateTime<Utc>) -> Plan {
        match record.phase.clone() {
            Phase::Applying { release, .. } if self.systemd => {
                self.begin_trial(record, now);
                return Plan::Exec(release.version());
            }
            Phase::Applying { .. } => return Plan::Supervise,
            Phase::Verifying {
                release, previous, ..
            } => {
                let reason = format!(
                    "version {} stopped before it passed its trial (it exited, crashed, hung or the gateway restarted)",
                    release.version()
                );
                tracing::warn!(version = %release.version(), %previous, "rolling back a trial that did not commit");
                record.roll_back(previous, reason, now);
            }
            _ => {}
        }
        match record.committed {
            Some(c) if c > self.own && self.versions.is_staged(c) => Plan::Exec(c),
            _ => Plan::InProcess,
        }
    }

    /// After the agent in this process stopped: exit, or restart into the staged version.
    pub fn after_daemon(&self, signalled: bool) -> Result<ExitCode> {
        if signalled || !matches!(self.file.load()?.phase, Phase::Applying { .. }) {
            return Ok(ExitCode::SUCCESS);
        }
        if self.role == Role::Child || self.systemd {
            return Ok(ExitCode::from(EXIT_APPLY_UPDATE));
        }
        self.supervise()
    }

    /// Moves the release being applied to its trial, until `now` plus the deadline.
    fn begin_trial(&self, record: &mut UpdateRecord, now: DateTime<Utc>) -> DateTime<Utc> {
        let deadline =
            now + chrono::Duration::from_std(self.trial_deadline).unwrap_or(chrono::Duration::MAX);
        if let Phase::Applying { release, previous } = record.phase.clone() {
            tracing::info!(version = %release.version(), %previous, deadline = %deadline, "starting the trial of the new version");
            record.phase = Phase::Verifying {
                release,
                previous,
                started_at: now,
                deadline,
            };
        }
        deadline
    }

    /// The binary of `version`: staged under `versions/`, else the packaged one.
    fn binary(&self, record: &UpdateRecord, version: Version) -> PathBuf {
        if self.versions.is_staged(version) {
            return self.versions.binary(version);
        }
        match &record.base {
            Some(base) if base.path.is_file() => base.path.clone(),
            _ => std::env::current_exe().unwrap_or_else(|_| PathBuf::from("bgw-agent")),
        }
    }

    fn command(&self, binary: &Path, role: &str) -> std::process::Command {
        let mut command = std::process::Command::new(binary);
        command
            .arg("run")
            .arg("--config")
            .arg(&self.config_path)
            .env(ROLE_ENV, role);
        command
    }

    /// Replaces this process with `version`'s agent; returns only the error of failing to.
    fn exec(&self, record: &UpdateRecord, version: Version) -> Error {
        use std::os::unix::process::CommandExt;
        let binary = self.binary(record, version);
        tracing::info!(%version, binary = %binary.display(), "starting the agent");
        let source = self.command(&binary, "launched").exec();
        Error::Io {
            what: format!("starting {}", binary.display()),
            source,
        }
    }

    /// Runs the trial of the release being applied as a child, and the committed version
    /// after it; rolls back when the trial fails. Returns the exit status to exit with.
    pub fn supervise(&self) -> Result<ExitCode> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                what: "starting the supervisor's runtime".into(),
                source,
            })?;
        runtime.block_on(self.supervise_async())
    }

    async fn supervise_async(&self) -> Result<ExitCode> {
        use tokio::signal::unix::{signal, SignalKind};
        let signal_err = |source| Error::Io {
            what: "installing signal handlers".into(),
            source,
        };
        let mut term = signal(SignalKind::terminate()).map_err(signal_err)?;
        let mut int = signal(SignalKind::interrupt()).map_err(signal_err)?;
        loop {
            let mut record = self.file.load()?;
            let (version, mut trial) = match record.phase.clone() {
                Phase::Applying { release, previous } => {
                    let deadline = self.begin_trial(&mut record, now());
                    self.file.save(&record)?;
                    (release.version(), Some((deadline, previous)))
                }
                Phase::Verifying {
                    release,
                    previous,
                    deadline,
                    ..
                } => (release.version(), Some((deadline, previous))),
                _ => (record.committed.unwrap_or(self.own), None),
            };
            let binary = self.binary(&record, version);
            let started = Instant::now();
            let mut child = self.spawn_child(&binary)?;
            tracing::info!(%version, pid = child.id(), trial = trial.is_some(), "supervising the agent");
            let status = loop {
                tokio::select! {
                    _ = term.recv() => return Ok(stop_child(&mut child, libc::SIGTERM, SHUTDOWN).await),
                    _ = int.recv() => return Ok(stop_child(&mut child, libc::SIGINT, SHUTDOWN).await),
                    status = child.wait() => break status.map_err(|source| Error::Io {
                        what: "waiting for the agent".into(),
                        source,
                    })?,
                    _ = tokio::time::sleep(POLL) => {
                        let Some((deadline, previous)) = trial else { continue };
                        if self.committed(version) {
                            tracing::info!(%version, after_ms = started.elapsed().as_millis() as u64, "the new version passed its trial");
                            trial = None;
                        } else if now() >= deadline {
                            tracing::warn!(%version, "the new version did not pass its trial in time; stopping it");
                            stop_child(&mut child, libc::SIGTERM, CHILD_STOP_GRACE).await;
                            if self.committed(version) {
                                // It committed while being stopped: it stays.
                                break std::process::ExitStatus::default();
                            }
                            let reason = format!(
                                "version {version} did not pass its self-check and heartbeat the cloud within {} s",
                                self.trial_deadline.as_secs()
                            );
                            return Err(self.roll_back_and_restart(previous, reason, started));
                        }
                    }
                }
            };
            record = self.file.load()?;
            if let Some((_, previous)) = trial {
                if !self.committed(version) {
                    let how = match (
                        status.code(),
                        std::os::unix::process::ExitStatusExt::signal(&status),
                    ) {
                        (Some(EXIT_TRIAL_FAILED_I32), _) => {
                            "stopped itself: its trial deadline passed".to_string()
                        }
                        (Some(code), _) => format!("exited with status {code}"),
                        (None, Some(sig)) => format!("was killed by signal {sig}"),
                        _ => "ended".to_string(),
                    };
                    let reason = format!(
                        "version {version} {how} {:.1} s after it started, before passing its trial",
                        started.elapsed().as_secs_f64()
                    );
                    return Err(self.roll_back_and_restart(previous, reason, started));
                }
            }
            if status.code() == Some(EXIT_APPLY_UPDATE.into())
                && matches!(record.phase, Phase::Applying { .. })
            {
                continue;
            }
            if status.success() && trial.is_some() {
                // Stopped by the deadline check after it had committed: start it again.
                continue;
            }
            return Ok(exit_code(status));
        }
    }

    fn committed(&self, version: Version) -> bool {
        self.file.load().is_ok_and(|r| {
            r.committed == Some(version) && !matches!(r.phase, Phase::Verifying { .. })
        })
    }

    /// Records the rollback and `exec`s the previous version; returns only on failure.
    fn roll_back_and_restart(&self, previous: Version, reason: String, started: Instant) -> Error {
        let mut record = match self.file.load() {
            Ok(r) => r,
            Err(e) => return e,
        };
        tracing::error!(%previous, %reason, "rolling back the software update");
        record.roll_back(previous, reason, now());
        if let Err(e) = self.file.save(&record) {
            return e;
        }
        tracing::info!(%previous, after_ms = started.elapsed().as_millis() as u64, "rolled back; starting the previous version");
        self.exec(&record, previous)
    }

    fn spawn_child(&self, binary: &Path) -> Result<tokio::process::Child> {
        let mut command = tokio::process::Command::from(self.command(binary, "child"));
        command.env_remove("NOTIFY_SOCKET").kill_on_drop(true);
        let parent = std::process::id();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // The child must not outlive the supervisor (kill -9 of the operator's process).
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        command.spawn().map_err(|source| Error::Io {
            what: format!("starting {}", binary.display()),
            source,
        })
    }
}

const EXIT_TRIAL_FAILED_I32: i32 = EXIT_TRIAL_FAILED as i32;

/// How long the agent gets to stop when the supervisor is asked to stop.
const SHUTDOWN: Duration = Duration::from_secs(crate::daemon::SHUTDOWN_GRACE.as_secs() + 2);

/// Sends `signal` to the child and waits for it; SIGKILL after `grace`.
async fn stop_child(
    child: &mut tokio::process::Child,
    signal: libc::c_int,
    grace: Duration,
) -> ExitCode {
    if let Some(pid) = child.id() {
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(pid as libc::pid_t, signal);
        }
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(Ok(status)) => exit_code(status),
        _ => {
            let _ = child.kill().await;
            ExitCode::FAILURE
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(sig)) => ExitCode::from(128 + sig as u8),
        _ => ExitCode::FAILURE,
    }
}
