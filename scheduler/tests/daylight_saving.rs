//! The documented daylight-saving rules, on literal dates.

use bgw_scheduler::bandwidth::BandwidthSchedule;
use bgw_scheduler::maintenance::MaintenanceStartTime;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

const NY: Tz = chrono_tz::America::New_York;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn sunday(start: (u8, u8), end: (u8, u8), rate: u64) -> BandwidthSchedule {
    BandwidthSchedule::from_json(&format!(
        r#"[{{"DaysOfWeek":[0],"StartHourOfDay":{},"StartMinuteOfHour":{},"EndHourOfDay":{},"EndMinuteOfHour":{},"AverageUploadRateLimitInBitsPerSec":{rate}}}]"#,
        start.0, start.1, end.0, end.1
    ))
    .unwrap()
}

#[test]
fn interval_starting_in_the_gap_begins_when_the_clock_jumps() {
    // 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT.
    let schedule = sunday((2, 30), (4, 0), 1_000_000);
    let before = at("2026-03-08T01:59:59-05:00");
    assert_eq!(schedule.limit_at(before, NY), None);
    assert_eq!(
        schedule.next_change_after(before, NY),
        Some((at("2026-03-08T03:00:00-04:00"), Some(1_000_000)))
    );
    assert_eq!(
        schedule.limit_at(at("2026-03-08T03:00:00-04:00"), NY),
        Some(1_000_000)
    );
}

#[test]
fn interval_wholly_in_the_gap_does_not_occur_that_day() {
    let schedule = sunday((2, 10), (2, 40), 1_000_000);
    let (next, rate) = schedule
        .next_change_after(at("2026-03-07T12:00:00-05:00"), NY)
        .unwrap();
    assert_eq!(rate, Some(1_000_000));
    assert_eq!(
        next,
        at("2026-03-15T02:10:00-04:00"),
        "skipped on the day of the gap"
    );
}

#[test]
fn fall_back_overlap_is_covered_both_times() {
    // 2026-11-01 in New York: 02:00 EDT falls back to 01:00 EST.
    let schedule = sunday((1, 15), (1, 44), 1_000_000);
    let first = at("2026-11-01T01:30:00-04:00");
    let second = at("2026-11-01T01:30:00-05:00");
    assert_eq!(schedule.limit_at(first, NY), Some(1_000_000));
    assert_eq!(schedule.limit_at(second, NY), Some(1_000_000));
    assert_eq!(
        schedule.next_change_after(first, NY),
        Some((at("2026-11-01T01:45:00-04:00"), None))
    );
    assert_eq!(
        schedule.next_change_after(at("2026-11-01T01:45:00-04:00"), NY),
        Some((at("2026-11-01T01:15:00-05:00"), Some(1_000_000)))
    );
}

#[test]
fn midnight_and_the_week_wrap() {
    let schedule = BandwidthSchedule::from_json(
        r#"[{"DaysOfWeek":[6],"StartHourOfDay":22,"StartMinuteOfHour":0,"EndHourOfDay":23,"EndMinuteOfHour":59,"AverageUploadRateLimitInBitsPerSec":51200},
            {"DaysOfWeek":[0],"StartHourOfDay":0,"StartMinuteOfHour":0,"EndHourOfDay":5,"EndMinuteOfHour":59,"AverageUploadRateLimitInBitsPerSec":51200}]"#,
    )
    .unwrap();
    let tz = chrono_tz::UTC;
    // Saturday 2026-06-06 22:00 to Sunday 06:00 is one stretch at 51,200 bit/s.
    assert_eq!(
        schedule.limit_at(at("2026-06-06T23:59:59Z"), tz),
        Some(51_200)
    );
    assert_eq!(
        schedule.limit_at(at("2026-06-07T00:00:00Z"), tz),
        Some(51_200)
    );
    assert_eq!(
        schedule.next_change_after(at("2026-06-06T22:00:00Z"), tz),
        Some((at("2026-06-07T06:00:00Z"), None))
    );
    assert_eq!(
        schedule.next_change_after(at("2026-06-07T06:00:00Z"), tz),
        Some((at("2026-06-13T22:00:00Z"), Some(51_200)))
    );
}

#[test]
fn maintenance_start_in_gap_and_overlap() {
    let in_gap = MaintenanceStartTime::Weekly {
        day_of_week: 0,
        hour: 2,
        minute: 30,
    };
    assert_eq!(
        in_gap.next_window_start(at("2026-03-07T00:00:00Z"), NY),
        at("2026-03-08T03:00:00-04:00")
    );
    let in_overlap = MaintenanceStartTime::Weekly {
        day_of_week: 0,
        hour: 1,
        minute: 30,
    };
    let first = at("2026-11-01T01:30:00-04:00");
    assert_eq!(
        in_overlap.next_window_start(at("2026-10-31T00:00:00Z"), NY),
        first
    );
    // The repeated 01:30 an hour later is not a second start.
    assert_eq!(
        in_overlap.next_window_start(first, NY),
        at("2026-11-08T01:30:00-05:00")
    );
    let hour = std::time::Duration::from_secs(3600);
    assert!(in_overlap.in_window(at("2026-11-01T01:15:00-05:00"), NY, hour));
    assert!(!in_overlap.in_window(at("2026-11-01T01:30:00-05:00"), NY, hour));
}

#[test]
fn day_of_month_past_the_end_is_the_last_day() {
    let start = MaintenanceStartTime::Monthly {
        day_of_month: 31,
        hour: 3,
        minute: 0,
    };
    let starts = start.next_window_starts(at("2027-01-31T03:00:00Z"), chrono_tz::UTC, 3);
    assert_eq!(
        starts,
        [
            at("2027-02-28T03:00:00Z"),
            at("2027-03-31T03:00:00Z"),
            at("2027-04-30T03:00:00Z")
        ]
    );
    let leap = MaintenanceStartTime::Monthly {
        day_of_month: 30,
        hour: 0,
        minute: 0,
    };
    assert_eq!(
        leap.next_window_start(at("2028-02-01T00:00:00Z"), chrono_tz::UTC),
        at("2028-02-29T00:00:00Z")
    );
}
