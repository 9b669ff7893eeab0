//! Property tests: the schedule and window maths agree with minute-by-minute brute force, over
//! several years, in zones with one-hour, half-hour and no daylight saving shifts.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use bgw_scheduler::bandwidth::{BandwidthSchedule, Interval};
use bgw_scheduler::maintenance::MaintenanceStartTime;

const ZONES: [Tz; 5] = [
    chrono_tz::America::New_York,
    chrono_tz::Europe::London,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Asia::Kolkata,
    chrono_tz::UTC,
];

fn zone() -> impl Strategy<Value = Tz> {
    (0..ZONES.len()).prop_map(|i| ZONES[i])
}

fn offset_of(t: DateTime<Utc>, tz: Tz) -> i32 {
    use chrono::Offset;
    t.with_timezone(&tz).offset().fix().local_minus_utc()
}

/// Every UTC offset change of `tz` from 2024 to 2030, found by scanning hours, then minutes.
fn transitions(tz: Tz) -> &'static [DateTime<Utc>] {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Cache = Mutex<HashMap<String, &'static [DateTime<Utc>]>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap();
    cache.entry(tz.name().to_string()).or_insert_with(|| {
        let mut found = Vec::new();
        let mut t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap();
        while t < end {
            let next = t + Duration::hours(1);
            if offset_of(next, tz) != offset_of(t, tz) {
                let mut m = t;
                while offset_of(m, tz) == offset_of(t, tz) {
                    m += Duration::minutes(1);
                }
                found.push(m);
            }
            t = next;
        }
        Vec::leak(found)
    })
}

/// A zone with daylight saving time and one of its clock changes.
fn transition() -> impl Strategy<Value = (Tz, DateTime<Utc>)> {
    (0usize..3, any::<prop::sample::Index>()).prop_map(|(z, i)| {
        let tz = ZONES[z];
        let all = transitions(tz);
        (tz, *i.get(all))
    })
}

/// Hours near midnight and the usual DST switch hours come up often.
fn hour() -> impl Strategy<Value = u8> {
    prop_oneof![0u8..24, 0u8..4, Just(23u8)]
}

fn rate() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        Just(None),
        Just(Some(51_200)),
        Just(Some(1_000_000)),
        (51_200u64..=8_000_000_000_000u64).prop_map(Some),
    ]
}

fn interval() -> impl Strategy<Value = Interval> {
    (
        proptest::sample::subsequence((0u8..7).collect::<Vec<_>>(), 1..=7),
        hour(),
        0u8..60,
        0u32..(6 * 60),
        rate(),
    )
        .prop_map(|(days, start_hour, start_minute, length, rate)| {
            let start = u32::from(start_hour) * 60 + u32::from(start_minute);
            let end = (start + length).min(24 * 60 - 1);
            Interval {
                days_of_week: days,
                start_hour,
                start_minute,
                end_hour: (end / 60) as u8,
                end_minute: (end % 60) as u8,
                average_upload_rate_limit_bps: rate,
            }
        })
}

/// Random intervals, keeping those that do not overlap the ones kept before.
fn schedule() -> impl Strategy<Value = BandwidthSchedule> {
    proptest::collection::vec(interval(), 0..30).prop_map(|candidates| {
        let mut kept: Vec<Interval> = Vec::new();
        for candidate in candidates {
            let mut trial = kept.clone();
            trial.push(candidate);
            if trial.len() <= 20 && BandwidthSchedule::new(trial.clone()).is_ok() {
                kept = trial;
            }
        }
        BandwidthSchedule::new(kept).unwrap()
    })
}

/// Instants from 2024 to 2030, half of them in the months where the zones switch clocks.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let start = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let end = Utc
        .with_ymd_and_hms(2031, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    prop_oneof![
        (start..end).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
        (
            2024i32..2031,
            prop::sample::select(vec![3u32, 4, 10, 11]),
            0i64..(31 * 86_400)
        )
            .prop_map(
                |(y, m, offset)| Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).unwrap()
                    + Duration::seconds(offset)
            ),
        // Sub-second instants too.
        (start..end, 0u32..1_000_000_000)
            .prop_map(|(s, ns)| DateTime::from_timestamp(s, ns).unwrap()),
    ]
}

