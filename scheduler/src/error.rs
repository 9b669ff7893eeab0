//! Errors of the scheduler crate: one enum per concern, each naming the object at fault.

use thiserror::Error;

/// Why a bandwidth rate-limit schedule was refused.
///
/// Every variant that concerns one interval starts its message with `interval N:` (N counted
/// from 0, in the order the intervals were given) and then names the rule that was broken.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("interval {index}: at most {max} intervals are allowed (the schedule has {count})")]
    TooManyIntervals {
        index: usize,
        max: usize,
        count: usize,
    },
    #[error("interval {index}: DaysOfWeek must list 1 to 7 days")]
    NoDays { index: usize },
    #[error("interval {index}: DaysOfWeek has {count} entries; at most 7 are allowed")]
    TooManyDays { index: usize, count: usize },
    #[error("interval {index}: day of week {day} is out of range (0 = Sunday to 6 = Saturday)")]
    DayOutOfRange { index: usize, day: u8 },
    #[error("interval {index}: day of week {day} is listed more than once")]
    DuplicateDay { index: usize, day: u8 },
    #[error("interval {index}: {field} {value} is out of range (0 to 23)")]
    HourOutOfRange {
        index: usize,
        field: &'static str,
        value: u8,
    },
    #[error("interval {index}: {field} {value} is out of range (0 to 59)")]
    MinuteOutOfRange {
        index: usize,
        field: &'static str,
        value: u8,
    },
    #[error("interval {index}: ends at {end} before it starts at {start}")]
    EndBeforeStart {
        index: usize,
        start: String,
        end: String,
    },
    #[error(
        "interval {index}: AverageUploadRateLimitInBitsPerSec {rate} is out of range \
         ({min} to {max} bits per second)"
    )]
    RateOutOfRange {
        index: usize,
        rate: u64,
        min: u64,
        max: u64,
    },
    #[error("interval {index}: overlaps interval {other} on {day_name} (day {day})")]
    Overlap {
        index: usize,
        other: usize,
        day: u8,
        day_name: &'static str,
    },
    #[error(
        "schedule is not valid JSON of the form printed by \
         `aws backup-gateway get-bandwidth-rate-limit-schedule` (an object with \
         BandwidthRateLimitIntervals, or a bare list of intervals): {0}"
    )]
    Parse(String),
}

/// Why a maintenance start time was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MaintenanceError {
    #[error("maintenance start time needs HourOfDay")]
    MissingHour,
    #[error("maintenance start time needs MinuteOfHour")]
    MissingMinute,
    #[error("maintenance start time needs exactly one of DayOfWeek (weekly) or DayOfMonth (monthly); neither was given")]
    MissingDay,
    #[error("maintenance start time needs exactly one of DayOfWeek (weekly) or DayOfMonth (monthly); both were given")]
    BothDays,
    #[error("maintenance start time: HourOfDay {0} is out of range (0 to 23)")]
    HourOutOfRange(i64),
    #[error("maintenance start time: MinuteOfHour {0} is out of range (0 to 59)")]
    MinuteOutOfRange(i64),
    #[error("maintenance start time: DayOfWeek {0} is out of range (0 = Sunday to 6 = Saturday)")]
    DayOfWeekOutOfRange(i64),
    #[error("maintenance start time: DayOfMonth {0} is out of range (1 to 31)")]
    DayOfMonthOutOfRange(i64),
    #[error("maintenance start time is not valid JSON (an object with HourOfDay, MinuteOfHour and DayOfWeek or DayOfMonth): {0}")]
    Parse(String),
}
