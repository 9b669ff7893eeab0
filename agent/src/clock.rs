//! Time as an input: the daemon reads the wall clock through [`Clock`], corrected by the offset
//! the cloud reports, so tests can run with a skewed or frozen clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

/// The local wall clock.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock `offset` away from the system clock (tests simulate a skewed gateway with it).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock(pub i64);

impl Clock for OffsetClock {
    fn now(&self) -> SystemTime {
        shift(SystemTime::now(), self.0)
    }
}

fn shift(t: SystemTime, ms: i64) -> SystemTime {
    if ms >= 0 {
        t + Duration::from_millis(ms as u64)
    } else {
        t - Duration::from_millis(ms.unsigned_abs())
    }
}

/// The local clock plus the correction learnt from the cloud.
#[derive(Clone)]
pub struct CloudTime {
    local: Arc<dyn Clock>,
    offset_ms: Arc<AtomicI64>,
}

impl CloudTime {
    pub fn new(local: Arc<dyn Clock>) -> Self {
        Self {
            local,
            offset_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// The local clock, uncorrected.
    pub fn local_now(&self) -> SystemTime {
        self.local.now()
    }

    /// Best estimate of the cloud's clock.
    pub fn now(&self) -> SystemTime {
        shift(self.local.now(), self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn now_utc(&self) -> DateTime<Utc> {
        self.now().into()
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Learns the offset from a time the cloud reported. Small differences (network latency)
    /// are ignored; returns true when the correction changed.
    pub fn observe_server_time(&self, server: DateTime<Utc>) -> bool {
        let local: DateTime<Utc> = self.local.now().into();
        let wanted = (server - local).num_milliseconds();
        let current = self.offset_ms();
        if (wanted - current).abs() > 2_000 {
            self.offset_ms.store(wanted, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_corrects_a_skewed_clock() {
        let t = CloudTime::new(Arc::new(OffsetClock(-3_600_000)));
        assert!(t.observe_server_time(Utc::now()));
        let diff = (t.now_utc() - Utc::now()).num_milliseconds().abs();
        assert!(diff < 1_000, "{diff}");
        assert!(!t.observe_server_time(Utc::now()));
    }
}