/// The limit for each minute of the week, straight from the intervals.
fn weekly_table(schedule: &BandwidthSchedule) -> Vec<Option<u64>> {
    let mut table = vec![None; 7 * 1440];
    for i in schedule.intervals() {
        for &d in &i.days_of_week {
            let start = usize::from(i.start_hour) * 60 + usize::from(i.start_minute);
            let end = usize::from(i.end_hour) * 60 + usize::from(i.end_minute);
            for m in start..=end {
                table[usize::from(d) * 1440 + m] = i.average_upload_rate_limit_bps;
            }
        }
    }
    table
}

fn brute_limit(table: &[Option<u64>], t: DateTime<Utc>, tz: Tz) -> Option<u64> {
    let local = t.with_timezone(&tz);
    let minute = local.weekday().num_days_from_sunday() as usize * 1440
        + local.hour() as usize * 60
        + local.minute() as usize;
    table[minute]
}

fn next_whole_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let s = t.timestamp();
    DateTime::from_timestamp((s.div_euclid(60) + 1) * 60, 0).unwrap()
}

/// A schedule with an interval that starts or ends within 90 minutes (wall time) of a clock
/// change, and an instant up to three days before the change.
fn schedule_near_transition() -> impl Strategy<Value = (BandwidthSchedule, Tz, DateTime<Utc>)> {
    (
        transition(),
        -90i64..=90,
        0u32..180,
        rate(),
        schedule(),
        0i64..(3 * 86_400),
    )
        .prop_map(|((tz, at), shift, length, rate, others, before)| {
            let local = (at + Duration::minutes(shift))
                .with_timezone(&tz)
                .naive_local();
            let day = local.weekday().num_days_from_sunday() as u8;
            let minute = local.hour() * 60 + local.minute();
            // Either starting at that wall minute or ending just before it.
            let (start, end) = if shift % 2 == 0 {
                (minute, (minute + length).min(1439))
            } else {
                (minute.saturating_sub(length + 1), minute.saturating_sub(1))
            };
            let targeted = Interval {
                days_of_week: vec![day],
                start_hour: (start / 60) as u8,
                start_minute: (start % 60) as u8,
                end_hour: (end / 60) as u8,
                end_minute: (end % 60) as u8,
                average_upload_rate_limit_bps: rate.or(Some(51_200)),
            };
            let mut kept = vec![targeted];
            for other in others.intervals() {
                let mut trial = kept.clone();
                trial.push(other.clone());
                if trial.len() <= 20 && BandwidthSchedule::new(trial.clone()).is_ok() {
                    kept = trial;
                }
            }
            (
                BandwidthSchedule::new(kept).unwrap(),
                tz,
                at - Duration::seconds(before),
            )
        })
}

fn any_case() -> impl Strategy<Value = (BandwidthSchedule, Tz, DateTime<Utc>)> {
    prop_oneof![(schedule(), zone(), instant()), schedule_near_transition(),]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn limit_and_next_change_match_brute_force(case in any_case()) {
        let (schedule, tz, t0) = case;
        let table = weekly_table(&schedule);
        let current = brute_limit(&table, t0, tz);
        prop_assert_eq!(schedule.limit_at(t0, tz), current);

        // Every zone here changes offset on whole minutes, so the limit can only change there.
        let horizon = Duration::days(9);
        let mut m = next_whole_minute(t0);
        let mut brute = None;
        while m <= t0 + horizon {
            let limit = brute_limit(&table, m, tz);
            if limit != current {
                brute = Some((m, limit));
                break;
            }
            m += Duration::minutes(1);
        }
        let answer = schedule.next_change_after(t0, tz);
        match brute {
            Some(expected) => prop_assert_eq!(answer, Some(expected)),
            None => prop_assert!(
                answer.is_none_or(|(at, _)| at > t0 + horizon),
                "next_change_after gave {:?}, brute force saw no change", answer
            ),
        }
        if let Some((at, limit)) = answer {
            prop_assert!(at > t0);
            prop_assert_eq!(schedule.limit_at(at, tz), limit);
        }
    }

    #[test]
    fn validated_schedules_round_trip_through_api_json(schedule in schedule()) {
        let json = serde_json::to_string(&serde_json::json!({
            "GatewayArn": "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-1234",
            "BandwidthRateLimitIntervals": schedule,
        })).unwrap();
        prop_assert_eq!(&BandwidthSchedule::from_json(&json).unwrap(), &schedule);
        let bare = serde_json::to_string(&schedule).unwrap();
        prop_assert_eq!(&BandwidthSchedule::from_json(&bare).unwrap(), &schedule);
        let again: BandwidthSchedule = serde_json::from_str(&bare).unwrap();
        prop_assert_eq!(again, schedule);
    }
}

