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
