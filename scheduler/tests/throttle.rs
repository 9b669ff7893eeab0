//! The throttle in tokio's paused time: exact, fast and independent of the machine's load.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bgw_scheduler::bandwidth::BandwidthSchedule;
use bgw_scheduler::throttle::{
    burst_bytes_for, follow_schedule, Throttle, TokioWallClock, ZonedSchedule,
};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// (time since start, bytes) for every piece any stream released.
type Log = Arc<Mutex<Vec<(Duration, u64)>>>;

/// Runs `streams` uploads through `throttle` for `length` of tokio time and logs every piece.
async fn run_streams(
    throttle: &Throttle,
    streams: usize,
    length: Duration,
) -> Vec<(Duration, u64)> {
    let log: Log = Arc::default();
    let start = Instant::now();
    let chunk = Bytes::from(vec![0u8; 4 << 20]);
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let source = futures::stream::repeat_with({
            let chunk = chunk.clone();
            move || Ok::<_, Infallible>(chunk.clone())
        });
        let mut upload = throttle.stream(source);
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(piece)) = upload.next().await {
                let at = start.elapsed();
                if at > length {
                    break;
                }
                log.lock().unwrap().push((at, piece.len() as u64));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut events = Arc::try_unwrap(log).unwrap().into_inner().unwrap();
    events.sort_by_key(|&(at, _)| at);
    events
}

/// The most bytes released in any closed window of length `window`.
fn worst_window(events: &[(Duration, u64)], window: Duration) -> u64 {
    let mut worst = 0;
    let mut end = 0;
    let mut sum = 0;
    for (start, &(t0, _)) in events.iter().enumerate() {
        while end < events.len() && events[end].0 <= t0 + window {
            sum += events[end].1;
            end += 1;
        }
        worst = worst.max(sum);
        sum -= events[start].1;
    }
    worst
}

fn bytes_between(events: &[(Duration, u64)], from: Duration, to: Duration) -> u64 {
    events
        .iter()
        .filter(|(at, _)| *at >= from && *at < to)
        .map(|(_, n)| n)
        .sum()
}

/// Bytes a stream may hold paid-for but unsent: less than one cell of governor's accounting.
fn cell_slack(rate_bps: u64, streams: usize) -> u64 {
    (streams as u64 + 1) * (rate_bps / 8 / 1_000_000 + 1)
}

async fn check_rate(rate_bps: u64, streams: usize) {
    let length = Duration::from_secs(30);
    let throttle = Throttle::new(Some(rate_bps));
    let events = run_streams(&throttle, streams, length).await;
    assert!(throttle.burst_bytes().unwrap() >= burst_bytes_for(rate_bps));
    let bytes_per_sec = rate_bps as f64 / 8.0;

    for window in [10, 100, 1_000, 5_000].map(Duration::from_millis) {
        let worst = worst_window(&events, window);
        let bound = (bytes_per_sec * window.as_secs_f64()) as u64
            + throttle.burst_bytes().unwrap()
            + cell_slack(rate_bps, streams);
        assert!(
            worst <= bound,
            "{rate_bps} bps, {streams} streams: {worst} bytes in a {window:?} window, bound {bound}"
        );
    }

    let total: u64 = events.iter().map(|(_, n)| n).sum();
    let achieved = total as f64 / length.as_secs_f64();
    let error = (achieved - bytes_per_sec).abs() / bytes_per_sec;
    assert!(
        error < 0.01,
        "{rate_bps} bps, {streams} streams: long-run {achieved:.0} B/s, limit {bytes_per_sec:.0} B/s"
    );
}

