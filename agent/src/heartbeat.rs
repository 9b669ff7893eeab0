//! The heartbeat loop: tells the cloud the gateway is alive, learns the configuration version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bgw_protocol::heartbeat::Heartbeat;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

use crate::activation::sleep_or_cancel;
use crate::backoff::Backoff;
use crate::clock::CloudTime;
use crate::cloud::CloudClient;
use crate::cloud_link::CloudLink;
use crate::config_channel::ConfigChannel;
use crate::host::HostFacts;
use crate::hypervisor_board::HypervisorBoard;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::status::bandwidth_schedule;
use crate::updater::Updater;

/// What the heartbeat reads and whom it wakes.
pub struct HeartbeatTask {
    pub cloud: CloudClient,
    pub link: Arc<CloudLink>,
    /// Read for the version and the bandwidth limit; woken when the cloud holds a newer one.
    pub config: Arc<ConfigChannel>,
    /// Woken after a heartbeat went through while results wait.
    pub outbox: Arc<Outbox>,
    pub hypervisor: Arc<HypervisorBoard>,
    pub metrics: Arc<Metrics>,
    pub time: CloudTime,
    pub host: HostFacts,
    pub timezone: crate::gateway_zone::GatewayZone,
    pub started: Instant,
    pub interval: Duration,
    /// Reports the update state; told what the cloud offers.
    pub updates: Arc<Updater>,
}

/// Sends heartbeats every `interval` until shutdown. While the cloud is unreachable it retries
/// with backoff capped at the interval (and 60 s), so it resumes within one interval of recovery.
pub async fn run(task: HeartbeatTask, shutdown: CancellationToken) {
    if crate::build_fault() == crate::BuildFault::NoHeartbeat {
        tracing::error!("this build is broken on purpose (BGW_BUILD_FAULT=no-heartbeat)");
        shutdown.cancelled().await;
        return;
    }
    let cloud = &task.cloud;
    let interval = task.interval;
    let mut backoff = Backoff::new(Duration::from_secs(1), interval);
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        let heartbeat = build(&task);
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = cloud.heartbeat(&heartbeat) => r,
        };
        let delay = match result {
            Ok(ack) => {
                backoff.reset();
                let now = task.time.now_utc();
                task.link.heartbeat_answered(now);
                task.updates.offered(ack.update.clone());
                task.metrics.heartbeat(true, now.timestamp());
                if ack.rotate_credentials {
                    rotate_credentials(&task.link, cloud).await;
                }
                if ack.config_version != heartbeat.config_version {
                    task.config.wake();
                }
                if !task.outbox.is_empty() {
                    task.outbox.wake();
                }
                tracing::debug!(
                    config_version = ack.config_version,
                    "heartbeat acknowledged"
                );
                interval
            }
            Err(e) => {
                task.metrics.heartbeat(false, 0);
                task.link.failed(&e);
                let delay = backoff.next_delay(&mut rng);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "heartbeat failed");
                delay
            }
        };
        if sleep_or_cancel(&shutdown, delay).await {
            return;
        }
    }
}

fn build(task: &HeartbeatTask) -> Heartbeat {
    let host = &task.host;
    let config = task.config.current();
    let now = task.time.now_utc();
    let limit = bandwidth_schedule(&config).limit_at(now, task.timezone.get());
    task.metrics.set_bandwidth_limit(limit);
    let mut hypervisor = task.hypervisor.current();
    if hypervisor.hypervisor_arn.is_none() {
        hypervisor.hypervisor_arn = config.hypervisor.as_ref().map(|h| h.hypervisor_arn.clone());
    }
    Heartbeat {
        agent_version: crate::version().to_string(),
        hostname: host.hostname.clone(),
        ip_addresses: host.ip_addresses.clone(),
        mac_addresses: host.mac_addresses.clone(),
        timezone: task.timezone.get().name().to_string(),
        uptime_seconds: task.started.elapsed().as_secs(),
        interval_seconds: task.interval.as_secs().max(1),
        resources: host.resources.clone(),
        hypervisor,
        bandwidth_limit_bps: limit,
        update: task.updates.status(),
        config_version: config.version,
    }
}

/// Asks the cloud for new credentials and stores them before using them. The cloud keeps the
/// old pair valid until the new one is first used, so a crash in between is harmless.
async fn rotate_credentials(link: &CloudLink, cloud: &CloudClient) {
    let Some(mut activated) = link.activated() else {
        return;
    };
    match cloud.rotate_credentials().await {
        Ok(rotated) => {
            activated.credentials = rotated.credentials;
            let access_key_id = activated.credentials.access_key_id.clone();
            if let Err(e) = link.set_activated(activated, cloud) {
                tracing::error!(error = %e, "cannot store rotated credentials; keeping the old ones");
                return;
            }
            tracing::info!(%access_key_id, "credentials rotated");
        }
        Err(e) => {
            link.failed(&e);
            tracing::warn!(error = %e, "credential rotation failed; will retry at the next heartbeat");
        }
    }
}
