//! The gateway's bandwidth rate-limit schedule, as the Backup Gateway API defines it.
//!
//! A schedule is a list of at most 20 intervals. Each interval names the days of the week it
//! applies to (0 = Sunday … 6 = Saturday), a start and an end wall time, and optionally an
//! average upload rate in bits per second. An interval runs from the start of its start minute
//! to the end of its end minute: 08:00–17:59 covers 08:00:00 up to, not including, 18:00:00.
//! Outside every interval, and inside an interval without a rate, uploads are unlimited.
//!
//! # Time zones and daylight saving time
//!
//! Intervals are wall-clock times in the gateway's IANA time zone: an instant is inside an
//! interval exactly when the gateway's wall clock, at that instant, shows a day and time inside
//! it. So:
//! - an interval that starts inside a spring-forward gap begins when the clock jumps;
//! - an interval wholly inside the gap does not occur that day;
//! - in a fall-back overlap a wall time happens twice, and an interval covering it is in force
//!   both times;
//! - an interval ending at 23:59 runs to midnight, and Saturday night is followed by Sunday.
//!
//! ```
//! use bgw_scheduler::bandwidth::BandwidthSchedule;
//! use chrono::{DateTime, Utc};
//!
//! let schedule = BandwidthSchedule::from_json(r#"{"BandwidthRateLimitIntervals": [
//!     {"DaysOfWeek": [1, 2, 3, 4, 5], "StartHourOfDay": 8, "StartMinuteOfHour": 0,
//!      "EndHourOfDay": 17, "EndMinuteOfHour": 59, "AverageUploadRateLimitInBitsPerSec": 104857600}
//! ]}"#).unwrap();
//! let tz = chrono_tz::Europe::London;
//! let monday_noon: DateTime<Utc> = "2026-06-01T11:00:00Z".parse().unwrap();
//! assert_eq!(schedule.limit_at(monday_noon, tz), Some(104_857_600));
//! let (at, next) = schedule.next_change_after(monday_noon, tz).unwrap();
//! assert_eq!(at, "2026-06-01T17:00:00Z".parse::<DateTime<Utc>>().unwrap()); // 18:00 BST
//! assert_eq!(next, None);
//! ```

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use crate::error::ScheduleError;
use crate::local_time::{first_offset_change, wall};

/// At most this many intervals in one schedule.
pub const MAX_INTERVALS: usize = 20;
/// Lowest rate the API accepts, in bits per second.
pub const MIN_RATE_BPS: u64 = 51_200;
/// Highest rate the API accepts, in bits per second.
pub const MAX_RATE_BPS: u64 = 8_000_000_000_000;

const MINUTES_PER_WEEK: u32 = 7 * 24 * 60;
const SECONDS_PER_WEEK: i64 = 7 * 24 * 60 * 60;
const DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// One interval of a schedule, with the API's field names on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interval {
    #[serde(rename = "DaysOfWeek")]
    pub days_of_week: Vec<u8>,
    #[serde(rename = "StartHourOfDay")]
    pub start_hour: u8,
    #[serde(rename = "StartMinuteOfHour")]
    pub start_minute: u8,
    #[serde(rename = "EndHourOfDay")]
    pub end_hour: u8,
    #[serde(rename = "EndMinuteOfHour")]
    pub end_minute: u8,
    #[serde(
        rename = "AverageUploadRateLimitInBitsPerSec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub average_upload_rate_limit_bps: Option<u64>,
}

impl Interval {
    /// First minute of the day covered (minutes since midnight).
    fn start_minute_of_day(&self) -> u32 {
        u32::from(self.start_hour) * 60 + u32::from(self.start_minute)
    }

    /// Last minute of the day covered (minutes since midnight), inclusive.
    fn end_minute_of_day(&self) -> u32 {
        u32::from(self.end_hour) * 60 + u32::from(self.end_minute)
    }

    fn covers(&self, day: u8, minute_of_day: u32) -> bool {
        self.days_of_week.contains(&day)
            && (self.start_minute_of_day()..=self.end_minute_of_day()).contains(&minute_of_day)
    }

