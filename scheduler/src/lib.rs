//! Bandwidth schedules, maintenance windows and the shared upload throttle of the gateway.
//!
//! The cloud validates schedules with this crate and the gateway enforces them with it, so the
//! two can never disagree about what a schedule means.
//!
//! - [`bandwidth::BandwidthSchedule`]: the API's rate-limit intervals, validated, with
//!   [`limit_at`](bandwidth::BandwidthSchedule::limit_at) and
//!   [`next_change_after`](bandwidth::BandwidthSchedule::next_change_after) in an IANA time zone.
//! - [`maintenance::MaintenanceStartTime`]: weekly or monthly window starts.
//! - [`throttle::Throttle`]: the token bucket shared by every upload, and
//!   [`throttle::follow_schedule`], which keeps its rate in step with the schedule.
//!
//! ```
//! use bgw_scheduler::bandwidth::BandwidthSchedule;
//!
//! let err = BandwidthSchedule::from_json(r#"[{"DaysOfWeek": [7], "StartHourOfDay": 0,
//!     "StartMinuteOfHour": 0, "EndHourOfDay": 1, "EndMinuteOfHour": 0}]"#).unwrap_err();
//! assert_eq!(err.to_string(), "interval 0: day of week 7 is out of range (0 = Sunday to 6 = Saturday)");
//! ```

pub mod bandwidth;
mod error;
mod local_time;
pub mod maintenance;
pub mod throttle;

pub use error::{MaintenanceError, ScheduleError};
