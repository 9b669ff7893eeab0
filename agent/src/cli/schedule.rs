//! `bgw-agent schedule ...`: bandwidth schedule and maintenance window questions.
//!
//! Both commands answer offline from the same code the agent enforces with, so an operator can
//! ask "what limit is in force, and when does it change?" without waiting to find out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use bgw_scheduler::bandwidth::BandwidthSchedule;
use bgw_scheduler::maintenance::MaintenanceStartTime;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

#[derive(clap::Subcommand)]
pub enum ScheduleCommand {
    /// Print the upload limit in force at an instant and when, and to what, it next changes.
    ///
    /// Output: {"limit_bps": N|null, "next_change_at": RFC3339|null, "next_limit_bps": N|null};
    /// null limits mean unlimited.
    Explain(ExplainArgs),
    /// Print the next maintenance window starts as a JSON list of RFC 3339 instants.
    Maintenance(MaintenanceArgs),
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// The gateway's time zone, an IANA name such as Europe/London.
    #[arg(long, value_parser = parse_tz)]
    timezone: Tz,
    /// File holding the schedule as aws-cli prints it: the output of
    /// `aws backup-gateway get-bandwidth-rate-limit-schedule`, or just its interval list.
    /// `-` reads standard input.
    #[arg(long)]
    schedule: PathBuf,
    /// The instant to ask about, RFC 3339 (default: now).
    #[arg(long, value_parser = parse_instant)]
    at: Option<DateTime<Utc>>,
}

#[derive(clap::Args)]
pub struct MaintenanceArgs {
    /// The gateway's time zone, an IANA name such as Europe/London.
    #[arg(long, value_parser = parse_tz)]
    timezone: Tz,
    /// The maintenance start time as the API returns it, e.g.
    /// '{"DayOfWeek": 0, "HourOfDay": 3, "MinuteOfHour": 30}' or
    /// '{"DayOfMonth": 31, "HourOfDay": 2, "MinuteOfHour": 0}'.
    #[arg(long)]
    start: String,
    /// List starts strictly after this instant, RFC 3339 (default: now).
    #[arg(long, value_parser = parse_instant)]
    after: Option<DateTime<Utc>>,
    /// How many starts to list.
    #[arg(long, default_value_t = 1)]
    count: usize,
}

pub fn run(cmd: ScheduleCommand) -> anyhow::Result<ExitCode> {
    let output = match cmd {
        ScheduleCommand::Explain(args) => {
            let text = read_schedule(&args.schedule)?;
            let schedule = BandwidthSchedule::from_json(&text).with_context(|| {
                format!("the schedule in {} is not valid", source(&args.schedule))
            })?;
            explain(&schedule, args.timezone, args.at.unwrap_or_else(Utc::now))
        }
        ScheduleCommand::Maintenance(args) => {
            let start = MaintenanceStartTime::from_json(&args.start)
                .context("the --start maintenance start time is not valid")?;
            maintenance_starts(
                start,
                args.timezone,
                args.after.unwrap_or_else(Utc::now),
                args.count,
            )
        }
    };
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(ExitCode::SUCCESS)
}

/// The answer of `schedule explain`.
pub fn explain(schedule: &BandwidthSchedule, tz: Tz, at: DateTime<Utc>) -> Value {
    let next = schedule.next_change_after(at, tz);
    json!({
        "limit_bps": schedule.limit_at(at, tz),
        "next_change_at": next.map(|(instant, _)| rfc3339(instant, tz)),
        "next_limit_bps": next.and_then(|(_, limit)| limit),
    })
}

/// The answer of `schedule maintenance`.
pub fn maintenance_starts(
    start: MaintenanceStartTime,
    tz: Tz,
    after: DateTime<Utc>,
    count: usize,
) -> Value {
    start
        .next_window_starts(after, tz, count)
        .into_iter()
        .map(|s| Value::String(rfc3339(s, tz)))
        .collect()
}

/// An instant in RFC 3339 with the gateway's UTC offset at that instant.
fn rfc3339(instant: DateTime<Utc>, tz: Tz) -> String {
    instant
        .with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn source(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        path.display().to_string()
    }
}

fn read_schedule(path: &Path) -> anyhow::Result<String> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    text.with_context(|| format!("reading the schedule from {}", source(path)))
}

fn parse_tz(s: &str) -> Result<Tz, String> {
    s.parse::<Tz>()
        .map_err(|_| format!("unknown time zone {s:?}: use an IANA name such as Europe/London"))
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 instant such as 2026-06-01T09:00:00Z: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        parse_instant(s).unwrap()
    }

    #[test]
    fn explain_reports_limit_and_next_change_in_gateway_time() {
        let schedule = BandwidthSchedule::from_json(
            r#"{"GatewayArn": "arn:aws:backup-gateway:eu-west-2:123456789012:gateway/bgw-1",
                "BandwidthRateLimitIntervals": [{"DaysOfWeek": [1,2,3,4,5], "StartHourOfDay": 8,
                "StartMinuteOfHour": 0, "EndHourOfDay": 17, "EndMinuteOfHour": 59,
                "AverageUploadRateLimitInBitsPerSec": 104857600}]}"#,
        )
        .unwrap();
        let tz = chrono_tz::Europe::London;
        assert_eq!(
            explain(&schedule, tz, at("2026-06-01T11:00:00Z")),
            json!({"limit_bps": 104857600, "next_change_at": "2026-06-01T18:00:00+01:00",
                   "next_limit_bps": null})
        );
        assert_eq!(
            explain(&schedule, tz, at("2026-06-05T17:00:00Z")),
            json!({"limit_bps": null, "next_change_at": "2026-06-08T08:00:00+01:00",
                   "next_limit_bps": 104857600})
        );
        assert_eq!(
            explain(
                &BandwidthSchedule::unlimited(),
                tz,
                at("2026-06-05T17:00:00Z")
            ),
            json!({"limit_bps": null, "next_change_at": null, "next_limit_bps": null})
        );
    }

    #[test]
    fn maintenance_lists_starts_strictly_after() {
        let start = MaintenanceStartTime::from_json(
            r#"{"DayOfWeek": 0, "HourOfDay": 2, "MinuteOfHour": 30}"#,
        )
        .unwrap();
        let tz = chrono_tz::America::New_York;
        assert_eq!(
            maintenance_starts(start, tz, at("2026-03-01T07:30:00Z"), 2),
            // 2026-03-01 02:30 EST itself is excluded; on 03-08 02:30 falls in the gap.
            json!(["2026-03-08T03:00:00-04:00", "2026-03-15T02:30:00-04:00"])
        );
    }

    #[test]
    fn bad_arguments_explain_themselves() {
        assert!(parse_tz("Mars/Olympus").unwrap_err().contains("IANA"));
        assert!(parse_instant("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
