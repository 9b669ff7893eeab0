//! The runner with tokio's paused clock: no test waits on the wall clock.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::clock::{CloudTime, SystemClock};

fn runner(shutdown: &CancellationToken) -> (tempfile::TempDir, JobRunner, JobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::state::Store::open(dir.path()).unwrap();
    let jobs = JobStore::new(store.tree("jobs").unwrap());
    let time = CloudTime::new(Arc::new(SystemClock));
    let r = JobRunner::start(jobs.clone(), time, shutdown.clone()).unwrap();
    (dir, r, jobs)
}

/// Lets every task run until all wait (time is paused: this advances no wall clock).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn states(runner: &JobRunner) -> Vec<JobState> {
    runner
        .list()
        .unwrap()
        .into_iter()
        .map(|j| j.state)
        .collect()
}

/// Submits a job that reports its start and then waits for `release`.
fn blocked(
    runner: &JobRunner,
    kind: JobKind,
    started: &mpsc::UnboundedSender<JobId>,
    release: &Arc<Notify>,
) -> JobHandle<&'static str> {
    let (started, release) = (started.clone(), release.clone());
    runner
        .submit(kind, "subject", move |ctx| async move {
            let _ = started.send(ctx.id.clone());
            release.notified().await;
            (JobOutcome::Succeeded(Some("done".into())), "value")
        })
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn backups_run_four_at_once_and_syncs_one() {
    let shutdown = CancellationToken::new();
    let (_dir, runner, _) = runner(&shutdown);
    let (tx, mut started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let backups: Vec<_> = (0..6)
        .map(|_| blocked(&runner, JobKind::Backup, &tx, &release))
        .collect();
    let syncs: Vec<_> = (0..2)
        .map(|_| blocked(&runner, JobKind::MetadataSync, &tx, &release))
        .collect();
    settle().await;
    let mut n = 0;
    while started.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, 5, "4 backups and 1 sync start");
    let running = |kind| {
        runner
            .list()
            .unwrap()
            .into_iter()
            .filter(|j| j.kind == kind && j.state == JobState::Running)
            .count()
    };
    assert_eq!(running(JobKind::Backup), 4);
    assert_eq!(running(JobKind::MetadataSync), 1);
    assert_eq!(
        states(&runner)
            .iter()
            .filter(|s| **s == JobState::Queued)
            .count(),
        3
    );

    // Releasing the running ones lets the queued ones start, until all are done.
    for _ in 0..4 {
        release.notify_waiters();
        settle().await;
    }
    assert!(states(&runner).iter().all(|s| *s == JobState::Succeeded));
    for h in backups.into_iter().chain(syncs) {
        assert_eq!(h.done.await.unwrap(), "value");
    }
    let job = &runner.list().unwrap()[0];
    assert_eq!(job.message.as_deref(), Some("done"));
    assert!(job.started_at.is_some() && job.finished_at.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_job_is_cancelled_running_or_queued() {
    let shutdown = CancellationToken::new();
    let (_dir, runner, _) = runner(&shutdown);
    let (tx, _started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let first = blocked(&runner, JobKind::MetadataSync, &tx, &release);
    let second = blocked(&runner, JobKind::MetadataSync, &tx, &release);
    settle().await;
    assert_eq!(states(&runner), vec![JobState::Running, JobState::Queued]);

    assert!(runner.cancel(&second.id), "a queued job can be cancelled");
    assert!(runner.cancel(&first.id), "a running job can be cancelled");
    // The running job ignores its token: it is dropped after the stop grace.
    tokio::time::sleep(STOP_GRACE + Duration::from_secs(1)).await;
    assert_eq!(
        states(&runner),
        vec![JobState::Cancelled, JobState::Cancelled]
    );
    assert!(first.done.await.is_err(), "no value from a cancelled job");
    assert!(
        !runner.cancel(&first.id),
        "a finished job cannot be cancelled"
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_that_fails_says_why_and_reports_progress() {
    let shutdown = CancellationToken::new();
    let (_dir, runner, _) = runner(&shutdown);
    let h = runner
        .submit(JobKind::MetadataSync, "arn:hv", |ctx| async move {
            ctx.progress(3, Some(10));
            (JobOutcome::Failed("cannot list the VMs".into()), ())
        })
        .unwrap();
    h.done.await.unwrap();
    let job = runner.get(&h.id).unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.message.as_deref(), Some("cannot list the VMs"));
    assert_eq!(
        job.progress,
        Progress {
            done: 3,
            total: Some(10)
        }
    );
    assert_eq!(job.subject, "arn:hv");
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_jobs_that_stop_and_drops_those_that_do_not() {
    let shutdown = CancellationToken::new();
    let (_dir, runner, _) = runner(&shutdown);
    // One job stops cleanly when told; one ignores cancellation.
    let polite = runner
        .submit(JobKind::Backup, "vm-1", |ctx| async move {
            ctx.cancel.cancelled().await;
            tokio::time::sleep(Duration::from_secs(1)).await; // finishing its chunk
            (JobOutcome::Failed("stopped after a clean chunk".into()), ())
        })
        .unwrap();
    let stubborn = runner
        .submit(JobKind::Backup, "vm-2", |_ctx| async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            (JobOutcome::Succeeded(None), ())
        })
        .unwrap();
    settle().await;
    let start = tokio::time::Instant::now();
    shutdown.cancel();
    runner.wait().await;
    let waited = start.elapsed();
    assert!(
        waited >= STOP_GRACE && waited < STOP_GRACE + Duration::from_secs(1),
        "{waited:?}"
    );

    let polite = runner.get(&polite.id).unwrap().unwrap();
    assert_eq!(polite.state, JobState::Failed);
    assert_eq!(
        polite.message.as_deref(),
        Some("stopped after a clean chunk")
    );
    let stubborn = runner.get(&stubborn.id).unwrap().unwrap();
    assert_eq!(stubborn.state, JobState::Failed);
    assert!(stubborn.interrupted);
    assert_eq!(stubborn.message.as_deref(), Some(STOPPED_WITH_AGENT));
}

#[tokio::test(start_paused = true)]
async fn jobs_left_running_by_a_killed_agent_are_failed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::state::Store::open(dir.path()).unwrap();
    let jobs = JobStore::new(store.tree("jobs").unwrap());
    let time = CloudTime::new(Arc::new(SystemClock));
    let now = time.now_utc();
    let mut record = JobRecord {
        id: JobId::new(),
        kind: JobKind::Backup,
        state: JobState::Running,
        subject: "vm-7".into(),
        progress: Progress {
            done: 40,
            total: Some(100),
        },
        message: None,
        interrupted: false,
        created_at: now,
        started_at: Some(now),
        finished_at: None,
    };
    jobs.put(&record).unwrap();
    let done = JobRecord {
        id: JobId::new(),
        state: JobState::Succeeded,
        finished_at: Some(now),
        ..record.clone()
    };
    jobs.put(&done).unwrap();

    let runner = JobRunner::start(jobs, time, CancellationToken::new()).unwrap();
    let after = runner.get(&record.id).unwrap().unwrap();
    assert_eq!(after.state, JobState::Failed);
    assert!(after.interrupted);
    assert_eq!(after.message.as_deref(), Some(INTERRUPTED));
    assert_eq!(after.progress.done, 40, "progress kept for the cleanup");
    record.state = JobState::Succeeded;
    assert_eq!(
        runner.get(&done.id).unwrap().unwrap(),
        done,
        "finished jobs untouched"
    );
}

#[tokio::test(start_paused = true)]
async fn backups_and_restores_share_four_slots() {
    let shutdown = CancellationToken::new();
    let (_dir, runner, _) = runner(&shutdown);
    let (tx, mut started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let _jobs: Vec<_> = (0..3)
        .map(|_| blocked(&runner, JobKind::Backup, &tx, &release))
        .chain((0..3).map(|_| blocked(&runner, JobKind::Restore, &tx, &release)))
        .collect();
    settle().await;
    let mut n = 0;
    while started.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, 4, "four backups and restores together");
    let id = JobId::from("cloud-job-1");
    runner
        .submit_as(id.clone(), JobKind::Backup, "vm", |_ctx| async {
            (JobOutcome::Cancelled("stopped".into()), ())
        })
        .unwrap();
    assert!(
        runner
            .submit_as(id.clone(), JobKind::Backup, "vm", |_ctx| async {
                (JobOutcome::Succeeded(None), ())
            })
            .is_err(),
        "a job id runs once at a time"
    );
    for _ in 0..4 {
        release.notify_waiters();
        settle().await;
    }
    assert_eq!(runner.get(&id).unwrap().unwrap().state, JobState::Cancelled);
}
