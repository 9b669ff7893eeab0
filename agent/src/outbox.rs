//! Delivers queued results to the cloud, oldest first, retrying with backoff while it is
//! unreachable. Items leave the store only after the cloud acknowledged them.

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

use crate::activation::sleep_or_cancel;
use crate::backoff::Backoff;
use crate::cloud::CloudClient;
use crate::error::Error;
use crate::runtime::Runtime;
use crate::state::OutboxItem;

pub async fn run(rt: Arc<Runtime>, cloud: CloudClient, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        let items = rt.store.outbox().unwrap_or_default();
        rt.metrics.set_outbox(items.len());
        let mut failed = false;
        for (id, item) in items {
            let sent = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = deliver(&rt, &cloud, &item) => r,
            };
            match sent {
                Ok(()) => {
                    backoff.reset();
                    if let Err(e) = rt.store.remove_outbox(id) {
                        tracing::error!(error = %e, "cannot dequeue a delivered result");
                    }
                }
                Err(e) if e.is_transient() => {
                    rt.cloud_failed(&e);
                    failed = true;
                    break;
                }
                Err(e) => {
                    // The cloud refuses it for good (e.g. an unknown command): retrying cannot help.
                    rt.metrics.error(e.kind());
                    tracing::warn!(error = %e, "dropping a result the cloud refused");
                    let _ = rt.store.remove_outbox(id);
                }
            }
        }
        rt.metrics.set_outbox(rt.store.outbox_len());
        if failed {
            let delay = backoff.next_delay(&mut rng);
            if sleep_or_cancel(&shutdown, delay).await {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = rt.outbox_changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

async fn deliver(rt: &Runtime, cloud: &CloudClient, item: &OutboxItem) -> Result<(), Error> {
    match item {
        OutboxItem::CommandResult(result) => cloud.command_result(result).await,
        OutboxItem::SyncStatus(report) => cloud.sync_status(report).await,
        OutboxItem::JobComplete(done) => cloud.job_complete(done).await,
        OutboxItem::Metadata(batch) => {
            let bytes = serde_json::to_vec(batch).map_or(0, |b| b.len() as u64);
            crate::bandwidth::before_upload(rt, bytes).await;
            cloud.upload_metadata(batch).await.map(|_| ())
        }
    }
}
