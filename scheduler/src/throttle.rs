//! The upload throttle: one token bucket (governor's GCRA) per gateway, shared by every upload.
//!
//! All concurrent uploads draw from the same limiter, so their sum respects the limit however
//! many run in parallel. The limit can change at any moment ([`Throttle::set_rate`]); streams
//! keep running and pick up the new rate at once, and [`follow_schedule`] changes it at each
//! boundary of a [`BandwidthSchedule`](crate::bandwidth::BandwidthSchedule), to the second.
//!
//! Burst: after an idle spell at most `max(64 KiB, 50 ms of the rate)` goes out ahead of the
//! average. Data is released in pieces no larger than that (governor refuses a request larger
//! than its burst), and a rate change starts the new limiter drained, so a change never grants
//! an extra burst.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use bgw_scheduler::throttle::Throttle;
//! use tokio::io::AsyncWriteExt;
//!
//! let throttle = Throttle::new(Some(8_000_000)); // 8 Mbit/s = 1 MB/s for all uploads together
//! let mut upload = throttle.writer(tokio::io::sink());
//! upload.write_all(&[0u8; 4096]).await.unwrap();
//! throttle.set_rate(None); // unlimited from now on
//! # }
//! ```

mod clock;
mod follow;
mod io;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::watch;

pub use clock::{SystemClock, TokioClock, TokioInstant, TokioWallClock, WallClock};
pub use follow::{follow_schedule, ZonedSchedule};
pub use io::{ThrottledRead, ThrottledStream, ThrottledWrite};

/// The burst is never smaller than this many bytes.
pub const MIN_BURST_BYTES: u64 = 64 * 1024;
/// The burst is at least this much time's worth of the rate.
pub const BURST_TIME: Duration = Duration::from_millis(50);
/// Data is released in pieces of about this much time's worth of the rate (within the burst).
const PIECE_TIME_DIVISOR: u64 = 100; // 10 ms
const MIN_PIECE_BYTES: u64 = 1024;
/// governor counts whole cells; a cell is sized so that one is emitted every microsecond or
/// more, which keeps the nanosecond rounding of its period below 0.1 %.
const MAX_CELLS_PER_SEC: u64 = 1_000_000;

type Gcra = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>;

/// The limiter for one rate.
struct Limiter {
    rate_bps: u64,
    cell_bytes: u64,
    burst_cells: u32,
    piece_bytes: u64,
    gcra: Gcra,
}

impl Limiter {
    fn new(rate_bps: u64) -> Self {
        let rate_bps = rate_bps.max(8);
        let bytes_per_sec = rate_bps / 8;
        let cell_bytes = bytes_per_sec.div_ceil(MAX_CELLS_PER_SEC).max(1);
        let period_ns = (u128::from(cell_bytes) * 8_000_000_000 + u128::from(rate_bps) / 2)
            / u128::from(rate_bps);
        let period = Duration::from_nanos(period_ns.clamp(1, u128::from(u64::MAX)) as u64);
        let burst_bytes = burst_bytes_for(rate_bps);
        let burst_cells = burst_bytes
            .div_ceil(cell_bytes)
            .clamp(1, u64::from(u32::MAX)) as u32;
        let burst = NonZeroU32::new(burst_cells).expect("at least one cell");
        let quota = Quota::with_period(period)
            .expect("non-zero period")
            .allow_burst(burst);
        let gcra = RateLimiter::direct_with_clock(quota, TokioClock);
        // A fresh limiter would grant a full burst; start it drained so a rate change never
        // lets extra data out ahead of the average.
        let _ = gcra.check_n(burst);
        let piece_bytes = (bytes_per_sec / PIECE_TIME_DIVISOR)
            .clamp(MIN_PIECE_BYTES, u64::from(burst_cells) * cell_bytes);
        Self {
            rate_bps,
            cell_bytes,
            burst_cells,
            piece_bytes,
            gcra,
        }
    }
}

/// The burst allowed at `rate_bps`: `max(64 KiB, 50 ms of the rate)`, in bytes.
pub fn burst_bytes_for(rate_bps: u64) -> u64 {
    let fifty_ms = rate_bps / 8 * BURST_TIME.as_millis() as u64 / 1000;
    fifty_ms.max(MIN_BURST_BYTES)
}

struct Shared {
    limiter: RwLock<Option<Arc<Limiter>>>,
    unlimited: AtomicBool,
    changed: watch::Sender<()>,
}

