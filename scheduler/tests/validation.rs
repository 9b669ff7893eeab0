//! Each API rule for schedules and maintenance start times, rejected with its message.

use bgw_scheduler::bandwidth::BandwidthSchedule;
use bgw_scheduler::maintenance::MaintenanceStartTime;

fn interval(days: &str, start: (u32, u32), end: (u32, u32), rate: Option<u64>) -> String {
    let rate = rate.map_or(String::new(), |r| {
        format!(r#","AverageUploadRateLimitInBitsPerSec":{r}"#)
    });
    format!(
        r#"{{"DaysOfWeek":{days},"StartHourOfDay":{},"StartMinuteOfHour":{},"EndHourOfDay":{},"EndMinuteOfHour":{}{rate}}}"#,
        start.0, start.1, end.0, end.1
    )
}

fn rejects(intervals: &[String]) -> String {
    let json = format!("[{}]", intervals.join(","));
    BandwidthSchedule::from_json(&json)
        .expect_err("schedule should be refused")
        .to_string()
}

fn ok(days: &str, start: (u32, u32), end: (u32, u32)) -> String {
    interval(days, start, end, Some(1_000_000))
}

#[test]
fn each_schedule_rule_has_its_message() {
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            (0..21).map(|h| ok("[0]", (h, 0), (h, 0))).collect(),
            "interval 20: at most 20 intervals are allowed (the schedule has 21)",
        ),
        (vec![interval("[]", (1, 0), (2, 0), None)], "interval 0: DaysOfWeek must list 1 to 7 days"),
        (
            vec![ok("[1]", (0, 0), (0, 30)), ok("[0,7]", (1, 0), (2, 0))],
            "interval 1: day of week 7 is out of range (0 = Sunday to 6 = Saturday)",
        ),
        (vec![ok("[3,3]", (1, 0), (2, 0))], "interval 0: day of week 3 is listed more than once"),
        (vec![ok("[1]", (24, 0), (24, 0))], "interval 0: StartHourOfDay 24 is out of range (0 to 23)"),
        (vec![ok("[1]", (1, 0), (24, 0))], "interval 0: EndHourOfDay 24 is out of range (0 to 23)"),
        (vec![ok("[1]", (1, 60), (2, 0))], "interval 0: StartMinuteOfHour 60 is out of range (0 to 59)"),
        (vec![ok("[1]", (1, 0), (2, 60))], "interval 0: EndMinuteOfHour 60 is out of range (0 to 59)"),
        (vec![ok("[1]", (9, 30), (9, 29))], "interval 0: ends at 09:29 before it starts at 09:30"),
        (
            vec![interval("[1]", (1, 0), (2, 0), Some(51_199))],
            "interval 0: AverageUploadRateLimitInBitsPerSec 51199 is out of range (51200 to 8000000000000 bits per second)",
        ),
        (
            vec![interval("[1]", (1, 0), (2, 0), Some(8_000_000_000_001))],
            "interval 0: AverageUploadRateLimitInBitsPerSec 8000000000001 is out of range (51200 to 8000000000000 bits per second)",
        ),
        (
            // 08:00–08:59 and 08:59–10:00 share the minute 08:59.
            vec![ok("[1,2]", (8, 0), (8, 59)), ok("[6]", (0, 0), (23, 59)), ok("[2,3]", (8, 59), (10, 0))],
            "interval 2: overlaps interval 0 on Tuesday (day 2)",
        ),
    ];
    for (intervals, message) in cases {
        assert_eq!(rejects(&intervals), message);
    }
}

#[test]
fn edges_of_each_rule_are_accepted() {
    let json = format!(
        "[{}]",
        [
            interval("[0,1,2,3,4,5,6]", (0, 0), (0, 0), Some(51_200)),
            interval("[6,5]", (23, 59), (23, 59), Some(8_000_000_000_000)),
            // Back to back with the first interval: 00:01 follows 00:00.
            interval("[0]", (0, 1), (8, 59), None),
        ]
        .join(",")
    );
    let schedule = BandwidthSchedule::from_json(&json).unwrap();
    assert_eq!(schedule.intervals().len(), 3);
    assert_eq!(
        BandwidthSchedule::from_json("[]").unwrap(),
        BandwidthSchedule::unlimited()
    );
    let empty = r#"{"GatewayArn":"arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-1","BandwidthRateLimitIntervals":[]}"#;
    assert_eq!(
        BandwidthSchedule::from_json(empty).unwrap(),
        BandwidthSchedule::unlimited()
    );
}

#[test]
fn unparseable_schedule_says_what_shape_is_expected() {
    let err = BandwidthSchedule::from_json(r#"{"Intervals": 3}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("get-bandwidth-rate-limit-schedule"), "{err}");
}

#[test]
fn each_maintenance_rule_has_its_message() {
    let cases = [
        (r#"{"DayOfWeek":1,"MinuteOfHour":0}"#, "maintenance start time needs HourOfDay"),
        (r#"{"DayOfWeek":1,"HourOfDay":0}"#, "maintenance start time needs MinuteOfHour"),
        (
            r#"{"HourOfDay":1,"MinuteOfHour":0}"#,
            "maintenance start time needs exactly one of DayOfWeek (weekly) or DayOfMonth (monthly); neither was given",
        ),
        (
            r#"{"DayOfWeek":1,"DayOfMonth":1,"HourOfDay":1,"MinuteOfHour":0}"#,
            "maintenance start time needs exactly one of DayOfWeek (weekly) or DayOfMonth (monthly); both were given",
        ),
        (r#"{"DayOfWeek":1,"HourOfDay":24,"MinuteOfHour":0}"#, "maintenance start time: HourOfDay 24 is out of range (0 to 23)"),
        (r#"{"DayOfWeek":1,"HourOfDay":-1,"MinuteOfHour":0}"#, "maintenance start time: HourOfDay -1 is out of range (0 to 23)"),
        (r#"{"DayOfWeek":1,"HourOfDay":1,"MinuteOfHour":60}"#, "maintenance start time: MinuteOfHour 60 is out of range (0 to 59)"),
        (
            r#"{"DayOfWeek":7,"HourOfDay":1,"MinuteOfHour":0}"#,
            "maintenance start time: DayOfWeek 7 is out of range (0 = Sunday to 6 = Saturday)",
        ),
        (r#"{"DayOfMonth":0,"HourOfDay":1,"MinuteOfHour":0}"#, "maintenance start time: DayOfMonth 0 is out of range (1 to 31)"),
        (r#"{"DayOfMonth":32,"HourOfDay":1,"MinuteOfHour":0}"#, "maintenance start time: DayOfMonth 32 is out of range (1 to 31)"),
    ];
    for (json, message) in cases {
        assert_eq!(
            MaintenanceStartTime::from_json(json)
                .unwrap_err()
                .to_string(),
            message,
            "{json}"
        );
    }
}

#[test]
fn maintenance_start_round_trips_through_the_api_object() {
    for json in [
        r#"{"DayOfWeek":0,"HourOfDay":23,"MinuteOfHour":59}"#,
        r#"{"DayOfMonth":31,"HourOfDay":0,"MinuteOfHour":0}"#,
    ] {
        let start = MaintenanceStartTime::from_json(json).unwrap();
        assert_eq!(serde_json::to_string(&start).unwrap(), json);
        assert_eq!(
            serde_json::from_str::<MaintenanceStartTime>(json).unwrap(),
            start
        );
    }
}