    fn validate(&self, index: usize) -> Result<(), ScheduleError> {
        if self.days_of_week.is_empty() {
            return Err(ScheduleError::NoDays { index });
        }
        if self.days_of_week.len() > 7 {
            return Err(ScheduleError::TooManyDays {
                index,
                count: self.days_of_week.len(),
            });
        }
        let mut seen = [false; 7];
        for &day in &self.days_of_week {
            let slot = seen
                .get_mut(usize::from(day))
                .ok_or(ScheduleError::DayOutOfRange { index, day })?;
            if *slot {
                return Err(ScheduleError::DuplicateDay { index, day });
            }
            *slot = true;
        }
        for (field, value) in [
            ("StartHourOfDay", self.start_hour),
            ("EndHourOfDay", self.end_hour),
        ] {
            if value > 23 {
                return Err(ScheduleError::HourOutOfRange {
                    index,
                    field,
                    value,
                });
            }
        }
        for (field, value) in [
            ("StartMinuteOfHour", self.start_minute),
            ("EndMinuteOfHour", self.end_minute),
        ] {
            if value > 59 {
                return Err(ScheduleError::MinuteOutOfRange {
                    index,
                    field,
                    value,
                });
            }
        }
        if self.end_minute_of_day() < self.start_minute_of_day() {
            return Err(ScheduleError::EndBeforeStart {
                index,
                start: format!("{:02}:{:02}", self.start_hour, self.start_minute),
                end: format!("{:02}:{:02}", self.end_hour, self.end_minute),
            });
        }
        if let Some(rate) = self.average_upload_rate_limit_bps {
            if !(MIN_RATE_BPS..=MAX_RATE_BPS).contains(&rate) {
                return Err(ScheduleError::RateOutOfRange {
                    index,
                    rate,
                    min: MIN_RATE_BPS,
                    max: MAX_RATE_BPS,
                });
            }
        }
        Ok(())
    }
}

/// A validated bandwidth rate-limit schedule.
///
/// On the wire (serde) it is the API's list of intervals; deserialising validates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Interval>", into = "Vec<Interval>")]
pub struct BandwidthSchedule {
    intervals: Vec<Interval>,
    /// Minutes of the week (0 = Sunday 00:00) at which the limit differs from the minute before,
    /// with the limit from that minute on; sorted. Empty when the limit never changes.
    boundaries: Vec<(u32, Option<u64>)>,
}

/// The schedule as `aws backup-gateway get-bandwidth-rate-limit-schedule` prints it.
#[derive(Deserialize)]
#[serde(untagged)]
enum AwsCliSchedule {
    Output {
        #[serde(rename = "GatewayArn", default)]
        gateway_arn: Option<String>,
        #[serde(rename = "BandwidthRateLimitIntervals", default)]
        intervals: Option<Vec<Interval>>,
    },
    List(Vec<Interval>),
}

impl BandwidthSchedule {
    /// Validates `intervals` by the API's rules and builds the schedule.
    pub fn new(intervals: Vec<Interval>) -> Result<Self, ScheduleError> {
        if intervals.len() > MAX_INTERVALS {
            return Err(ScheduleError::TooManyIntervals {
                index: MAX_INTERVALS,
                max: MAX_INTERVALS,
                count: intervals.len(),
            });
        }
        for (index, interval) in intervals.iter().enumerate() {
            interval.validate(index)?;
        }
        for (index, later) in intervals.iter().enumerate() {
            for (other, earlier) in intervals[..index].iter().enumerate() {
                let shared_day = later
                    .days_of_week
                    .iter()
                    .copied()
                    .find(|d| earlier.days_of_week.contains(d));
                let overlaps = later.start_minute_of_day() <= earlier.end_minute_of_day()
                    && earlier.start_minute_of_day() <= later.end_minute_of_day();
                if let (Some(day), true) = (shared_day, overlaps) {
                    return Err(ScheduleError::Overlap {
                        index,
                        other,
                        day,
                        day_name: DAY_NAMES[usize::from(day)],
                    });
                }
            }
        }
        let boundaries = weekly_boundaries(&intervals);
        Ok(Self {
            intervals,
            boundaries,
        })
    }

    /// A schedule without intervals: uploads are never limited.
    pub fn unlimited() -> Self {
        Self {
            intervals: Vec::new(),
            boundaries: Vec::new(),
        }
    }

    /// Parses and validates a schedule as aws-cli prints it: the whole output of
    /// `get-bandwidth-rate-limit-schedule` (`{"GatewayArn": …, "BandwidthRateLimitIntervals": […]}`)
    /// or just the list of intervals.
    pub fn from_json(text: &str) -> Result<Self, ScheduleError> {
        let parsed: AwsCliSchedule =
            serde_json::from_str(text).map_err(|e| ScheduleError::Parse(e.to_string()))?;
        match parsed {
            AwsCliSchedule::List(intervals)
            | AwsCliSchedule::Output {
                intervals: Some(intervals),
                ..
            } => Self::new(intervals),
            // A gateway without a schedule: aws-cli may leave the empty list out.
            AwsCliSchedule::Output {
                gateway_arn: Some(_),
                intervals: None,
            } => Ok(Self::unlimited()),
            AwsCliSchedule::Output { .. } => Err(ScheduleError::Parse(
                "the object has neither BandwidthRateLimitIntervals nor GatewayArn".into(),
            )),
        }
    }

