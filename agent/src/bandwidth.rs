//! Bandwidth enforcement: the cloud's upload rate-limit schedule drives the scheduler's shared
//! [`Throttle`](bgw_scheduler::throttle::Throttle), in the gateway's time zone.
//!
//! Every upload to the cloud draws from one shared [`Throttle`], so the sum of all uploads
//! respects the limit in force. [`run`] follows the schedule: it sets the limit now and again
//! at each boundary, and applies a new schedule from the cloud at once.

use std::sync::Arc;

use bgw_scheduler::throttle::{follow_schedule, Throttle, WallClock, ZonedSchedule};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::CloudTime;
use crate::config_channel::ConfigChannel;
use crate::gateway_zone::GatewayZone;
use crate::metrics::Metrics;
use crate::status::bandwidth_schedule;

/// The schedule is read on the cloud-corrected clock, like `status` reads it.
struct CloudWallClock(CloudTime);

impl WallClock for CloudWallClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now_utc()
    }
}

fn zoned(config: &ConfigChannel, tz: &GatewayZone) -> ZonedSchedule {
    ZonedSchedule {
        schedule: bandwidth_schedule(&config.borrow()),
        tz: tz.get(),
    }
}

/// Keeps `throttle` following the configured schedule, read in the gateway's zone `tz` (which
/// may change while it runs) on the cloud-corrected clock `time`, until `shutdown`.
pub async fn run(
    config: Arc<ConfigChannel>,
    throttle: Throttle,
    time: CloudTime,
    tz: GatewayZone,
    shutdown: CancellationToken,
) {
    let (tx, rx) = watch::channel(zoned(&config, &tz));
    let follower = tokio::spawn(follow_schedule(
        throttle,
        rx,
        CloudWallClock(time),
        shutdown.clone(),
    ));
    let mut configs = config.subscribe();
    let mut zones = tz.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = async {
                tokio::select! {
                    c = configs.changed() => c,
                    z = zones.changed() => z,
                }
            } => {
                if changed.is_err() {
                    break;
                }
                let next = zoned(&config, &tz);
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
pub async fn before_upload(throttle: &Throttle, metrics: &Metrics, bytes: u64) {
    throttle.acquire(bytes).await;
    metrics.uploaded(bytes);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bgw_protocol::config::{BandwidthInterval, GatewayConfig};

    use super::*;
    use crate::clock::SystemClock;

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

    async fn rate_becomes(throttle: &Throttle, want: Option<u64>) {
        let mut seen = throttle.rate();
        for _ in 0..200 {
            if seen == want {
                return;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            seen = throttle.rate();
        }
        panic!("throttle rate {seen:?}, expected {want:?}");
    }

    #[tokio::test]
    async fn the_throttle_follows_the_schedule_from_the_cloud() {
        let time = CloudTime::new(Arc::new(SystemClock));
        let config = ConfigChannel::new(GatewayConfig::default());
        let throttle = Throttle::new(None);
        let metrics = Metrics::new();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            config.clone(),
            throttle.clone(),
            time,
            GatewayZone::new(chrono_tz::Europe::Paris),
            shutdown.clone(),
        ));
        rate_becomes(&throttle, None).await;

        config.publish(GatewayConfig {
            version: 2,
            bandwidth_schedule: vec![all_week(Some(1_000_000))],
            ..GatewayConfig::default()
        });
        rate_becomes(&throttle, Some(1_000_000)).await;

        config.publish(GatewayConfig {
            version: 3,
            ..GatewayConfig::default()
        });
        rate_becomes(&throttle, None).await;

        // Uploads are counted in the metrics as they pass the throttle.
        before_upload(&throttle, &metrics, 1000).await;
        let metrics = metrics.render();
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("bgw_agent_uploaded_bytes_total") && l.ends_with(" 1000")),
            "{metrics}"
        );

        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_new_time_zone_moves_the_schedule_at_once() {
        use chrono::TimeZone;
        // 12:30 UTC is 00:30 the next day at UTC+12: a 12:00-12:59 limit applies in one zone
        // and not in the other.
        let at = chrono::Utc.with_ymd_and_hms(2026, 3, 2, 12, 30, 0).unwrap();
        let time = CloudTime::new(Arc::new(crate::clock::FixedClock::new(at)));
        let config = ConfigChannel::new(GatewayConfig {
            version: 2,
            bandwidth_schedule: vec![BandwidthInterval {
                start_hour_of_day: 12,
                end_hour_of_day: 12,
                ..all_week(Some(2_000_000))
            }],
            ..GatewayConfig::default()
        });
        let throttle = Throttle::new(None);
        let zone = GatewayZone::new(chrono_tz::UTC);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            config,
            throttle.clone(),
            time,
            zone.clone(),
            shutdown.clone(),
        ));
        rate_becomes(&throttle, Some(2_000_000)).await;
        assert_eq!(zone.set(chrono_tz::Etc::GMTMinus12), chrono_tz::UTC);
        rate_becomes(&throttle, None).await;
        zone.set(chrono_tz::UTC);
        rate_becomes(&throttle, Some(2_000_000)).await;
        shutdown.cancel();
        task.await.unwrap();
    }
}
