//! Runs jobs: persists each state change, limits how many of a kind run at once, cancels on
//! request or at shutdown, and tracks every job so the daemon can wait for them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::record::{JobId, JobKind, JobOutcome, JobRecord, JobState, Progress};
use super::store::JobStore;
use crate::clock::CloudTime;
use crate::error::Result;

/// How long a cancelled job gets to return on its own (it sees [`JobContext::cancel`])
/// before it is dropped. Below the daemon's shutdown grace.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why a job stopped by the agent's shutdown failed.
pub const STOPPED_WITH_AGENT: &str = "interrupted: the agent stopped while this job was running";

/// Handed to a job's work: its id, its cancellation and a way to report progress.
pub struct JobContext {
    pub id: JobId,
    /// Cancelled when the operator cancels the job or the agent stops.
    pub cancel: CancellationToken,
    runner: JobRunner,
}

impl JobContext {
    /// Records how far the job has come.
    pub fn progress(&self, done: u64, total: Option<u64>) {
        self.runner
            .update(&self.id, |r| r.progress = Progress { done, total });
    }
}

/// A submitted job: its id, and the value its work returns once it has finished (not sent
/// when the job was cancelled before its work returned).
pub struct JobHandle<T> {
    pub id: JobId,
    pub done: oneshot::Receiver<T>,
}

struct Inner {
    store: JobStore,
    time: CloudTime,
    limits: HashMap<JobKind, Arc<Semaphore>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    running: Mutex<HashMap<JobId, CancellationToken>>,
    stop_grace: Duration,
}

/// The job runner. Cheap to clone.
#[derive(Clone)]
pub struct JobRunner {
    inner: Arc<Inner>,
}

