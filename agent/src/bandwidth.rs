//! Bandwidth enforcement: the cloud's upload rate-limit schedule drives the scheduler's shared
//! [`Throttle`](bgw_scheduler::throttle::Throttle), in the gateway's time zone.
//!
//! Every upload to the cloud draws from [`Runtime::throttle`], so the sum of all uploads
//! respects the limit in force. [`run`] follows the schedule: it sets the limit now and again
//! at each boundary, and applies a new schedule from the cloud at once.

use std::sync::Arc;

use bgw_scheduler::throttle::{follow_schedule, WallClock, ZonedSchedule};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::CloudTime;
use crate::runtime::Runtime;
use crate::status::bandwidth_schedule;

/// The schedule is read on the cloud-corrected clock, like `status` reads it.
struct CloudWallClock(CloudTime);

impl WallClock for CloudWallClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now_utc()
    }
}

fn zoned(rt: &Runtime) -> ZonedSchedule {
    ZonedSchedule {
        schedule: bandwidth_schedule(&rt.config.borrow()),
        tz: rt.timezone,
    }
}

/// Keeps `rt.throttle` following the configured schedule until `shutdown`.
pub async fn run(rt: Arc<Runtime>, shutdown: CancellationToken) {
    let (tx, rx) = watch::channel(zoned(&rt));
    let follower = tokio::spawn(follow_schedule(
        rt.throttle.clone(),
        rx,
        CloudWallClock(rt.time.clone()),
        shutdown.clone(),
    ));
    let mut configs = rt.config.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = configs.changed() => {
                if changed.is_err() {
                    break;
                }
                let next = zoned(&rt);
                tx.send_if_modified(|current| {
                    if *current == next {
                        false
                    } else {
                        tracing::info!(intervals = next.schedule.intervals().len(), "bandwidth schedule changed");
                        *current = next;
                        true
                    }
                });
            }
        }
    }
    drop(tx);
    let _ = follower.await;
}

/// Waits until `bytes` may be uploaded under the limit in force, and counts them.
pub async fn before_upload(rt: &Runtime, bytes: u64) {
    rt.throttle.acquire(bytes).await;
    rt.metrics.uploaded(bytes);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bgw_protocol::config::{BandwidthInterval, GatewayConfig};

    use super::*;
    use crate::clock::SystemClock;
    use crate::state::Store;

    fn all_week(limit: Option<u64>) -> BandwidthInterval {
        BandwidthInterval {
            average_upload_rate_limit_bits_per_sec: limit,
            days_of_week: (0..7).collect(),
            start_hour_of_day: 0,
            start_minute_of_hour: 0,
            end_hour_of_day: 23,
            end_minute_of_hour: 59,
        }
    }

    async fn rate_becomes(rt: &Runtime, want: Option<u64>) {
        let mut seen = rt.throttle.rate();
        for _ in 0..200 {
            if seen == want {
                return;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            seen = rt.throttle.rate();
        }
        panic!("throttle rate {seen:?}, expected {want:?}");
    }

    #[tokio::test]
    async fn the_throttle_follows_the_schedule_from_the_cloud() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let time = CloudTime::new(Arc::new(SystemClock));
        let rt = Runtime::new(
            store,
            time,
            chrono_tz::Europe::Paris,
            Duration::from_secs(60),
        )
        .unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(rt.clone(), shutdown.clone()));
        rate_becomes(&rt, None).await;

        rt.config.send_replace(GatewayConfig {
            version: 2,
            bandwidth_schedule: vec![all_week(Some(1_000_000))],
            ..GatewayConfig::default()
        });
        rate_becomes(&rt, Some(1_000_000)).await;

        rt.config.send_replace(GatewayConfig {
            version: 3,
            ..GatewayConfig::default()
        });
        rate_becomes(&rt, None).await;

        // Uploads are counted in the metrics as they pass the throttle.
        before_upload(&rt, 1000).await;
        let metrics = rt.metrics.render();
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("bgw_agent_uploaded_bytes_total") && l.ends_with(" 1000")),
            "{metrics}"
        );

        shutdown.cancel();
        task.await.unwrap();
    }
}
