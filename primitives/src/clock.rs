//! Time as an input: code reads the wall clock through [`Clock`], so tests can run with a
//! frozen or skewed clock.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

/// The wall clock.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// The same instant as a [`SystemTime`].
    fn system_now(&self) -> SystemTime {
        self.now().into()
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock fixed at a settable instant.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// Moves the clock forward (or back, for a negative duration).
    pub fn advance(&self, by: chrono::Duration) {
        let mut at = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *at += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The system clock shifted by a number of milliseconds (negative: behind), to simulate a
/// machine whose clock is skewed.
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock(pub i64);

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        self.system_now().into()
    }

    fn system_now(&self) -> SystemTime {
        shift(SystemTime::now(), self.0)
    }
}

/// `t` moved by `ms` milliseconds (negative: earlier).
pub fn shift(t: SystemTime, ms: i64) -> SystemTime {
    if ms >= 0 {
        t + Duration::from_millis(ms as u64)
    } else {
        t - Duration::from_millis(ms.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_stays_where_it_is_put() {
        let at: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
        let c = FixedClock::new(at);
        assert_eq!(c.now(), at);
        c.advance(chrono::Duration::seconds(90));
        assert_eq!(c.now(), at + chrono::Duration::seconds(90));
        c.set(at);
        assert_eq!(SystemTime::from(c.now()), c.system_now());
    }

    #[test]
    fn offset_clock_is_skewed_by_its_offset() {
        let c = OffsetClock(-3_600_000);
        let diff = (Utc::now() - c.now()).num_milliseconds();
        assert!((3_599_000..3_601_000).contains(&diff), "{diff}");
    }
}
