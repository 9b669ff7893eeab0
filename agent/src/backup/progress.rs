//! A running job's progress: into the job record and to the cloud (`jobs/progress`) every
//! second, until the job's work ends.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bgw_protocol::backup::{AgentJobState, JobProgress};

use super::pipeline::Stats;
use crate::cloud::backup::is_job_not_running;
use crate::cloud::CloudClient;
use crate::jobs::JobContext;

/// How often progress is reported.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What the reports say: bytes covered of `total`, and the state.
pub struct Progress {
    pub stats: Arc<Stats>,
    /// Bytes the job covers (the disks' capacities), 0 until known.
    pub total: AtomicU64,
    /// For restores: bytes written so far (backups use `stats.done`).
    pub written: AtomicU64,
    pub restore: bool,
}

impl Progress {
    pub fn new(stats: Arc<Stats>, restore: bool) -> Arc<Self> {
        Arc::new(Progress {
            stats,
            total: AtomicU64::new(0),
            written: AtomicU64::new(0),
            restore,
        })
    }

    fn done(&self) -> u64 {
        if self.restore {
            self.written.load(Ordering::Relaxed)
        } else {
            self.stats.done.load(Ordering::Relaxed)
        }
    }

    fn report(&self, job_id: &str, state: AgentJobState) -> JobProgress {
        let total = self.total.load(Ordering::Relaxed);
        let done = self.done().min(total);
        JobProgress {
            job_id: job_id.to_string(),
            state,
            percent_done: if total == 0 {
                0.0
            } else {
                done as f64 * 100.0 / total as f64
            },
            bytes_read: if self.restore {
                done
            } else {
                self.stats.read.load(Ordering::Relaxed)
            },
            backup_size_bytes: (total > 0).then_some(total),
        }
    }
}

/// Runs `work` while reporting progress every [`INTERVAL`]. A report the cloud answers with
/// `JobNotRunning` (the job was stopped or has ended there) cancels the job.
pub async fn while_running<T>(
    ctx: &JobContext,
    cloud: &CloudClient,
    progress: &Progress,
    work: impl Future<Output = T>,
) -> T {
    let job_id = ctx.id.to_string();
    let reporter = async {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let total = progress.total.load(Ordering::Relaxed);
            ctx.progress(progress.done().min(total), (total > 0).then_some(total));
            let report = progress.report(&job_id, AgentJobState::Running);
            match tokio::time::timeout(INTERVAL, cloud.job_progress(&report)).await {
                Ok(Err(e)) if is_job_not_running(&e) => {
                    tracing::info!("the cloud says the job has ended; stopping it");
                    ctx.cancel.cancel();
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "progress report failed"),
                _ => {}
            }
        }
    };
    tokio::select! {
        out = work => out,
        () = reporter => unreachable!("the reporter loops until the work ends"),
    }
}

/// One report outside the loop (e.g. `ABORTING` while cleaning up), best effort.
pub async fn report_once(
    cloud: &CloudClient,
    job_id: &str,
    progress: &Progress,
    state: AgentJobState,
) {
    let report = progress.report(job_id, state);
    let _ = tokio::time::timeout(INTERVAL, cloud.job_progress(&report)).await;
}