    /// The intervals, in the order they were given.
    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// The upload limit in bits per second in force at `instant` in time zone `tz`, or `None`
    /// when uploads are unlimited.
    pub fn limit_at(&self, instant: DateTime<Utc>, tz: Tz) -> Option<u64> {
        let local = wall(instant, tz);
        let day = local.weekday().num_days_from_sunday() as u8;
        let minute = local.hour() * 60 + local.minute();
        self.intervals
            .iter()
            .find(|i| i.covers(day, minute))
            .and_then(|i| i.average_upload_rate_limit_bps)
    }

    /// The first instant strictly after `instant` at which the limit in force changes, with the
    /// limit from then on. `None` when the limit never changes.
    ///
    /// Every boundary of the weekly wall-clock pattern and every UTC offset change of `tz` is a
    /// candidate; the answer is the first candidate at which [`Self::limit_at`] differs.
    pub fn next_change_after(
        &self,
        instant: DateTime<Utc>,
        tz: Tz,
    ) -> Option<(DateTime<Utc>, Option<u64>)> {
        if self.boundaries.is_empty() {
            return None;
        }
        let current = self.limit_at(instant, tz);
        // A pattern that differs somewhere in the week shows that difference within two weeks
        // of real time, even when daylight saving time skips it once.
        let horizon = instant + Duration::days(21);
        let mut cursor = instant;
        while cursor < horizon {
            let mut candidate = cursor + self.wall_time_to_next_boundary(wall(cursor, tz));
            if let Some(jump) = first_offset_change(tz, cursor, candidate) {
                candidate = jump;
            }
            let limit = self.limit_at(candidate, tz);
            if limit != current {
                return Some((candidate, limit));
            }
            cursor = candidate;
        }
        None
    }

    /// Wall-clock time from `local` to the next boundary of the weekly pattern, strictly later.
    fn wall_time_to_next_boundary(&self, local: NaiveDateTime) -> Duration {
        let second_of_week = i64::from(local.weekday().num_days_from_sunday()) * 86_400
            + i64::from(local.num_seconds_from_midnight());
        let next = self
            .boundaries
            .iter()
            .map(|&(minute, _)| i64::from(minute) * 60)
            .find(|&b| b > second_of_week)
            .unwrap_or(i64::from(self.boundaries[0].0) * 60 + SECONDS_PER_WEEK);
        Duration::seconds(next - second_of_week) - Duration::nanoseconds(local.nanosecond().into())
    }
}

impl TryFrom<Vec<Interval>> for BandwidthSchedule {
    type Error = ScheduleError;

    fn try_from(intervals: Vec<Interval>) -> Result<Self, Self::Error> {
        Self::new(intervals)
    }
}

impl From<BandwidthSchedule> for Vec<Interval> {
    fn from(schedule: BandwidthSchedule) -> Self {
        schedule.intervals
    }
}

impl Default for BandwidthSchedule {
    fn default() -> Self {
        Self::unlimited()
    }
}

/// The limit for each minute of the week (0 = Sunday 00:00), for validated intervals.
pub(crate) fn weekly_minutes(intervals: &[Interval]) -> Vec<Option<u64>> {
    let mut minutes = vec![None; MINUTES_PER_WEEK as usize];
    for interval in intervals {
        for &day in &interval.days_of_week {
            let base = u32::from(day) * 24 * 60;
            for m in interval.start_minute_of_day()..=interval.end_minute_of_day() {
                minutes[(base + m) as usize] = interval.average_upload_rate_limit_bps;
            }
        }
    }
    minutes
}

fn weekly_boundaries(intervals: &[Interval]) -> Vec<(u32, Option<u64>)> {
    let minutes = weekly_minutes(intervals);
    let last = minutes.len() - 1;
    (0..MINUTES_PER_WEEK)
        .filter(|&m| {
            let previous = if m == 0 { last } else { m as usize - 1 };
            minutes[m as usize] != minutes[previous]
        })
        .map(|m| (m, minutes[m as usize]))
        .collect()
}