fn start_time() -> impl Strategy<Value = MaintenanceStartTime> {
    prop_oneof![
        (0u8..7, hour(), 0u8..60).prop_map(|(day_of_week, hour, minute)| {
            MaintenanceStartTime::Weekly {
                day_of_week,
                hour,
                minute,
            }
        }),
        (prop_oneof![1u8..=31, 28u8..=31], hour(), 0u8..60).prop_map(
            |(day_of_month, hour, minute)| MaintenanceStartTime::Monthly {
                day_of_month,
                hour,
                minute
            }
        ),
    ]
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][month as usize - 1]
}

/// Wall times at which a window opens, for local dates from `from` for `days` days.
fn brute_targets(start: MaintenanceStartTime, from: NaiveDate, days: u64) -> Vec<NaiveDateTime> {
    from.iter_days()
        .take(days as usize)
        .filter_map(|d| {
            let (ok, h, m) = match start {
                MaintenanceStartTime::Weekly {
                    day_of_week,
                    hour,
                    minute,
                } => (
                    d.weekday().num_days_from_sunday() == u32::from(day_of_week),
                    hour,
                    minute,
                ),
                MaintenanceStartTime::Monthly {
                    day_of_month,
                    hour,
                    minute,
                } => (
                    d.day() == u32::from(day_of_month).min(days_in_month(d.year(), d.month())),
                    hour,
                    minute,
                ),
            };
            ok.then(|| d.and_hms_opt(h.into(), m.into(), 0).unwrap())
        })
        .collect()
}

/// The first whole minute at which the wall clock shows `target` or later.
fn brute_reaching(target: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    let mut m = Utc.from_utc_datetime(&(target - Duration::hours(15)));
    while m.with_timezone(&tz).naive_local() < target {
        m += Duration::minutes(1);
    }
    m
}

fn brute_starts(start: MaintenanceStartTime, around: DateTime<Utc>, tz: Tz) -> Vec<DateTime<Utc>> {
    let from = around.with_timezone(&tz).date_naive() - Duration::days(40);
    let mut starts: Vec<_> = brute_targets(start, from, 110)
        .into_iter()
        .map(|n| brute_reaching(n, tz))
        .collect();
    starts.sort();
    starts
}

/// A start time within 90 minutes (wall time) of a clock change, on that day of the week or
/// month, and an instant up to ten days before the change.
fn start_near_transition() -> impl Strategy<Value = (MaintenanceStartTime, Tz, DateTime<Utc>)> {
    (
        transition(),
        -90i64..=90,
        any::<bool>(),
        0i64..(10 * 86_400),
    )
        .prop_map(|((tz, at), shift, weekly, before)| {
            // The wall time `shift` minutes from the change, read with the offset before it:
            // this lands inside gaps and overlaps.
            let offset = offset_of(at - Duration::minutes(1), tz);
            let local =
                at.naive_utc() + Duration::seconds(offset.into()) + Duration::minutes(shift);
            let (hour, minute) = (local.hour() as u8, local.minute() as u8);
            let start = if weekly {
                MaintenanceStartTime::Weekly {
                    day_of_week: local.weekday().num_days_from_sunday() as u8,
                    hour,
                    minute,
                }
            } else {
                MaintenanceStartTime::Monthly {
                    day_of_month: local.day() as u8,
                    hour,
                    minute,
                }
            };
            (start, tz, at - Duration::seconds(before))
        })
}

fn any_window_case() -> impl Strategy<Value = (MaintenanceStartTime, Tz, DateTime<Utc>)> {
    prop_oneof![(start_time(), zone(), instant()), start_near_transition()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn maintenance_windows_match_brute_force(
        case in any_window_case(),
        length_minutes in prop_oneof![1i64..=240, Just(60)],
    ) {
        let (start, tz, t0) = case;
        let starts = brute_starts(start, t0, tz);
        let expected = *starts.iter().find(|s| **s > t0).unwrap();
        prop_assert_eq!(start.next_window_start(t0, tz), expected);

        let length = Duration::minutes(length_minutes);
        let inside = starts.iter().any(|s| *s <= t0 && t0 < *s + length);
        prop_assert_eq!(start.in_window(t0, tz, length.to_std().unwrap()), inside);
        // And at the edges of the window that follows.
        prop_assert!(start.in_window(expected, tz, length.to_std().unwrap()));
        let just_before_end = expected + length - Duration::seconds(1);
        prop_assert!(start.in_window(just_before_end, tz, length.to_std().unwrap()));
    }
}
