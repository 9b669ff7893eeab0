//! Software updates on the gateway: signed releases offered in the heartbeat answer are
//! checked, downloaded in the background, staged under `state_dir/versions/VERSION/`, and
//! applied in the maintenance window (at once on `UpdateGatewaySoftwareNow` or for an urgent
//! release). The new version runs on trial; [`launcher`] restores the previous one if it does
//! not pass.
//!
//! ```text
//! Idle → Downloading → Staged → Waiting → Applying → Verifying → Committed
//!                                                             ↘ RolledBack(reason)
//! ```
//!
//! Every step is written to [`record::RecordFile`] before it takes effect, so a crash at any
//! point resumes (downloading, waiting) or rolls back (a trial that did not commit).
//!
//! ```no_run
//! # async fn example(config: bgw_agent::Config, ctx: bgw_agent::updater::Context) {
//! let updater = bgw_agent::updater::Updater::open(&config).unwrap();
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! tokio::spawn(updater.clone().run(ctx, shutdown.clone()));
//! updater.offered(None); // what each heartbeat answer carries
//! # }
//! ```

pub mod keys;
pub mod launcher;
pub mod record;
pub mod schedule;
pub mod staging;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bgw_protocol::heartbeat::{UpdateOffer, UpdateResult, UpdateStatus};
use bgw_update::{Refusal, SignedManifest, TrustedKeys, Version};
use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::admin::types::UpdateReport;
use crate::clock::CloudTime;
use crate::cloud::CloudClient;
use crate::cloud_link::CloudLink;
use crate::config::{Config, UpdatesConfig};
use crate::config_channel::ConfigChannel;
use crate::error::Result;
use crate::jobs::{JobKind, JobRunner};
use crate::status::{maintenance_start, rfc3339};
use bgw_protocol::config::GatewayConfig;
use chrono_tz::Tz;
use record::{Phase, RecordFile, Release, UpdateRecord};
use schedule::{Decision, Inputs};
use staging::{Fetched, Versions};

/// Exit status of an agent that stops to restart into a staged version: the launcher (or
/// systemd's restart policy) starts the new version's trial.
pub const EXIT_APPLY_UPDATE: u8 = 75;
/// Exit status of a version that did not pass its trial in time.
pub const EXIT_TRIAL_FAILED: u8 = 70;

/// How often a waiting update looks at the clock and the jobs again.
const RECHECK: Duration = Duration::from_secs(5);
/// Downloads that deliver nothing this many times in a row end as `TRUNCATED`.
const FRUITLESS_DOWNLOADS: u32 = 3;

/// What the update task needs from the rest of the daemon.
#[derive(Clone)]
pub struct Context {
    pub cloud: CloudClient,
    /// When the last heartbeat went through (the trial waits for one).
    pub link: Arc<CloudLink>,
    /// The maintenance window.
    pub config: Arc<ConfigChannel>,
    pub time: CloudTime,
    /// The gateway's time zone (the window is in it; the console can change it).
    pub timezone: crate::gateway_zone::GatewayZone,
    pub jobs: JobRunner,
    /// The admin endpoint, asked for `/status` as the trial's self-check.
    pub admin: Option<SocketAddr>,
}

/// The update service: its persisted record, what the cloud offers, and the task that acts.
pub struct Updater {
    file: RecordFile,
    versions: Versions,
    record: Mutex<UpdateRecord>,
    running: Option<Version>,
    trusted: TrustedKeys,
    config: UpdatesConfig,
    offer: watch::Sender<Option<UpdateOffer>>,
    wake: Notify,
}

impl Updater {
    /// The updater of the state directory in `config`, for this build's version.
    pub fn open(config: &Config) -> Result<Arc<Self>> {
        Self::open_as(config, crate::version())
    }

    /// As [`Updater::open`], for an agent reporting `version`.
    pub fn open_as(config: &Config, version: &str) -> Result<Arc<Self>> {
        let file = RecordFile::new(&config.gateway.state_dir);
        let record = file.load()?;
        let running = Version::parse(version).ok();
        if running.is_none() {
            tracing::warn!(
                version,
                "this build's version is not MAJOR.MINOR.PATCH; updates are off"
            );
        }
        let mut trusted = keys::built_in();
        for key in &config.updates.trusted_keys {
            trusted.add(*key);
        }
        Ok(Arc::new(Updater {
            file,
            versions: Versions::new(&config.gateway.state_dir),
            record: Mutex::new(record),
            running,
            trusted,
            config: config.updates.clone(),
            offer: watch::channel(None).0,
            wake: Notify::new(),
        }))
    }

