//! The gateway's maintenance window: when updates may be applied.
//!
//! The API describes the window by its start, weekly (day of week, hour, minute) or monthly (day
//! of month, hour, minute), in the gateway's time zone; the window's length is our setting.
//!
//! Daylight saving time: a start inside a spring-forward gap starts at the first instant after
//! the gap (when the clock jumps); a start inside a fall-back overlap starts at its first
//! occurrence. A day of month past the month's end (31 in April, 29–31 in February) means the
//! last day of that month.
//!
//! ```
//! use bgw_scheduler::maintenance::MaintenanceStartTime;
//! use chrono::{DateTime, Utc};
//!
//! let start = MaintenanceStartTime::from_json(
//!     r#"{"DayOfMonth": 31, "HourOfDay": 2, "MinuteOfHour": 0}"#,
//! ).unwrap();
//! let after: DateTime<Utc> = "2026-04-01T00:00:00Z".parse().unwrap();
//! let next = start.next_window_start(after, chrono_tz::UTC);
//! assert_eq!(next, "2026-04-30T02:00:00Z".parse::<DateTime<Utc>>().unwrap());
//! ```

use std::time::Duration as StdDuration;

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use crate::error::MaintenanceError;
use crate::local_time::{first_reaching, wall};

/// When the maintenance window opens, in the gateway's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "ApiMaintenanceStartTime", into = "ApiMaintenanceStartTime")]
pub enum MaintenanceStartTime {
    /// Every week on `day_of_week` (0 = Sunday … 6 = Saturday).
    Weekly {
        day_of_week: u8,
        hour: u8,
        minute: u8,
    },
    /// Every month on `day_of_month` (1–31; past the month's end means its last day).
    Monthly {
        day_of_month: u8,
        hour: u8,
        minute: u8,
    },
}

/// The API's `MaintenanceStartTime` object, before validation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiMaintenanceStartTime {
    #[serde(rename = "DayOfWeek", default, skip_serializing_if = "Option::is_none")]
    pub day_of_week: Option<i64>,
    #[serde(
        rename = "DayOfMonth",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub day_of_month: Option<i64>,
    #[serde(rename = "HourOfDay", default, skip_serializing_if = "Option::is_none")]
    pub hour_of_day: Option<i64>,
    #[serde(
        rename = "MinuteOfHour",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub minute_of_hour: Option<i64>,
}

impl TryFrom<ApiMaintenanceStartTime> for MaintenanceStartTime {
    type Error = MaintenanceError;

    fn try_from(api: ApiMaintenanceStartTime) -> Result<Self, Self::Error> {
        let hour = api.hour_of_day.ok_or(MaintenanceError::MissingHour)?;
        let minute = api.minute_of_hour.ok_or(MaintenanceError::MissingMinute)?;
        if !(0..=23).contains(&hour) {
            return Err(MaintenanceError::HourOutOfRange(hour));
        }
        if !(0..=59).contains(&minute) {
            return Err(MaintenanceError::MinuteOutOfRange(minute));
        }
        let (hour, minute) = (hour as u8, minute as u8);
        match (api.day_of_week, api.day_of_month) {
            (None, None) => Err(MaintenanceError::MissingDay),
            (Some(_), Some(_)) => Err(MaintenanceError::BothDays),
            (Some(day), None) if !(0..=6).contains(&day) => {
                Err(MaintenanceError::DayOfWeekOutOfRange(day))
            }
            (None, Some(day)) if !(1..=31).contains(&day) => {
                Err(MaintenanceError::DayOfMonthOutOfRange(day))
            }
            (Some(day), None) => Ok(Self::Weekly {
                day_of_week: day as u8,
                hour,
                minute,
            }),
            (None, Some(day)) => Ok(Self::Monthly {
                day_of_month: day as u8,
                hour,
                minute,
            }),
        }
    }
}

