//! The heartbeat loop: tells the cloud the gateway is alive, learns the configuration version.

use std::sync::Arc;
use std::time::Duration;

use bgw_protocol::heartbeat::{Heartbeat, UpdateState, UpdateStatus};
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

use crate::activation::sleep_or_cancel;
use crate::backoff::Backoff;
use crate::cloud::CloudClient;
use crate::host::HostFacts;
use crate::runtime::Runtime;
use crate::status::bandwidth_schedule;

/// Sends heartbeats every `interval` until shutdown. While the cloud is unreachable it retries
/// with backoff capped at the interval (and 60 s), so it resumes within one interval of recovery.
pub async fn run(
    rt: Arc<Runtime>,
    cloud: CloudClient,
    host: HostFacts,
    shutdown: CancellationToken,
) {
    let interval = rt.heartbeat_interval;
    let mut backoff = Backoff::new(Duration::from_secs(1), interval);
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        let heartbeat = build(&rt, &host);
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = cloud.heartbeat(&heartbeat) => r,
        };
        let delay = match result {
            Ok(ack) => {
                backoff.reset();
                let now = rt.time.now_utc();
                *rt.last_heartbeat.write().expect("runtime lock") = Some(now);
                rt.metrics.heartbeat(true, now.timestamp());
                rt.cloud_ok();
                if ack.rotate_credentials {
                    rotate_credentials(&rt, &cloud).await;
                }
                if ack.config_version != heartbeat.config_version {
                    rt.config_changed.notify_one();
                }
                if rt.store.outbox_len() > 0 {
                    rt.outbox_changed.notify_one();
                }
                tracing::debug!(
                    config_version = ack.config_version,
                    "heartbeat acknowledged"
                );
                interval
            }
            Err(e) => {
                rt.metrics.heartbeat(false, 0);
                rt.cloud_failed(&e);
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

fn build(rt: &Runtime, host: &HostFacts) -> Heartbeat {
    let config = rt.config.borrow().clone();
    let now = rt.time.now_utc();
    let limit = bandwidth_schedule(&config).limit_at(now, rt.timezone);
    rt.metrics.set_bandwidth_limit(limit);
    let mut hypervisor = rt.hypervisor.current();
    if hypervisor.hypervisor_arn.is_none() {
        hypervisor.hypervisor_arn = config.hypervisor.as_ref().map(|h| h.hypervisor_arn.clone());
    }
    Heartbeat {
        agent_version: crate::VERSION.to_string(),
        hostname: host.hostname.clone(),
        ip_addresses: host.ip_addresses.clone(),
        mac_addresses: host.mac_addresses.clone(),
        timezone: rt.timezone.name().to_string(),
        uptime_seconds: rt.started.elapsed().as_secs(),
        interval_seconds: rt.heartbeat_interval.as_secs().max(1),
        resources: host.resources.clone(),
        hypervisor,
        bandwidth_limit_bps: limit,
        update: UpdateStatus {
            state: UpdateState::Idle,
            available_version: None,
            staged_version: None,
            last_attempt: None,
        },
        config_version: config.version,
    }
}

/// Asks the cloud for new credentials and stores them before using them. The cloud keeps the
/// old pair valid until the new one is first used, so a crash in between is harmless.
async fn rotate_credentials(rt: &Runtime, cloud: &CloudClient) {
    let Some(mut activated) = rt.activated() else {
        return;
    };
    match cloud.rotate_credentials().await {
        Ok(rotated) => {
            activated.credentials = rotated.credentials;
            if let Err(e) = rt.store.set_activated(&activated) {
                tracing::error!(error = %e, "cannot store rotated credentials; keeping the old ones");
                return;
            }
            cloud.set_credentials(Some(activated.credentials.clone()));
            tracing::info!(access_key_id = %activated.credentials.access_key_id, "credentials rotated");
            rt.activated.send_replace(Some(activated));
        }
        Err(e) => {
            rt.cloud_failed(&e);
            tracing::warn!(error = %e, "credential rotation failed; will retry at the next heartbeat");
        }
    }
}