    fn record(&self) -> UpdateRecord {
        self.record.lock().expect("update record lock").clone()
    }

    /// Changes the record, writes it, and only then makes it the current one.
    fn change(&self, edit: impl FnOnce(&mut UpdateRecord)) -> Result<()> {
        let mut current = self.record.lock().expect("update record lock");
        let mut next = current.clone();
        edit(&mut next);
        if next != *current {
            self.file.save(&next)?;
            *current = next;
        }
        Ok(())
    }

    /// What the heartbeat reports.
    pub fn status(&self) -> UpdateStatus {
        let record = self.record();
        UpdateStatus {
            state: record.phase.wire_state(),
            available_version: self.offer.borrow().as_ref().map(|o| o.version.clone()),
            staged_version: record.phase.staged_version().map(|v| v.to_string()),
            last_attempt: record.last_attempt,
        }
    }

    /// What `bgw-agent status` shows.
    pub fn report(&self, config: &GatewayConfig, timezone: Tz, now: DateTime<Utc>) -> UpdateReport {
        let status = self.status();
        let window = maintenance_start(config);
        UpdateReport {
            running_version: crate::version().to_string(),
            state: status.state,
            staged_version: status.staged_version,
            available_version: status.available_version,
            next_window_start: window.map(|w| rfc3339(w.next_window_start(now, timezone))),
            apply_now: self.record().apply_now,
            last_attempt: status.last_attempt,
        }
    }

    /// The release the latest heartbeat answer offered (`None`: nothing newer).
    pub fn offered(&self, offer: Option<UpdateOffer>) {
        if offer.is_none() {
            // The cloud offers nothing: an earlier "update now" has nothing left to apply.
            let record = self.record();
            if record.apply_now && record.phase.release().is_none() {
                if let Err(e) = self.change(|r| r.apply_now = false) {
                    tracing::error!(error = %e, "cannot record the software update state");
                }
            }
        }
        let changed = self.offer.send_if_modified(|current| {
            let changed = *current != offer;
            *current = offer;
            changed
        });
        if changed {
            self.wake.notify_one();
        }
    }

    /// `UpdateGatewaySoftwareNow`: apply the offered release without waiting for the window.
    pub fn update_now(&self) -> Result<()> {
        self.change(|r| r.apply_now = true)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Runs until `shutdown`; cancels `shutdown` itself to restart into a staged version.
    pub async fn run(self: Arc<Self>, ctx: Context, shutdown: CancellationToken) {
        let Some(running) = self.running else {
            return;
        };
        if let Phase::Verifying {
            release, deadline, ..
        } = self.record().phase
        {
            if release.version() == running {
                self.trial(&ctx, deadline, &shutdown).await;
            }
        }
        let mut offers = self.offer.subscribe();
        while !shutdown.is_cancelled() {
            let result = match self.record().phase {
                Phase::Downloading { release } => self.download(&ctx, release, &shutdown).await,
                Phase::Staged { release } => self.change(|r| {
                    r.phase = Phase::Waiting {
                        release,
                        jobs_since: None,
                    }
                }),
                Phase::Waiting {
                    release,
                    jobs_since,
                } => self.wait(&ctx, release, jobs_since, &shutdown).await,
                Phase::Applying { .. } => {
                    // This process stops; the launcher starts the trial.
                    shutdown.cancel();
                    return;
                }
                Phase::Idle
                | Phase::Committed { .. }
                | Phase::RolledBack { .. }
                | Phase::Verifying { .. } => {
                    let offer = offers.borrow_and_update().clone();
                    if let Some(offer) = offer {
                        if let Err(e) = self.consider(running, offer, ctx.time.now_utc()) {
                            tracing::error!(error = %e, "cannot record the software update state");
                        }
                    }
                    if matches!(
                        self.record().phase,
                        Phase::Idle
                            | Phase::Committed { .. }
                            | Phase::RolledBack { .. }
                            | Phase::Verifying { .. }
                    ) {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = offers.changed() => {}
                            _ = self.wake.notified() => {}
                        }
                    }
                    Ok(())
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "software update step failed; retrying in 30 s");
                if crate::activation::sleep_or_cancel(&shutdown, Duration::from_secs(30)).await {
                    return;
                }
            }
        }
    }

