//! A bandwidth schedule put through aws-cli shows up in `bgw-agent status` with the limit and
//! next change computed in the gateway's time zone.

mod agent_support;

use std::time::Duration;

use agent_support::{wait_until, Agent, AgentOptions};
use bgw_tests::aws::AwsCli;
use bgw_tests::cloud::{Cloud, CloudOptions};
use chrono::{DateTime, Duration as Span, TimeZone, Timelike, Utc};

#[test]
fn schedule_put_is_visible_in_status_for_the_gateway_time_zone() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    // Tokyo: UTC+9 all year, so the expected values are easy to compute independently.
    let agent = Agent::start(
        &cloud,
        AgentOptions {
            timezone: "Asia/Tokyo".into(),
            ..Default::default()
        },
    );
    let arn = agent.activate(&cloud);
    let out = AwsCli::new(&cloud)
        .run(&[
            "put-bandwidth-rate-limit-schedule",
            "--gateway-arn",
            &arn,
            "--bandwidth-rate-limit-intervals",
            r#"[{"DaysOfWeek":[0,1,2,3,4,5,6],"StartHourOfDay":0,"StartMinuteOfHour":0,"EndHourOfDay":11,"EndMinuteOfHour":59,"AverageUploadRateLimitInBitsPerSec":1048576},
                {"DaysOfWeek":[0,1,2,3,4,5,6],"StartHourOfDay":12,"StartMinuteOfHour":0,"EndHourOfDay":23,"EndMinuteOfHour":59,"AverageUploadRateLimitInBitsPerSec":2097152}]"#,
        ])
        .unwrap();
    assert!(out.success(), "{}", out.stderr());

    let status = wait_until(
        Duration::from_secs(15),
        "the schedule reaches the agent",
        || {
            let s = agent.status();
            (s["bandwidth"]["intervals"] == 2).then_some(s)
        },
    );
    assert_eq!(status["timezone"], "Asia/Tokyo");
    let tokyo = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    let now = Utc::now().with_timezone(&tokyo);
    let morning = now.hour() < 12;
    let (current, next) = if morning {
        (1_048_576, 2_097_152)
    } else {
        (2_097_152, 1_048_576)
    };
    let boundary = if morning {
        now.date_naive().and_hms_opt(12, 0, 0).unwrap()
    } else {
        now.date_naive().and_hms_opt(0, 0, 0).unwrap() + Span::days(1)
    };
    let boundary: DateTime<Utc> = tokyo
        .from_local_datetime(&boundary)
        .unwrap()
        .with_timezone(&Utc);
    // A test that runs across the boundary itself cannot tell; everything else must match.
    if (boundary - Utc::now()).num_seconds() > 30 {
        assert_eq!(
            status["bandwidth"]["current_limit_bps"], current,
            "{status}"
        );
        assert_eq!(status["bandwidth"]["next_limit_bps"], next, "{status}");
        let at: DateTime<Utc> = status["bandwidth"]["next_change_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(at, boundary, "{status}");
    }

    // An empty schedule is unlimited.
    let out = AwsCli::new(&cloud)
        .run(&[
            "put-bandwidth-rate-limit-schedule",
            "--gateway-arn",
            &arn,
            "--bandwidth-rate-limit-intervals",
            "[]",
        ])
        .unwrap();
    assert!(out.success(), "{}", out.stderr());
    wait_until(
        Duration::from_secs(15),
        "the agent is unlimited again",
        || {
            let s = agent.status();
            (s["bandwidth"]["intervals"] == 0 && s["bandwidth"]["current_limit_bps"].is_null())
                .then_some(())
        },
    );
}
