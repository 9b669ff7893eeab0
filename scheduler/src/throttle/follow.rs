//! Keeps the throttle's rate in step with the bandwidth schedule.

use std::time::Duration;

use chrono_tz::Tz;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Throttle, WallClock};
use crate::bandwidth::BandwidthSchedule;

/// Longest single sleep: after it the follower re-reads the wall clock, so a clock step (NTP,
/// an operator) is noticed within this time.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// A schedule together with the gateway time zone it is read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZonedSchedule {
    pub schedule: BandwidthSchedule,
    pub tz: Tz,
}

/// Sets `throttle` to the schedule's limit now and again at every change, until `cancel` fires
/// or the sender of `schedules` goes away. A new schedule sent on `schedules` applies at once.
///
/// The follower sleeps until the instant [`BandwidthSchedule::next_change_after`] names (on
/// tokio's clock, so paused-time tests can drive it) rather than polling, so a change takes
/// effect on the second it is due.
pub async fn follow_schedule<C: WallClock>(
    throttle: Throttle,
    mut schedules: watch::Receiver<ZonedSchedule>,
    clock: C,
    cancel: CancellationToken,
) {
    loop {
        let ZonedSchedule { schedule, tz } = schedules.borrow_and_update().clone();
        let now = clock.now();
        let limit = schedule.limit_at(now, tz);
        throttle.set_rate(limit);
        let next = schedule.next_change_after(now, tz);
        let wait = next.map_or(MAX_SLEEP, |(at, rate)| {
            tracing::debug!(at = %at, next_rate_bps = ?rate, "next bandwidth limit change");
            (at - now).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP)
        });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = schedules.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = cancel.cancelled() => return,
        }
    }
}
