//! Pulls the cloud's configuration when its version changes, stores it, and applies it.

use std::sync::Arc;
use std::time::Duration;

use bgw_protocol::config::ConfigResponse;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

use crate::activation::sleep_or_cancel;
use crate::backoff::Backoff;
use crate::cloud::CloudClient;
use crate::cloud_link::CloudLink;
use crate::config_channel::ConfigChannel;
use crate::hypervisor::{HypervisorEnv, HypervisorLink};
use crate::jobs::JobRunner;
use crate::state::Store;
use crate::status::bandwidth_schedule;

/// What the configuration task reads, writes and hands the configuration to.
pub struct ConfigPull {
    pub cloud: CloudClient,
    pub link: Arc<CloudLink>,
    pub config: Arc<ConfigChannel>,
    /// Where the applied configuration is kept across restarts.
    pub store: Store,
    pub hypervisor: Arc<dyn HypervisorLink>,
    pub hypervisor_env: HypervisorEnv,
    pub jobs: JobRunner,
    pub timezone: crate::gateway_zone::GatewayZone,
}

pub async fn run(task: ConfigPull, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut rng = rand::rngs::StdRng::from_entropy();
    let env = &task.hypervisor_env;
    let stored = task.config.borrow().hypervisor.clone();
    task.hypervisor
        .apply(env.clone(), task.jobs.clone(), stored)
        .await;
    loop {
        let known = task.config.borrow().version;
        let answer = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = task.cloud.config(known) => a,
        };
        match answer {
            Ok(ConfigResponse::Unchanged { .. }) => backoff.reset(),
            Ok(ConfigResponse::Changed(config)) => {
                backoff.reset();
                let config = *config;
                if let Err(e) = task.store.set_config(&config) {
                    tracing::error!(error = %e, "cannot store the configuration; retrying");
                    if sleep_or_cancel(&shutdown, backoff.next_delay(&mut rng)).await {
                        return;
                    }
                    continue;
                }
                let hypervisor_changed = task.config.borrow().hypervisor != config.hypervisor;
                let limit =
                    bandwidth_schedule(&config).limit_at(env.time.now_utc(), task.timezone.get());
                env.metrics.set_bandwidth_limit(limit);
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
                task.config.publish(config);
                if hypervisor_changed {
                    task.hypervisor
                        .apply(env.clone(), task.jobs.clone(), hypervisor)
                        .await;
                }
            }
            Err(e) => {
                task.link.failed(&e);
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
            _ = task.config.woken() => {}
            // A safety net in case a notification was lost.
            _ = tokio::time::sleep(Duration::from_secs(300)) => {}
        }
    }
}