impl JobRunner {
    /// A runner over `store`; jobs that an earlier run of the agent left `Queued` or
    /// `Running` are marked failed and interrupted first. `shutdown` stops every job.
    pub fn start(store: JobStore, time: CloudTime, shutdown: CancellationToken) -> Result<Self> {
        let n = store.fail_interrupted(time.now_utc())?;
        if n > 0 {
            tracing::warn!(
                jobs = n,
                "jobs interrupted by the last stop were marked failed"
            );
        }
        let limits = JobKind::ALL
            .iter()
            .filter(|k| k.slots() == **k)
            .map(|k| (*k, Arc::new(Semaphore::new(k.concurrency()))))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                time,
                limits,
                tracker: TaskTracker::new(),
                shutdown,
                running: Mutex::new(HashMap::new()),
                stop_grace: STOP_GRACE,
            }),
        })
    }

    /// Queues a job. `work` runs once a slot of its kind is free; its [`JobOutcome`] is
    /// recorded and its value sent to the handle.
    pub fn submit<T, F, Fut>(&self, kind: JobKind, subject: &str, work: F) -> Result<JobHandle<T>>
    where
        T: Send + 'static,
        F: FnOnce(JobContext) -> Fut + Send + 'static,
        Fut: Future<Output = (JobOutcome, T)> + Send + 'static,
    {
        self.submit_as(JobId::new(), kind, subject, work)
    }

    /// [`JobRunner::submit`] under an id chosen by the caller (the cloud's job id). Refused
    /// when a job with that id is already queued or running.
    pub fn submit_as<T, F, Fut>(
        &self,
        id: JobId,
        kind: JobKind,
        subject: &str,
        work: F,
    ) -> Result<JobHandle<T>>
    where
        T: Send + 'static,
        F: FnOnce(JobContext) -> Fut + Send + 'static,
        Fut: Future<Output = (JobOutcome, T)> + Send + 'static,
    {
        if self
            .inner
            .running
            .lock()
            .expect("jobs lock")
            .contains_key(&id)
        {
            return Err(crate::Error::Job(format!("job {id} is already running")));
        }
        let record = JobRecord {
            id: id.clone(),
            kind,
            state: JobState::Queued,
            subject: subject.to_string(),
            progress: Progress::default(),
            message: None,
            interrupted: false,
            created_at: self.inner.time.now_utc(),
            started_at: None,
            finished_at: None,
        };
        self.inner.store.put(&record)?;
        let cancel = self.inner.shutdown.child_token();
        self.inner
            .running
            .lock()
            .expect("jobs lock")
            .insert(id.clone(), cancel.clone());
        let (tx, rx) = oneshot::channel();
        let runner = self.clone();
        let limit = self.inner.limits[&kind.slots()].clone();
        let span = tracing::info_span!("job", job = %id, kind = kind.as_str());
        let job_id = id.clone();
        self.inner.tracker.spawn(tracing::Instrument::instrument(
            async move {
                runner.run(job_id, limit, cancel, work, tx).await;
            },
            span,
        ));
        Ok(JobHandle { id, done: rx })
    }

    async fn run<T, F, Fut>(
        &self,
        id: JobId,
        limit: Arc<Semaphore>,
        cancel: CancellationToken,
        work: F,
        tx: oneshot::Sender<T>,
    ) where
        F: FnOnce(JobContext) -> Fut,
        Fut: Future<Output = (JobOutcome, T)>,
    {
        let permit = tokio::select! {
            _ = cancel.cancelled() => None,
            p = limit.acquire_owned() => p.ok(),
        };
        let Some(_permit) = permit else {
            self.finish_cancelled(&id, "cancelled before it started");
            return;
        };
        let now = self.inner.time.now_utc();
        self.update(&id, |r| {
            r.state = JobState::Running;
            r.started_at = Some(now);
        });
        tracing::info!("job started");
        let ctx = JobContext {
            id: id.clone(),
            cancel: cancel.clone(),
            runner: self.clone(),
        };
        let mut work = std::pin::pin!(work(ctx));
        let ended = tokio::select! {
            r = &mut work => Some(r),
            _ = cancel.cancelled() => {
                // Give the work a moment to stop cleanly; then drop it.
                tokio::time::timeout(self.inner.stop_grace, &mut work).await.ok()
            }
        };
        match ended {
            Some((outcome, value)) => {
                let now = self.inner.time.now_utc();
                self.update(&id, |r| {
                    r.finished_at = Some(now);
                    match &outcome {
                        JobOutcome::Succeeded(m) => {
                            r.state = JobState::Succeeded;
                            r.message = m.clone();
                        }
                        JobOutcome::Failed(m) => {
                            r.state = JobState::Failed;
                            r.message = Some(m.clone());
                        }
                        JobOutcome::Cancelled(m) => {
                            r.state = JobState::Cancelled;
                            r.message = Some(m.clone());
                        }
                    }
                });
                tracing::info!(outcome = ?outcome, "job finished");
                let _ = tx.send(value);
            }
            None => self.finish_cancelled(&id, "cancelled"),
        }
        self.inner.running.lock().expect("jobs lock").remove(&id);
    }

    /// Records a job stopped by cancellation: `Cancelled` when asked for, failed and
    /// interrupted when the agent is stopping.
    fn finish_cancelled(&self, id: &JobId, message: &str) {
        let stopping = self.inner.shutdown.is_cancelled();
        let now = self.inner.time.now_utc();
        self.update(id, |r| {
            r.finished_at = Some(now);
            if stopping {
                r.state = JobState::Failed;
                r.interrupted = true;
                r.message = Some(STOPPED_WITH_AGENT.to_string());
            } else {
                r.state = JobState::Cancelled;
                r.message = Some(message.to_string());
            }
        });
        tracing::info!(stopping, "job cancelled");
        self.inner.running.lock().expect("jobs lock").remove(id);
    }

    fn update(&self, id: &JobId, change: impl FnOnce(&mut JobRecord)) {
        let result = self.inner.store.get(id).and_then(|r| match r {
            Some(mut r) => {
                change(&mut r);
                self.inner.store.put(&r)
            }
            None => Ok(()),
        });
        if let Err(e) = result {
            tracing::error!(job = %id, error = %e, "cannot record the job's state");
        }
    }

    /// Cancels a queued or running job. Returns false if no such job is queued or running.
    pub fn cancel(&self, id: &JobId) -> bool {
        match self.inner.running.lock().expect("jobs lock").get(id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    pub fn get(&self, id: &JobId) -> Result<Option<JobRecord>> {
        self.inner.store.get(id)
    }

    /// Every job recorded, oldest first.
    pub fn list(&self) -> Result<Vec<JobRecord>> {
        self.inner.store.list()
    }

    /// Waits until every job has finished (after the shutdown token was cancelled, each
    /// has at most [`STOP_GRACE`]).
    pub async fn wait(&self) {
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }
}
