//! Results waiting for the cloud ([`Outbox`]) and the task that delivers them, oldest first,
//! retrying with backoff while the cloud is unreachable. Items leave the store only after the
//! cloud acknowledged them.

use std::sync::Arc;
use std::time::Duration;

use bgw_scheduler::throttle::Throttle;
use rand::SeedableRng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::activation::sleep_or_cancel;
use crate::backoff::Backoff;
use crate::cloud::CloudClient;
use crate::cloud_link::CloudLink;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::state::{OutboxItem, Store};

/// The store's queue of results for the cloud, with the doorbell of the delivering task.
pub struct Outbox {
    store: Store,
    changed: Notify,
}

impl Outbox {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self {
            store,
            changed: Notify::new(),
        })
    }

    /// Queues `item` (durable when this returns) and wakes the delivering task.
    pub fn push(&self, item: &OutboxItem) -> crate::Result<()> {
        self.store.push_outbox(item)?;
        self.changed.notify_one();
        Ok(())
    }

    /// How many items wait.
    pub fn len(&self) -> usize {
        self.store.outbox_len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes the delivering task (the cloud is reachable again).
    pub fn wake(&self) {
        self.changed.notify_one();
    }
}

/// The delivering task.
pub struct OutboxTask {
    pub outbox: Arc<Outbox>,
    pub cloud: CloudClient,
    pub link: Arc<CloudLink>,
    pub metrics: Arc<Metrics>,
    /// Metadata uploads draw from the shared upload throttle.
    pub throttle: Throttle,
}

impl OutboxTask {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut rng = rand::rngs::StdRng::from_entropy();
        let store = &self.outbox.store;
        loop {
            let items = store.outbox().unwrap_or_default();
            self.metrics.set_outbox(items.len());
            let mut failed = false;
            for (id, item) in items {
                let sent = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = self.deliver(&item) => r,
                };
                match sent {
                    Ok(()) => {
                        backoff.reset();
                        if let Err(e) = store.remove_outbox(id) {
                            tracing::error!(error = %e, "cannot dequeue a delivered result");
                        }
                    }
                    Err(e) if e.is_transient() => {
                        self.link.failed(&e);
                        failed = true;
                        break;
                    }
                    Err(e) => {
                        // The cloud refuses it for good (e.g. an unknown command): retrying
                        // cannot help.
                        self.metrics.error(e.kind());
                        tracing::warn!(error = %e, "dropping a result the cloud refused");
                        let _ = store.remove_outbox(id);
                    }
                }
            }
            self.metrics.set_outbox(self.outbox.len());
            if failed {
                let delay = backoff.next_delay(&mut rng);
                if sleep_or_cancel(&shutdown, delay).await {
                    return;
                }
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.outbox.changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), Error> {
        let cloud = &self.cloud;
        match item {
            OutboxItem::CommandResult(result) => cloud.command_result(result).await,
            OutboxItem::SyncStatus(report) => cloud.sync_status(report).await,
            OutboxItem::JobComplete(done) => cloud.job_complete(done).await,
            OutboxItem::Metadata(batch) => {
                let bytes = serde_json::to_vec(batch).map_or(0, |b| b.len() as u64);
                crate::bandwidth::before_upload(&self.throttle, &self.metrics, bytes).await;
                cloud.upload_metadata(batch).await.map(|_| ())
            }
        }
    }
}
