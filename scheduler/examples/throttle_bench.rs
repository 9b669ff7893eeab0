//! Pushes real bytes over loopback TCP through the shared throttle and prints figures.
//!
//! ```text
//! cargo run --release -p bgw-scheduler --example throttle_bench
//! ```
//!
//! For 1, 4 and 16 concurrent streams at 1 Mbit/s, 100 Mbit/s, 1 Gbit/s and 5 Gbit/s (10 s
//! each), then unlimited against a raw loopback copy (5 s each), it prints the achieved rate,
//! its error against the limit, the worst 1-second window (against limit + burst) and the CPU
//! time per GB (sender and receiver together: both run in this process). `BENCH_SECONDS`
//! overrides the 10 s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgw_scheduler::throttle::{burst_bytes_for, Throttle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BUCKET: Duration = Duration::from_millis(10);
const WRITE_SIZE: usize = 256 * 1024;

struct Run {
    bytes: u64,
    seconds: f64,
    worst_second: u64,
    cpu_seconds: f64,
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Runs `streams` uploads for `length`, through `throttle` or raw, and measures at the receiver.
async fn run(throttle: Option<Throttle>, streams: usize, length: Duration) -> Run {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let buckets: Arc<Vec<AtomicU64>> = Arc::new(
        (0..(length.as_millis() / BUCKET.as_millis() + 200))
            .map(|_| AtomicU64::new(0))
            .collect(),
    );
    let cpu_before = cpu_seconds();
    let start = Instant::now();

    let receiver = {
        let buckets = buckets.clone();
        tokio::spawn(async move {
            let mut readers = Vec::new();
            for _ in 0..streams {
                let (mut socket, _) = listener.accept().await.unwrap();
                let buckets = buckets.clone();
                readers.push(tokio::spawn(async move {
                    let mut buf = vec![0u8; WRITE_SIZE];
                    loop {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        let slot = (start.elapsed().as_millis() / BUCKET.as_millis()) as usize;
                        if let Some(b) = buckets.get(slot) {
                            b.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                }));
            }
            for r in readers {
                r.await.unwrap();
            }
        })
    };

    let mut senders = Vec::new();
    for _ in 0..streams {
        let throttle = throttle.clone();
        senders.push(tokio::spawn(async move {
            let socket = TcpStream::connect(addr).await.unwrap();
            socket.set_nodelay(true).unwrap();
            let data = vec![0x5au8; WRITE_SIZE];
            match throttle {
                Some(t) => {
                    let mut w = t.writer(socket);
                    while start.elapsed() < length {
                        w.write_all(&data).await.unwrap();
                    }
                }
                None => {
                    let mut w = socket;
                    while start.elapsed() < length {
                        w.write_all(&data).await.unwrap();
                    }
                }
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    receiver.await.unwrap();
    let cpu = cpu_seconds() - cpu_before;

    let counts: Vec<u64> = buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
    let in_run = (length.as_millis() / BUCKET.as_millis()) as usize;
    let bytes: u64 = counts[..in_run].iter().sum();
    let per_second = (Duration::from_secs(1).as_millis() / BUCKET.as_millis()) as usize;
    let worst_second = counts
        .windows(per_second)
        .map(|w| w.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    Run {
        bytes,
        seconds: length.as_secs_f64(),
        worst_second,
        cpu_seconds: cpu,
    }
}

fn mbps(bytes_per_sec: f64) -> f64 {
    bytes_per_sec * 8.0 / 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let length = Duration::from_secs(seconds);
    println!("throttle over loopback TCP, {seconds} s per limited run, 2 runtime threads");
    println!(
        "{:>10} {:>7} {:>12} {:>8} {:>16} {:>16} {:>10}",
        "limit", "streams", "achieved", "error", "worst 1 s", "limit + burst", "CPU s/GB"
    );
    for rate_bps in [1_000_000u64, 100_000_000, 1_000_000_000, 5_000_000_000] {
        for streams in [1, 4, 16] {
            let r = run(Some(Throttle::new(Some(rate_bps))), streams, length).await;
            let limit = rate_bps as f64 / 8.0;
            let achieved = r.bytes as f64 / r.seconds;
            let bound = rate_bps / 8 + burst_bytes_for(rate_bps);
            println!(
                "{:>6} Mbps {:>7} {:>7.2} Mbps {:>+7.2}% {:>11.2} Mbps {:>11.2} Mbps {:>10.2} {}",
                rate_bps / 1_000_000,
                streams,
                mbps(achieved),
                (achieved - limit) / limit * 100.0,
                mbps(r.worst_second as f64),
                mbps(bound as f64),
                r.cpu_seconds / (r.bytes as f64 / 1e9),
                if r.worst_second <= bound {
                    ""
                } else {
                    "  worst window over bound"
                },
            );
        }
    }
    let short = length.min(Duration::from_secs(5));
    println!(
        "unlimited against a raw loopback copy, {} s each",
        short.as_secs()
    );
    println!(
        "{:>7} {:>14} {:>14} {:>9} {:>12} {:>12}",
        "streams", "raw", "unlimited", "ratio", "raw CPU/GB", "thr. CPU/GB"
    );
    for streams in [1, 4, 16] {
        let raw = run(None, streams, short).await;
        let thr = run(Some(Throttle::new(None)), streams, short).await;
        let raw_rate = raw.bytes as f64 / raw.seconds;
        let thr_rate = thr.bytes as f64 / thr.seconds;
        println!(
            "{:>7} {:>9.0} Mbps {:>9.0} Mbps {:>8.1}% {:>12.3} {:>12.3}",
            streams,
            mbps(raw_rate),
            mbps(thr_rate),
            thr_rate / raw_rate * 100.0,
            raw.cpu_seconds / (raw.bytes as f64 / 1e9),
            thr.cpu_seconds / (thr.bytes as f64 / 1e9),
        );
    }
}