    /// Checks an offered release; starts its download or refuses it.
    fn consider(&self, running: Version, offer: UpdateOffer, now: DateTime<Utc>) -> Result<()> {
        let record = self.record();
        let Ok(offered) = Version::parse(&offer.version) else {
            tracing::warn!(version = %offer.version, "the cloud offers a release with an invalid version");
            return Ok(());
        };
        if offered == running || record.rejected.contains(&offered) {
            return Ok(());
        }
        let signed = SignedManifest {
            manifest: offer.manifest,
            key_id: offer.key_id,
            signature: offer.signature,
        };
        let checked = self.trusted.verify(&signed).and_then(|manifest| {
            if manifest.version != offered {
                return Err(Refusal::Malformed(format!(
                    "the offer names version {offered}, its signed manifest {}",
                    manifest.version
                )));
            }
            manifest.check_upgrade(running)?;
            Ok(manifest)
        });
        match checked {
            Err(refusal) => self.refuse(offered, now, &refusal),
            Ok(manifest) => {
                tracing::info!(version = %offered, size = manifest.size, urgent = manifest.urgent, "downloading a software update");
                self.change(|r| {
                    r.last_attempt = Some(bgw_protocol::heartbeat::UpdateAttempt {
                        version: offered.to_string(),
                        started_at: now,
                        ended_at: None,
                        result: UpdateResult::InProgress,
                        reason: None,
                    });
                    r.phase = Phase::Downloading {
                        release: Release { signed, manifest },
                    };
                })
            }
        }
    }

    fn refuse(&self, version: Version, now: DateTime<Utc>, refusal: &Refusal) -> Result<()> {
        tracing::warn!(%version, reason = %refusal, "software update refused");
        self.change(|r| {
            let started = r.attempt_start(version, now);
            r.reject(version);
            r.end_attempt(
                version,
                started,
                now,
                UpdateResult::Refused,
                Some(refusal.to_string()),
            );
            if r.phase
                .release()
                .is_some_and(|rel| rel.version() == version)
            {
                r.phase = Phase::Idle;
            }
        })?;
        // Keep what runs, what is committed and a release still staged.
        let record = self.record();
        let keep = [
            self.running,
            record.committed,
            record.phase.staged_version(),
        ];
        self.versions
            .prune(&keep.into_iter().flatten().collect::<Vec<_>>());
        Ok(())
    }

