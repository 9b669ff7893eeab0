//! When a staged release is applied: a pure function of the time, the release, the
//! maintenance window and the running jobs.

use std::time::Duration;

use bgw_scheduler::maintenance::MaintenanceStartTime;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A release applies within this long after a window starts; later, it waits for the next.
pub const WINDOW_LENGTH: Duration = Duration::from_secs(3600);

/// What the updater waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Apply now.
    Apply(Why),
    /// Wait for the window that starts at this time.
    WaitForWindow(DateTime<Utc>),
    /// Due, but backup or restore jobs run; apply anyway at this time.
    WaitForJobs { until: DateTime<Utc> },
}

/// Why a release applies now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    UpdateNow,
    Urgent,
    /// The maintenance window is open.
    Window,
    /// No maintenance window is set.
    NoWindow,
    /// The release waited longer than `apply_missed_after` (windows were missed).
    Overdue,
    /// Jobs still run, but the bound on waiting for them is reached.
    JobsWaitedTooLong,
}

/// The facts the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Inputs {
    pub now: DateTime<Utc>,
    pub urgent: bool,
    pub update_now: bool,
    pub published_at: Option<DateTime<Utc>>,
    pub window: Option<MaintenanceStartTime>,
    pub timezone: Tz,
    /// A release older than this applies at once (the windows it should have used passed).
    pub apply_missed_after: Duration,
    /// Backup or restore jobs are running.
    pub jobs_running: bool,
    /// When the apply became due and started waiting for jobs.
    pub jobs_since: Option<DateTime<Utc>>,
    pub job_wait_limit: Duration,
}

/// Apply now, or what to wait for.
pub fn decide(i: &Inputs) -> Decision {
    let due = if i.update_now {
        Why::UpdateNow
    } else if i.urgent {
        Why::Urgent
    } else if i.jobs_since.is_some() {
        // Already due (in an earlier pass) and waiting for jobs, also past the window's end.
        Why::Window
    } else if i
        .published_at
        .is_some_and(|p| i.now - p >= chrono_duration(i.apply_missed_after))
    {
        Why::Overdue
    } else {
        match i.window {
            None => Why::NoWindow,
            Some(w) if w.in_window(i.now, i.timezone, WINDOW_LENGTH) => Why::Window,
            Some(w) => return Decision::WaitForWindow(w.next_window_start(i.now, i.timezone)),
        }
    };
    if !i.jobs_running {
        return Decision::Apply(due);
    }
    let until = i.jobs_since.unwrap_or(i.now) + chrono_duration(i.job_wait_limit);
    if i.now >= until {
        Decision::Apply(Why::JobsWaitedTooLong)
    } else {
        Decision::WaitForJobs { until }
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// Sundays 03:00 in Paris (2026-03-01 is a Sunday; CET, so 02:00 UTC).
    fn inputs(now: DateTime<Utc>) -> Inputs {
        Inputs {
            now,
            urgent: false,
            update_now: false,
            published_at: Some(at(2026, 2, 27, 12, 0)),
            window: Some(
                MaintenanceStartTime::from_parts(Some(0), None, Some(3), Some(0)).unwrap(),
            ),
            timezone: chrono_tz::Europe::Paris,
            apply_missed_after: Duration::from_secs(14 * 86400),
            jobs_running: false,
            jobs_since: None,
            job_wait_limit: Duration::from_secs(2 * 3600),
        }
    }

    #[test]
    fn a_release_waits_for_the_window_in_the_gateways_time_zone() {
        let friday = inputs(at(2026, 2, 27, 13, 0));
        assert_eq!(
            decide(&friday),
            Decision::WaitForWindow(at(2026, 3, 1, 2, 0))
        );
        let in_window = inputs(at(2026, 3, 1, 2, 10));
        assert_eq!(decide(&in_window), Decision::Apply(Why::Window));
    }

    #[test]
    fn a_missed_window_is_not_lost() {
        // Off during Sunday's window: the release waits for the next one...
        let monday = inputs(at(2026, 3, 2, 9, 0));
        assert_eq!(
            decide(&monday),
            Decision::WaitForWindow(at(2026, 3, 8, 2, 0))
        );
        // ...and applies in it.
        assert_eq!(
            decide(&inputs(at(2026, 3, 8, 2, 0))),
            Decision::Apply(Why::Window)
        );
        // Once older than apply_missed_after, at once.
        let later = inputs(at(2026, 3, 14, 9, 0));
        assert_eq!(decide(&later), Decision::Apply(Why::Overdue));
    }

    #[test]
    fn update_now_and_urgent_releases_do_not_wait_for_the_window() {
        let friday = at(2026, 2, 27, 13, 0);
        let now = Inputs {
            update_now: true,
            ..inputs(friday)
        };
        assert_eq!(decide(&now), Decision::Apply(Why::UpdateNow));
        let urgent = Inputs {
            urgent: true,
            ..inputs(friday)
        };
        assert_eq!(decide(&urgent), Decision::Apply(Why::Urgent));
        let no_window = Inputs {
            window: None,
            ..inputs(friday)
        };
        assert_eq!(decide(&no_window), Decision::Apply(Why::NoWindow));
    }

    #[test]
    fn running_jobs_delay_the_apply_up_to_the_bound() {
        let start = at(2026, 3, 1, 2, 0);
        let busy = Inputs {
            jobs_running: true,
            jobs_since: Some(start),
            ..inputs(at(2026, 3, 1, 2, 30))
        };
        assert_eq!(
            decide(&busy),
            Decision::WaitForJobs {
                until: at(2026, 3, 1, 4, 0)
            }
        );
        let bound = Inputs {
            now: at(2026, 3, 1, 4, 0),
            ..busy
        };
        assert_eq!(decide(&bound), Decision::Apply(Why::JobsWaitedTooLong));
        // The bound counts from when the apply became due, also across the window's end.
        let idle = Inputs {
            jobs_running: false,
            ..busy
        };
        assert_eq!(decide(&idle), Decision::Apply(Why::Window));
    }
}
