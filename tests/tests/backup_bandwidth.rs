//! A backup under a bandwidth schedule set with aws-cli: its upload rate, measured at the cloud
//! (`BytesTransferred`, sampled with boto3), follows the schedule within ±2 % over 10 s,
//! across a change of the limit in the middle.
//!
//! The schedule changes at a real minute boundary a few seconds after the backup starts (an
//! interval ends at the end of its end minute), so the agent's own clock and time zone code
//! make the change, as in production.

mod backup_support;
mod sync_support;

use std::time::Duration;

use backup_support::{wait_for, BackupSetup, MIB};
use bgw_tests::aws::{python, Venv};
use chrono::{DateTime, Timelike, Utc};

const BEFORE: u64 = 4_000_000; // 500 kB/s
const AFTER: u64 = 8_000_000; // 1 MB/s

fn schedule(boundary: DateTime<Utc>) -> String {
    // Minutes of the day before the boundary at BEFORE, from it on at AFTER (the gateway runs
    // in Europe/Paris; the test computes the boundary in that zone).
    let local = boundary.with_timezone(&chrono_tz::Europe::Paris);
    let (h, m) = (local.hour(), local.minute());
    let (ph, pm) = if m == 0 { (h - 1, 59) } else { (h, m - 1) };
    format!(
        r#"[{{"DaysOfWeek":[0,1,2,3,4,5,6],"StartHourOfDay":0,"StartMinuteOfHour":0,"EndHourOfDay":{ph},"EndMinuteOfHour":{pm},"AverageUploadRateLimitInBitsPerSec":{BEFORE}}},
            {{"DaysOfWeek":[0,1,2,3,4,5,6],"StartHourOfDay":{h},"StartMinuteOfHour":{m},"EndHourOfDay":23,"EndMinuteOfHour":59,"AverageUploadRateLimitInBitsPerSec":{AFTER}}}]"#
    )
}

/// Bytes received at `t` (seconds since the epoch), interpolated between samples.
fn at(samples: &[(f64, u64)], t: f64) -> f64 {
    let i = samples
        .iter()
        .position(|(ts, _)| *ts >= t)
        .unwrap_or_else(|| panic!("no sample after {t}: {samples:?}"));
    assert!(i > 0, "no sample before {t}");
    let (t0, b0) = samples[i - 1];
    let (t1, b1) = samples[i];
    b0 as f64 + (b1 as f64 - b0 as f64) * (t - t0) / (t1 - t0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_follows_the_bandwidth_schedule_across_a_limit_change() {
    let b = BackupSetup::start(64 * MIB).await;
    // The next minute boundary at least 20 s away (and not midnight in Paris).
    let mut boundary = Utc::now()
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap()
        + chrono::Duration::minutes(1);
    while (boundary - Utc::now()).num_seconds() < 20
        || boundary.with_timezone(&chrono_tz::Europe::Paris).hour() == 0
            && boundary.with_timezone(&chrono_tz::Europe::Paris).minute() == 0
    {
        boundary += chrono::Duration::minutes(1);
    }
    b.s.aws(&[
        "put-bandwidth-rate-limit-schedule",
        "--gateway-arn",
        &b.s.gateway_arn,
        "--bandwidth-rate-limit-intervals",
        &schedule(boundary),
    ]);
    b.s.wait_status("the schedule at the agent", |s| {
        (s["bandwidth"]["current_limit_bps"] == BEFORE).then_some(())
    })
    .await;
    // Start the backup 12 s before the boundary.
    let start_at = boundary - chrono::Duration::seconds(12);
    if let Ok(wait) = (start_at - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let job = b.start_backup();
    wait_for(Duration::from_secs(20), "the backup to upload", || {
        (backup_support::bytes_transferred(&b.describe(&job)) > 0).then_some(())
    })
    .await;

    // boto3 samples BytesTransferred every 100 ms from 7 s before to 7 s after the boundary.
    let b_epoch = boundary.timestamp() as f64;
    let script = format!(
        r#"
import boto3, json, time
c = boto3.client("backup")
start, end = {b_epoch} - 7.0, {b_epoch} + 7.0
while time.time() < start:
    time.sleep(0.01)
out = []
while time.time() < end:
    t0 = time.time()
    d = c.describe_backup_job(BackupJobId="{job}")
    t1 = time.time()
    out.append(((t0 + t1) / 2, d.get("BytesTransferred", 0)))
    time.sleep(max(0.0, 0.1 - (time.time() - t0)))
print(json.dumps(out))
"#
    );
    let out = tokio::task::block_in_place(|| python(Venv::Cbor, &b.s.cloud, &script)).unwrap();
    assert!(out.success(), "boto3 sampling failed: {}", out.stderr);
    let samples: Vec<(f64, u64)> = serde_json::from_str(out.stdout.trim()).unwrap();
    backup_support::backup(&b.s, &["stop-backup-job", "--backup-job-id", &job]);

    let rate = |from: f64, to: f64| (at(&samples, to) - at(&samples, from)) / (to - from) * 8.0;
    let before = rate(b_epoch - 5.0, b_epoch);
    let after = rate(b_epoch, b_epoch + 5.0);
    let across = (at(&samples, b_epoch + 5.0) - at(&samples, b_epoch - 5.0)) * 8.0;
    let expected = (BEFORE + AFTER) as f64 * 5.0;
    let error = across / expected - 1.0;
    eprintln!(
        "before {before:.0} bit/s, after {after:.0} bit/s, 10 s across the change {across:.0} bits (expected {expected:.0}, {:+.2} %)",
        error * 100.0
    );
    assert!(
        error.abs() <= 0.02,
        "over the 10 s across the change the cloud received {across:.0} bits, expected {expected:.0} ({:+.2} %)",
        error * 100.0
    );
    assert!(
        (before / BEFORE as f64 - 1.0).abs() <= 0.05,
        "before the change: {before:.0} bit/s"
    );
    assert!(
        (after / AFTER as f64 - 1.0).abs() <= 0.05,
        "after the change: {after:.0} bit/s"
    );
}
