//! Backup and restore jobs: what the agent does with `BACKUP_VM`, `RESTORE_VM` and
//! `CANCEL_JOB`.
//!
//! * **Backup** ([`job`]): a vCenter session of its own, a snapshot named
//!   `bgw-backup-<jobId>` (quiesced when VMware Tools runs, never with memory), the snapshot's
//!   disks read through a [`DiskTransport`] in fixed 4 MiB chunks ([`plan`]: with changed-block
//!   tracking only the changed or allocated areas), each chunk hashed, asked about, compressed
//!   and uploaded through the shared throttle ([`pipeline`]); progress every second; the
//!   snapshot removed whatever happens ([`snapshots`]).
//! * **Restore** ([`restore`]): a new VM placed by the restore metadata, each disk written from
//!   its chunks (downloaded, decompressed, checked against their names) in order.
//! * **Jobs** run in the [`JobRunner`] under the cloud's job id (kinds `Backup` and `Restore`,
//!   four at once together); `CANCEL_JOB` cancels one, and it stops within a second.
//! * **Reports** go on `jobs/progress` (best effort, every second) and `jobs/complete` (through
//!   the store's outbox, so an outcome survives a restart and an unreachable cloud).
//!
//! ```no_run
//! # fn demo(svc: std::sync::Arc<bgw_agent::backup::BackupService>, cmd: bgw_protocol::backup::BackupVm) {
//! let accepted = svc.start_backup(cmd); // CommandOutcome::Succeeded once queued
//! # let _ = accepted; }
//! ```

pub mod job;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod restore;
pub mod snapshots;

use std::sync::Arc;

use bgw_protocol::backup::{
    BackupVm, CancelJob, JobComplete, JobOutcome as WireOutcome, RestoreVm,
};
use bgw_protocol::commands::{CommandOutcome, TestStage};
use tokio_util::sync::CancellationToken;
use vsphere_client::disk_io::{DatastoreTransport, DiskTransport};

use crate::cloud::CloudClient;
use crate::hypervisor::HypervisorLink;
use crate::jobs::{JobId, JobKind, JobOutcome, JobRunner};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::state::{OutboxItem, Store};

/// Name prefix of the snapshots backups take; leftovers are found by it.
pub const SNAPSHOT_PREFIX: &str = "bgw-backup-";

/// Makes the disk transport for a vCenter session (the datastore over HTTPS by default).
pub type TransportFactory =
    Arc<dyn Fn(vsphere_client::Client) -> Arc<dyn DiskTransport> + Send + Sync>;

/// Everything backup and restore jobs need. One per daemon.
pub struct BackupService {
    /// Snapshots taken and outcomes reported, so a restart finds what was left.
    pub store: Store,
    /// Job outcomes for the cloud.
    pub outbox: Arc<Outbox>,
    /// Chunk uploads draw from the shared upload throttle.
    pub throttle: bgw_scheduler::throttle::Throttle,
    pub metrics: Arc<Metrics>,
    pub cloud: CloudClient,
    pub jobs: JobRunner,
    pub link: Arc<dyn HypervisorLink>,
    pub transport: TransportFactory,
    /// Written into each snapshot's description, so leftovers of this gateway are told apart
    /// from another gateway's running backups.
    pub marker: String,
    /// The daemon's shutdown: a job stopped by it is interrupted, not cancelled.
    pub shutdown: CancellationToken,
    /// zstd level of uploaded chunks (1–3 keep up with the network; 1 by default).
    pub zstd_level: i32,
}

/// What the daemon hands [`BackupService::new`].
pub struct BackupParts {
    pub store: Store,
    pub outbox: Arc<Outbox>,
    pub throttle: bgw_scheduler::throttle::Throttle,
    pub metrics: Arc<Metrics>,
    pub cloud: CloudClient,
    pub jobs: JobRunner,
    pub link: Arc<dyn HypervisorLink>,
}

impl BackupService {
    pub fn new(parts: BackupParts, agent_id: &str, shutdown: CancellationToken) -> Arc<Self> {
        let BackupParts {
            store,
            outbox,
            throttle,
            metrics,
            cloud,
            jobs,
            link,
        } = parts;
        Arc::new(BackupService {
            store,
            outbox,
            throttle,
            metrics,
            cloud,
            jobs,
            link,
            transport: Arc::new(|c| Arc::new(DatastoreTransport::new(c)) as Arc<dyn DiskTransport>),
            marker: format!("backup gateway agent {agent_id}"),
            shutdown,
            zstd_level: 1,
        })
    }

