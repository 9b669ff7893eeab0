//! Time sources of the throttle: governor's clock over tokio's time, and the wall clock that
//! decides which schedule interval is in force.

use std::ops::Add;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::clock::{Clock, Reference};
use governor::nanos::Nanos;

/// An instant of tokio's clock, as governor wants it.
///
/// Following tokio's clock (rather than the OS clock governor uses by default) lets tests run the
/// throttle in paused time: `tokio::time::pause()` and `advance()` move the limiter too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokioInstant(pub tokio::time::Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;

    fn add(self, other: Nanos) -> Self {
        Self(self.0 + Duration::from(other))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        Self(self.0.checked_sub(duration.into()).unwrap_or(self.0))
    }
}

/// governor's clock over `tokio::time::Instant`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(tokio::time::Instant::now())
    }
}

/// Where the schedule follower reads the current date and time: the shared wall clock.
pub use bgw_primitives::{Clock as WallClock, SystemClock};

/// A wall clock that reads `origin` at the tokio instant it was created and then advances with
/// tokio's clock, so that paused-time tests control the date as well as the timers.
#[derive(Debug, Clone, Copy)]
pub struct TokioWallClock {
    origin: DateTime<Utc>,
    started: tokio::time::Instant,
}

impl TokioWallClock {
    pub fn starting_at(origin: DateTime<Utc>) -> Self {
        Self {
            origin,
            started: tokio::time::Instant::now(),
        }
    }
}

impl WallClock for TokioWallClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().duration_since(self.started);
        self.origin + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
    }
}