#[tokio::test(start_paused = true)]
async fn sum_of_concurrent_streams_respects_the_limit() {
    for rate_bps in [51_200, 1_000_000, 100_000_000, 10_000_000_000] {
        for streams in [1, 4, 16] {
            check_rate(rate_bps, streams).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn rate_change_mid_stream_is_honoured_within_a_second() {
    for (before, after) in [
        (1_000_000, 100_000_000),
        (100_000_000, 51_200),
        (51_200, 10_000_000_000),
    ] {
        let throttle = Throttle::new(Some(before));
        let switch = {
            let throttle = throttle.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                throttle.set_rate(Some(after));
            })
        };
        let events = run_streams(&throttle, 4, Duration::from_secs(20)).await;
        switch.await.unwrap();

        let early = bytes_between(&events, Duration::from_secs(1), Duration::from_secs(10));
        let late = bytes_between(&events, Duration::from_secs(11), Duration::from_secs(20));
        for (what, bytes, rate) in [("before", early, before), ("after", late, after)] {
            let achieved = bytes as f64 / 9.0;
            let expected = rate as f64 / 8.0;
            let tolerance = 0.01 * expected + 2.0 * burst_bytes_for(rate) as f64 / 9.0;
            assert!(
                (achieved - expected).abs() <= tolerance,
                "{before} -> {after} bps, {what} the change: {achieved:.0} B/s, expected {expected:.0}"
            );
        }
        // The second after the change carries no more than the new rate allows (plus a burst
        // and one piece already granted at the old rate).
        let first_second = bytes_between(&events, Duration::from_secs(10), Duration::from_secs(11));
        let bound = after.max(before) / 8 + burst_bytes_for(after.max(before));
        assert!(first_second <= bound, "{first_second} > {bound}");
    }
}

#[tokio::test(start_paused = true)]
async fn unlimited_costs_no_time() {
    let throttle = Throttle::new(None);
    let start = Instant::now();
    let source = futures::stream::iter(
        (0..256).map(|_| Ok::<_, Infallible>(Bytes::from_static(&[0u8; 4096]))),
    );
    let pieces: Vec<_> = throttle.stream(source).collect().await;
    assert_eq!(pieces.len(), 256, "chunks pass whole when unlimited");
    let mut writer = throttle.writer(tokio::io::sink());
    writer.write_all(&vec![0u8; 64 << 20]).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn writer_and_reader_take_size_over_rate() {
    let rate_bps = 8_000_000; // 1 MB/s
    let size = 3_000_000usize;

    let throttle = Throttle::new(Some(rate_bps));
    let start = Instant::now();
    let mut writer = throttle.writer(tokio::io::sink());
    writer.write_all(&vec![7u8; size]).await.unwrap();
    let wrote_in = start.elapsed().as_secs_f64();

    let throttle = Throttle::new(Some(rate_bps));
    let start = Instant::now();
    let mut reader = throttle.reader(tokio::io::repeat(1).take(size as u64));
    let mut sink = Vec::new();
    reader.read_to_end(&mut sink).await.unwrap();
    let read_in = start.elapsed().as_secs_f64();
    assert_eq!(sink.len(), size);

    for elapsed in [wrote_in, read_in] {
        assert!(
            (2.95..=3.01).contains(&elapsed),
            "took {elapsed} s for 3 s of data"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn burst_after_idle_is_bounded() {
    let rate_bps = 800_000_000; // 100 MB/s: burst is 50 ms = 5 MB
    let throttle = Throttle::new(Some(rate_bps));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let start = Instant::now();
    let source = futures::stream::iter([Ok::<_, Infallible>(Bytes::from(vec![0u8; 20_000_000]))]);
    let mut upload = throttle.stream(source);
    let mut at_once = 0;
    while let Some(Ok(piece)) = upload.next().await {
        if start.elapsed() == Duration::ZERO {
            at_once += piece.len() as u64;
        }
    }
    let burst = burst_bytes_for(rate_bps);
    assert!(
        at_once <= burst + 100,
        "{at_once} bytes went out at once, burst {burst}"
    );
    assert!(
        at_once >= burst / 2,
        "an idle throttle lets its burst out at once ({at_once})"
    );
}

#[tokio::test(start_paused = true)]
async fn follower_switches_rate_on_the_boundary() {
    // Weekdays 09:00–16:59 New York time at 1 Mbit/s, unlimited otherwise.
    let schedule = BandwidthSchedule::from_json(
        r#"[{"DaysOfWeek":[1,2,3,4,5],"StartHourOfDay":9,"StartMinuteOfHour":0,
             "EndHourOfDay":16,"EndMinuteOfHour":59,"AverageUploadRateLimitInBitsPerSec":1000000}]"#,
    )
    .unwrap();
    let tz = chrono_tz::America::New_York;
    // Monday 2026-03-09 08:59:00 EDT, the day after the spring-forward.
    let origin = "2026-03-09T12:59:00Z".parse().unwrap();
    let clock = TokioWallClock::starting_at(origin);
    let start = Instant::now();
    let throttle = Throttle::new(None);
    let (_tx, rx) = watch::channel(ZonedSchedule { schedule, tz });
    let cancel = CancellationToken::new();
    let follower = tokio::spawn(follow_schedule(throttle.clone(), rx, clock, cancel.clone()));

    let boundary = start + Duration::from_secs(60);
    tokio::time::sleep_until(boundary - Duration::from_millis(1)).await;
    assert_eq!(throttle.rate(), None);
    tokio::time::sleep_until(boundary + Duration::from_millis(1)).await;
    assert_eq!(throttle.rate(), Some(1_000_000));
    // 17:00 EDT is 8 hours later.
    let end = boundary + Duration::from_secs(8 * 3600);
    tokio::time::sleep_until(end - Duration::from_millis(1)).await;
    assert_eq!(throttle.rate(), Some(1_000_000));
    tokio::time::sleep_until(end + Duration::from_millis(1)).await;
    assert_eq!(throttle.rate(), None);

    cancel.cancel();
    follower.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn follower_applies_a_new_schedule_at_once() {
    let tz = chrono_tz::UTC;
    let clock = TokioWallClock::starting_at("2026-01-01T00:00:00Z".parse().unwrap());
    let throttle = Throttle::new(None);
    let (tx, rx) = watch::channel(ZonedSchedule {
        schedule: BandwidthSchedule::unlimited(),
        tz,
    });
    let cancel = CancellationToken::new();
    let follower = tokio::spawn(follow_schedule(throttle.clone(), rx, clock, cancel.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(throttle.rate(), None);
    let all_week = BandwidthSchedule::from_json(
        r#"[{"DaysOfWeek":[0,1,2,3,4,5,6],"StartHourOfDay":0,"StartMinuteOfHour":0,
             "EndHourOfDay":23,"EndMinuteOfHour":59,"AverageUploadRateLimitInBitsPerSec":51200}]"#,
    )
    .unwrap();
    tx.send(ZonedSchedule {
        schedule: all_week,
        tz,
    })
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(throttle.rate(), Some(51_200));
    drop(tx);
    follower.await.unwrap();
}