    /// Queues a backup job. `Succeeded` means accepted; the outcome is reported later.
    pub fn start_backup(self: &Arc<Self>, cmd: BackupVm) -> CommandOutcome {
        let svc = self.clone();
        let id = JobId::from(cmd.job_id.as_str());
        let subject = cmd.vm_arn.clone();
        let job_id = cmd.job_id.clone();
        let submitted = self
            .jobs
            .submit_as(id, JobKind::Backup, &subject, move |ctx| async move {
                let outcome = job::run(&svc, cmd, &ctx).await;
                (svc.finish(&job_id, outcome), ())
            });
        accepted(submitted.map(|_| ()))
    }

    /// Queues a restore job.
    pub fn start_restore(self: &Arc<Self>, cmd: RestoreVm) -> CommandOutcome {
        let svc = self.clone();
        let id = JobId::from(cmd.job_id.as_str());
        let subject = cmd.recovery_point_arn.clone();
        let job_id = cmd.job_id.clone();
        let submitted =
            self.jobs
                .submit_as(id, JobKind::Restore, &subject, move |ctx| async move {
                    let outcome = restore::run(&svc, cmd, &ctx).await;
                    (svc.finish(&job_id, outcome), ())
                });
        accepted(submitted.map(|_| ()))
    }

    /// Cancels a job. A job this gateway does not run (finished, or never received) is
    /// reported `ABORTED` so the cloud does not wait for it; for a finished job that changes
    /// nothing.
    pub fn cancel(&self, cmd: CancelJob) -> CommandOutcome {
        if !self.jobs.cancel(&JobId::from(cmd.job_id.as_str())) {
            tracing::info!(job = %cmd.job_id, "cancel for a job that is not running here");
            self.report(JobComplete {
                job_id: cmd.job_id,
                outcome: WireOutcome::Aborted {
                    message: "the job is not running on the gateway".into(),
                },
            });
        }
        CommandOutcome::Succeeded
    }

    /// Queues the job's outcome for the cloud and turns it into the runner's outcome.
    fn finish(&self, job_id: &str, outcome: WireOutcome) -> JobOutcome {
        let local = match &outcome {
            WireOutcome::Succeeded { .. } => JobOutcome::Succeeded(None),
            WireOutcome::Failed { message } => JobOutcome::Failed(message.clone()),
            WireOutcome::Aborted { message } => JobOutcome::Cancelled(message.clone()),
        };
        self.report(JobComplete {
            job_id: job_id.to_string(),
            outcome,
        });
        local
    }

    fn report(&self, complete: JobComplete) {
        if let Err(e) = self.outbox.push(&OutboxItem::JobComplete(complete)) {
            tracing::error!(error = %e, "cannot queue a job's outcome");
        }
    }

    /// At start: reports backup and restore jobs the last run of the agent left unfinished
    /// as failed (once), and keeps removing snapshots backups left behind.
    pub async fn run_cleanup(self: Arc<Self>) {
        self.report_interrupted();
        snapshots::janitor(self).await;
    }

    fn report_interrupted(&self) {
        let Ok(tree) = self.store.tree("backup_reported") else {
            return;
        };
        for job in self.jobs.list().unwrap_or_default() {
            if !job.interrupted || !matches!(job.kind, JobKind::Backup | JobKind::Restore) {
                continue;
            }
            if tree.contains_key(job.id.as_str()).unwrap_or(true) {
                continue;
            }
            tracing::warn!(job = %job.id, "reporting a job the agent's stop interrupted");
            self.report(JobComplete {
                job_id: job.id.to_string(),
                outcome: WireOutcome::Failed {
                    message: job
                        .message
                        .clone()
                        .unwrap_or_else(|| crate::jobs::INTERRUPTED.to_string()),
                },
            });
            let _ = tree.insert(job.id.as_str(), &b"1"[..]);
        }
    }
}

fn accepted(submitted: crate::Result<()>) -> CommandOutcome {
    match submitted {
        Ok(()) => CommandOutcome::Succeeded,
        Err(e) => CommandOutcome::Failed {
            stage: TestStage::Unavailable,
            message: format!("the job could not be queued: {e}"),
        },
    }
}