impl From<MaintenanceStartTime> for ApiMaintenanceStartTime {
    fn from(start: MaintenanceStartTime) -> Self {
        match start {
            MaintenanceStartTime::Weekly {
                day_of_week,
                hour,
                minute,
            } => Self {
                day_of_week: Some(day_of_week.into()),
                day_of_month: None,
                hour_of_day: Some(hour.into()),
                minute_of_hour: Some(minute.into()),
            },
            MaintenanceStartTime::Monthly {
                day_of_month,
                hour,
                minute,
            } => Self {
                day_of_week: None,
                day_of_month: Some(day_of_month.into()),
                hour_of_day: Some(hour.into()),
                minute_of_hour: Some(minute.into()),
            },
        }
    }
}

impl MaintenanceStartTime {
    /// Validates the API's separate fields, as `UpdateMaintenanceStartTime` receives them.
    pub fn from_parts(
        day_of_week: Option<i64>,
        day_of_month: Option<i64>,
        hour_of_day: Option<i64>,
        minute_of_hour: Option<i64>,
    ) -> Result<Self, MaintenanceError> {
        ApiMaintenanceStartTime {
            day_of_week,
            day_of_month,
            hour_of_day,
            minute_of_hour,
        }
        .try_into()
    }

    /// Parses and validates the API's JSON object.
    pub fn from_json(text: &str) -> Result<Self, MaintenanceError> {
        let api: ApiMaintenanceStartTime =
            serde_json::from_str(text).map_err(|e| MaintenanceError::Parse(e.to_string()))?;
        api.try_into()
    }

    /// The API object for this start time.
    pub fn to_api(self) -> ApiMaintenanceStartTime {
        self.into()
    }

    /// The wall time at which the window opens on `date`, if it opens that day.
    fn start_on(self, date: NaiveDate) -> Option<NaiveDateTime> {
        let (matches, hour, minute) = match self {
            Self::Weekly {
                day_of_week,
                hour,
                minute,
            } => (
                date.weekday().num_days_from_sunday() == u32::from(day_of_week),
                hour,
                minute,
            ),
            Self::Monthly {
                day_of_month,
                hour,
                minute,
            } => (
                date.day() == u32::from(day_of_month).min(last_day_of_month(date)),
                hour,
                minute,
            ),
        };
        matches.then(|| {
            date.and_hms_opt(hour.into(), minute.into(), 0)
                .expect("validated hour and minute")
        })
    }

    /// Window starts whose wall date lies in `from..=to`, in order.
    fn starts_between(
        self,
        from: NaiveDate,
        to: NaiveDate,
        tz: Tz,
    ) -> impl Iterator<Item = DateTime<Utc>> {
        from.iter_days()
            .take_while(move |d| *d <= to)
            .filter_map(move |d| self.start_on(d))
            .map(move |local| first_reaching(local, tz))
    }

    /// The first window start strictly after `after`.
    pub fn next_window_start(self, after: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        // Start two days early: near a fall-back the wall date can run backwards.
        let mut from = wall(after, tz).date() - Days::new(2);
        loop {
            let to = from + Days::new(40);
            if let Some(start) = self.starts_between(from, to, tz).find(|s| *s > after) {
                return start;
            }
            from = to;
        }
    }

    /// The next `count` window starts strictly after `after`.
    pub fn next_window_starts(
        self,
        after: DateTime<Utc>,
        tz: Tz,
        count: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut starts = Vec::with_capacity(count);
        let mut cursor = after;
        for _ in 0..count {
            cursor = self.next_window_start(cursor, tz);
            starts.push(cursor);
        }
        starts
    }

    /// Whether `instant` lies in a window of length `length`: at or after a window start and
    /// before that start plus `length`.
    pub fn in_window(self, instant: DateTime<Utc>, tz: Tz, length: StdDuration) -> bool {
        let length = Duration::from_std(length).unwrap_or(Duration::MAX);
        let earliest = instant.checked_sub_signed(length).unwrap_or(instant);
        let from = wall(earliest, tz).date() - Days::new(2);
        let to = wall(instant, tz).date() + Days::new(2);
        self.starts_between(from, to, tz)
            .take_while(|s| *s <= instant)
            .any(|s| {
                instant
                    < s.checked_add_signed(length)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC)
            })
    }
}

fn last_day_of_month(date: NaiveDate) -> u32 {
    let (y, m) = (date.year(), date.month());
    let first_of_next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    first_of_next
        .and_then(|d| d.pred_opt())
        .map_or(31, |d| d.day())
}
