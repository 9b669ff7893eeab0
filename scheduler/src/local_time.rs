//! Wall-clock arithmetic in an IANA time zone: UTC offsets, their changes, and turning a local
//! wall time back into an instant when daylight saving time makes it missing or repeated.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Local wall time of `instant` in `tz`.
pub(crate) fn wall(instant: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    instant.with_timezone(&tz).naive_local()
}

/// Offset from UTC, in seconds, in force in `tz` at `instant`.
pub(crate) fn offset_secs(instant: DateTime<Utc>, tz: Tz) -> i32 {
    tz.offset_from_utc_datetime(&instant.naive_utc())
        .fix()
        .local_minus_utc()
}

fn at_second(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("timestamp in chrono's range")
}

/// The first instant in `(from, to]` whose UTC offset differs from the one at `from`.
///
/// Time zones change offset at whole seconds and at most a few times a year, so a bisection on
/// seconds finds the change; callers keep the span short (days) so it holds at most one change.
pub(crate) fn first_offset_change(
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let before = offset_secs(from, tz);
    if to <= from || offset_secs(to, tz) == before {
        return None;
    }
    // Invariant: offset at `lo` is `before`, offset at `hi` is not.
    let mut lo = from.timestamp();
    let mut hi = to.timestamp() + i64::from(to.timestamp_subsec_nanos() > 0);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_secs(at_second(mid), tz) == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(at_second(hi))
}

/// The first instant at which the wall clock of `tz` reaches `local`.
///
/// For an ordinary wall time that is the one instant showing it; for a wall time repeated by a
/// fall-back overlap it is the first occurrence; for a wall time skipped by a spring-forward gap
/// it is the instant the clock jumps over it (the first instant after the gap).
pub(crate) fn first_reaching(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => {
            // No zone is more than 15 hours away from UTC, so the jump lies within this span.
            let span = Duration::hours(15);
            let from = Utc.from_utc_datetime(&(local - span));
            let to = Utc.from_utc_datetime(&(local + span));
            first_offset_change(tz, from, to).unwrap_or_else(|| {
                // Unreachable for real zones; fall back to the offset in force before the gap.
                let off = offset_secs(from, tz);
                Utc.from_utc_datetime(&(local - Duration::seconds(i64::from(off))))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn finds_new_york_spring_forward() {
        let tz = chrono_tz::America::New_York;
        let change =
            first_offset_change(tz, utc("2026-03-07T00:00:00Z"), utc("2026-03-10T00:00:00Z"));
        assert_eq!(change, Some(utc("2026-03-08T07:00:00Z")));
    }

    #[test]
    fn gap_resolves_to_the_jump_and_overlap_to_first_occurrence() {
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            first_reaching(local(2026, 3, 8, 2, 30), ny),
            utc("2026-03-08T03:00:00-04:00")
        );
        assert_eq!(
            first_reaching(local(2026, 11, 1, 1, 30), ny),
            utc("2026-11-01T01:30:00-04:00")
        );
        // Lord Howe moves its clocks by 30 minutes: 02:00 -> 02:30 on 2026-10-04.
        let lh = chrono_tz::Australia::Lord_Howe;
        assert_eq!(
            first_reaching(local(2026, 10, 4, 2, 10), lh),
            utc("2026-10-04T02:30:00+11:00")
        );
    }
}
