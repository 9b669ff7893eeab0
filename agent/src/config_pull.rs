//! Pulls the cloud's configuration when its version changes, stores it, and applies it.

use std::sync::Arc;
use std::time::Duration;

use bgw_protocol::config::ConfigResponse;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

use crate::activation::sleep_or_cancel;
use crate::backoff::Backoff;
use crate::cloud::CloudClient;
use crate::hypervisor::HypervisorLink;
use crate::jobs::JobRunner;
use crate::runtime::Runtime;
use crate::status::bandwidth_schedule;

pub async fn run(
    rt: Arc<Runtime>,
    cloud: CloudClient,
    link: Arc<dyn HypervisorLink>,
    jobs: JobRunner,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut rng = rand::rngs::StdRng::from_entropy();
    let stored = rt.config.borrow().hypervisor.clone();
    link.apply(rt.clone(), jobs.clone(), stored).await;
    loop {
        let known = rt.config.borrow().version;
        let answer = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = cloud.config(known) => a,
        };
        match answer {
            Ok(ConfigResponse::Unchanged { .. }) => backoff.reset(),
            Ok(ConfigResponse::Changed(config)) => {
                backoff.reset();
                let config = *config;
                if let Err(e) = rt.store.set_config(&config) {
                    tracing::error!(error = %e, "cannot store the configuration; retrying");
                    if sleep_or_cancel(&shutdown, backoff.next_delay(&mut rng)).await {
                        return;
                    }
                    continue;
                }
                let hypervisor_changed = rt.config.borrow().hypervisor != config.hypervisor;
                let limit = bandwidth_schedule(&config).limit_at(rt.time.now_utc(), rt.timezone);
                rt.metrics.set_bandwidth_limit(limit);
                tracing::info!(
                    version = config.version,
                    intervals = config.bandwidth_schedule.len(),
                    hypervisor = config
                        .hypervisor
                        .as_ref()
                        .map(|h| h.host.as_str())
                        .unwrap_or("none"),
                    "configuration applied"
                );
                let hypervisor = config.hypervisor.clone();
                rt.config.send_replace(config);
                if hypervisor_changed {
                    link.apply(rt.clone(), jobs.clone(), hypervisor).await;
                }
            }
            Err(e) => {
                rt.cloud_failed(&e);
                let delay = backoff.next_delay(&mut rng);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "configuration pull failed");
                if sleep_or_cancel(&shutdown, delay).await {
                    return;
                }
                continue;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = rt.config_changed.notified() => {}
            // A safety net in case a notification was lost.
            _ = tokio::time::sleep(Duration::from_secs(300)) => {}
        }
    }
}