    async fn download(
        &self,
        ctx: &Context,
        release: Release,
        shutdown: &CancellationToken,
    ) -> Result<()> {
        let manifest = &release.manifest;
        let mut fruitless = 0;
        loop {
            let fetched = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                f = self.versions.fetch(&ctx.cloud, manifest) => f,
            };
            let retry = match fetched {
                Ok(Fetched::Complete) => break,
                Ok(Fetched::TooLong { got }) => {
                    let refusal = Refusal::Truncated {
                        expected: manifest.size,
                        got,
                    };
                    return self.refuse(manifest.version, ctx.time.now_utc(), &refusal);
                }
                Ok(Fetched::Interrupted { progressed, detail }) => {
                    fruitless = if progressed { 0 } else { fruitless + 1 };
                    if fruitless >= FRUITLESS_DOWNLOADS {
                        let refusal = Refusal::Truncated {
                            expected: manifest.size,
                            got: self.versions.downloaded(manifest.version),
                        };
                        return self.refuse(manifest.version, ctx.time.now_utc(), &refusal);
                    }
                    tracing::warn!(version = %manifest.version, downloaded = self.versions.downloaded(manifest.version), %detail, "artifact download interrupted; resuming");
                    Duration::from_secs(2)
                }
                Err(crate::Error::CloudRefused { status: 404, .. }) => {
                    tracing::warn!(version = %manifest.version, "the release is no longer published");
                    return self.change(|r| {
                        r.phase = Phase::Idle;
                        r.last_attempt = None;
                    });
                }
                Err(e) => {
                    tracing::warn!(version = %manifest.version, error = %e, "artifact download failed; retrying");
                    Duration::from_secs(10)
                }
            };
            if crate::activation::sleep_or_cancel(shutdown, retry).await {
                return Ok(());
            }
        }
        match self.versions.stage(manifest).await? {
            Err(refusal) => self.refuse(manifest.version, ctx.time.now_utc(), &refusal),
            Ok(()) => {
                tracing::info!(version = %manifest.version, "software update verified and staged");
                self.change(|r| r.phase = Phase::Staged { release })
            }
        }
    }

    /// True while backup or restore jobs are queued or running.
    fn jobs_running(jobs: &JobRunner) -> bool {
        jobs.list().is_ok_and(|all| {
            all.iter().any(|j| {
                matches!(j.kind, JobKind::Backup | JobKind::Restore) && !j.state.is_final()
            })
        })
    }

    async fn wait(
        &self,
        ctx: &Context,
        release: Release,
        jobs_since: Option<DateTime<Utc>>,
        shutdown: &CancellationToken,
    ) -> Result<()> {
        let record = self.record();
        let now = ctx.time.now_utc();
        let inputs = Inputs {
            now,
            urgent: release.manifest.urgent,
            update_now: record.apply_now,
            published_at: release.manifest.published_at,
            window: maintenance_start(&ctx.config.current()),
            timezone: ctx.timezone.get(),
            apply_missed_after: self.config.apply_missed_after,
            jobs_running: Self::jobs_running(&ctx.jobs),
            jobs_since,
            job_wait_limit: self.config.job_wait_limit,
        };
        let pause = match schedule::decide(&inputs) {
            Decision::Apply(why) => {
                let previous = self.running.expect("the updater runs with a version");
                tracing::info!(version = %release.version(), ?why, "applying the software update: restarting into it");
                self.change(|r| r.phase = Phase::Applying { release, previous })?;
                shutdown.cancel();
                return Ok(());
            }
            Decision::WaitForWindow(at) => {
                tracing::debug!(version = %release.version(), window = %rfc3339(at), "update waits for the maintenance window");
                (at - now).to_std().unwrap_or_default().min(RECHECK)
            }
            Decision::WaitForJobs { until } => {
                if jobs_since.is_none() {
                    tracing::info!(version = %release.version(), until = %rfc3339(until), "update waits for running backup and restore jobs");
                    self.change(|r| {
                        r.phase = Phase::Waiting {
                            release,
                            jobs_since: Some(now),
                        }
                    })?;
                }
                RECHECK
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = self.wake.notified() => {}
        }
        // A newer release replaces the one waiting.
        if let Some(offer) = self.offer.borrow().clone() {
            if let (Ok(v), Some(running)) = (Version::parse(&offer.version), self.running) {
                let waiting = self.record().phase.release().map(Release::version);
                if waiting.is_some_and(|w| v > w) {
                    return self.consider(running, offer, ctx.time.now_utc());
                }
            }
        }
        Ok(())
    }

    /// This version is on trial: commit it once it passed its self-check and heartbeated the
    /// cloud; exit when the deadline passes first (the launcher then rolls back).
    async fn trial(&self, ctx: &Context, deadline: DateTime<Utc>, shutdown: &CancellationToken) {
        let local_now: DateTime<Utc> = ctx.time.local_now().into();
        let left = (deadline - local_now).to_std().unwrap_or_default() + Duration::from_secs(2);
        tracing::info!(version = crate::version(), deadline = %rfc3339(deadline), "on trial: waiting for the self-check and a heartbeat");
        let passed = async {
            loop {
                let heartbeat = ctx.link.last_heartbeat().is_some();
                if heartbeat && self_check(ctx.admin).await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(left) => {
                tracing::error!(version = crate::version(), "did not pass the trial in time; stopping so that the previous version runs again");
                std::process::exit(EXIT_TRIAL_FAILED.into());
            }
            _ = passed => {
                let now = ctx.time.now_utc();
                let committed = self.change(|r| {
                    if let Phase::Verifying { release, previous, started_at, .. } = r.phase.clone() {
                        let version = release.version();
                        r.committed = Some(version);
                        r.end_attempt(version, started_at, now, UpdateResult::Succeeded, None);
                        r.phase = Phase::Committed { version };
                        r.apply_now = false;
                        self.versions.prune(&[version, previous]);
                    }
                });
                match committed {
                    Ok(()) => tracing::info!(version = crate::version(), "software update committed"),
                    Err(e) => tracing::error!(error = %e, "cannot commit the software update"),
                }
            }
        }
    }
}

/// The trial's self-check: the admin endpoint answers `/status` (the store, the runtime and
/// the HTTP stack work).
async fn self_check(admin: Option<SocketAddr>) -> bool {
    let Some(addr) = admin else {
        return true;
    };
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return false;
    };
    client
        .get(format!("http://{addr}/status"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}
