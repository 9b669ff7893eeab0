//! Pushes real bytes over loopback TCP through the shared throttle and prints figures.
//!
//! ```text
//! cargo run --release -p bgw-scheduler --example throttle_bench
//! ```
//!
//! For 1, 4 and 16 concurrent streams at 1 Mbit/s, 100 Mbit/s, 1 Gbit/s and 5 Gbit/s (10 s
//! each), then unlimited against a raw loopback copy (5 s each, best of two alternating runs),
//! it prints the achieved rate, its error against the limit, the worst 1-second window as the
//! throttle released bytes and as the receiver saw them (against limit + burst), and the CPU
//! time per GB (sender and receiver together: both run in this process). `BENCH_SECONDS`
//! overrides the 10 s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgw_scheduler::throttle::{burst_bytes_for, Throttle};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BUCKET: Duration = Duration::from_millis(10);
const WRITE_SIZE: usize = 256 * 1024;

struct Run {
    bytes: u64,
    seconds: f64,
    /// Worst 1-second window as the throttle released the bytes (sender side).
    worst_sent: u64,
    /// Worst 1-second window as the receiver saw them (adds socket and scheduling jitter).
    worst_received: u64,
    cpu_seconds: f64,
}

type Buckets = Arc<Vec<AtomicU64>>;

fn record(buckets: &Buckets, start: Instant, n: usize) {
    let slot = (start.elapsed().as_millis() / BUCKET.as_millis()) as usize;
    if let Some(b) = buckets.get(slot) {
        b.fetch_add(n as u64, Ordering::Relaxed);
    }
}

fn worst_second(buckets: &Buckets) -> u64 {
    let counts: Vec<u64> = buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
    let per_second = (Duration::from_secs(1).as_millis() / BUCKET.as_millis()) as usize;
    counts
        .windows(per_second)
        .map(|w| w.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
}

/// Counts what the socket accepts, per time bucket: what the throttle let through.
struct Counting {
    inner: TcpStream,
    buckets: Buckets,
    start: Instant,
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            record(&this.buckets, this.start, n);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn new_buckets(length: Duration) -> Buckets {
    Arc::new(
        (0..(length.as_millis() / BUCKET.as_millis() + 200))
            .map(|_| AtomicU64::new(0))
            .collect(),
    )
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
    let buckets = new_buckets(length);
    let sent = new_buckets(length);
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
                        record(&buckets, start, n);
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
        let sent = sent.clone();
        senders.push(tokio::spawn(async move {
            let socket = TcpStream::connect(addr).await.unwrap();
            socket.set_nodelay(true).unwrap();
            let data = vec![0x5au8; WRITE_SIZE];
            match throttle {
                Some(t) => {
                    let mut w = t.writer(Counting {
                        inner: socket,
                        buckets: sent,
                        start,
                    });
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
    Run {
        bytes,
        seconds: length.as_secs_f64(),
        worst_sent: worst_second(&sent),
        worst_received: worst_second(&buckets),
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
        "{:>10} {:>7} {:>12} {:>8} {:>14} {:>14} {:>14} {:>10}",
        "limit",
        "streams",
        "achieved",
        "error",
        "worst 1s sent",
        "worst 1s recv",
        "limit+burst",
        "CPU s/GB"
    );
    for rate_bps in [1_000_000u64, 100_000_000, 1_000_000_000, 5_000_000_000] {
        for streams in [1, 4, 16] {
            let r = run(Some(Throttle::new(Some(rate_bps))), streams, length).await;
            let limit = rate_bps as f64 / 8.0;
            let achieved = r.bytes as f64 / r.seconds;
            let bound = rate_bps / 8 + burst_bytes_for(rate_bps);
            println!(
                "{:>6} Mbps {:>7} {:>7.2} Mbps {:>+7.2}% {:>9.2} Mbps {:>9.2} Mbps {:>9.2} Mbps {:>10.2} {}",
                rate_bps / 1_000_000,
                streams,
                mbps(achieved),
                (achieved - limit) / limit * 100.0,
                mbps(r.worst_sent as f64),
                mbps(r.worst_received as f64),
                mbps(bound as f64),
                r.cpu_seconds / (r.bytes as f64 / 1e9),
                if r.worst_sent <= bound {
                    ""
                } else {
                    "  sent window over bound"
                },
            );
        }
    }
    let short = length.min(Duration::from_secs(5));
    println!(
        "unlimited against a raw loopback copy, {} s each, best of two alternating runs",
        short.as_secs()
    );
    println!(
        "{:>7} {:>14} {:>14} {:>9} {:>12} {:>12}",
        "streams", "raw", "unlimited", "ratio", "raw CPU/GB", "thr. CPU/GB"
    );
    // The machine is shared: alternate raw and throttled runs and keep the best of each.
    let best = |a: Run, b: Run| if a.bytes >= b.bytes { a } else { b };
    for streams in [1, 4, 16] {
        let raw1 = run(None, streams, short).await;
        let thr1 = run(Some(Throttle::new(None)), streams, short).await;
        let raw2 = run(None, streams, short).await;
        let thr2 = run(Some(Throttle::new(None)), streams, short).await;
        let (raw, thr) = (best(raw1, raw2), best(thr1, thr2));
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