/// The gateway's upload rate limiter. Cheap to clone; clones share one limit.
#[derive(Clone)]
pub struct Throttle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("rate_bps", &self.rate())
            .finish()
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Throttle {
    /// A throttle limited to `rate_bps` bits per second, or unlimited for `None`.
    ///
    /// It runs on tokio's clock, so tests can drive it with `tokio::time::pause()`.
    pub fn new(rate_bps: Option<u64>) -> Self {
        let (changed, _) = watch::channel(());
        let throttle = Self {
            shared: Arc::new(Shared {
                limiter: RwLock::new(None),
                unlimited: AtomicBool::new(true),
                changed,
            }),
        };
        throttle.set_rate(rate_bps);
        throttle
    }

    /// Changes the limit, effective at once for every stream (waiting ones are woken).
    /// Setting the rate already in force changes nothing.
    pub fn set_rate(&self, rate_bps: Option<u64>) {
        if rate_bps == self.rate() {
            return;
        }
        let limiter = rate_bps.map(|r| Arc::new(Limiter::new(r)));
        {
            let mut slot = self
                .shared
                .limiter
                .write()
                .unwrap_or_else(|e| e.into_inner());
            *slot = limiter;
            self.shared
                .unlimited
                .store(rate_bps.is_none(), Ordering::Release);
        }
        tracing::info!(rate_bps = ?rate_bps, "upload rate limit changed");
        self.shared.changed.send_replace(());
    }

    /// The limit in force, in bits per second; `None` when unlimited.
    pub fn rate(&self) -> Option<u64> {
        self.current().map(|l| l.rate_bps)
    }

    /// The burst in force, in bytes; `None` when unlimited.
    pub fn burst_bytes(&self) -> Option<u64> {
        self.current()
            .map(|l| u64::from(l.burst_cells) * l.cell_bytes)
    }

    pub fn is_unlimited(&self) -> bool {
        self.shared.unlimited.load(Ordering::Acquire)
    }

    fn current(&self) -> Option<Arc<Limiter>> {
        self.shared
            .limiter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The largest piece released at once under the current limit.
    fn piece_bytes(&self) -> u64 {
        self.current().map_or(u64::MAX, |l| l.piece_bytes)
    }

    /// Waits until `bytes` more bytes may go out, and returns how many bytes were paid for:
    /// at least `bytes` (whole cells are paid), or 0 when the throttle became unlimited.
    pub async fn acquire(&self, bytes: u64) -> u64 {
        let mut owed = bytes;
        let mut paid = 0;
        while owed > 0 {
            let mut changes = self.shared.changed.subscribe();
            let Some(limiter) = self.current() else {
                return paid.max(bytes);
            };
            let cells = owed
                .div_ceil(limiter.cell_bytes)
                .min(u64::from(limiter.burst_cells)) as u32;
            let n = NonZeroU32::new(cells).expect("owed > 0");
            match limiter.gcra.check_n(n) {
                Ok(Ok(())) => {
                    let got = u64::from(cells) * limiter.cell_bytes;
                    paid += got;
                    owed = owed.saturating_sub(got);
                }
                Ok(Err(not_until)) => {
                    let at = not_until.earliest_possible().0;
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        _ = changes.changed() => {}
                    }
                }
                Err(_) => unreachable!("requests are cut to the burst size"),
            }
        }
        paid
    }

    /// Wraps a writer so that everything written through it is throttled.
    pub fn writer<W>(&self, inner: W) -> ThrottledWrite<W> {
        ThrottledWrite::new(inner, self.clone())
    }

    /// Wraps a reader so that everything read through it is throttled.
    pub fn reader<R>(&self, inner: R) -> ThrottledRead<R> {
        ThrottledRead::new(inner, self.clone())
    }

    /// Wraps a stream of byte chunks; large chunks are cut into burst-sized pieces.
    pub fn stream<S>(&self, inner: S) -> ThrottledStream<S> {
        ThrottledStream::new(inner, self.clone())
    }

    /// A reqwest request body that sends `stream` through the throttle.
    pub fn body<S, E>(&self, stream: S) -> reqwest::Body
    where
        S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        reqwest::Body::wrap_stream(self.stream(stream))
    }

    /// A reqwest request body that sends what `reader` yields through the throttle.
    pub fn body_from_reader<R>(&self, reader: R) -> reqwest::Body
    where
        R: tokio::io::AsyncRead + Send + 'static,
    {
        self.body(tokio_util::io::ReaderStream::with_capacity(
            reader,
            256 * 1024,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_64_kib_or_50_ms() {
        assert_eq!(burst_bytes_for(51_200), 64 * 1024);
        assert_eq!(burst_bytes_for(1_000_000_000), 6_250_000);
    }
}
