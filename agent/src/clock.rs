//! Time as an input: the daemon reads the wall clock through [`Clock`] (the one shared by every
//! crate, from [`bgw_primitives`]), corrected by the offset the cloud reports, so tests can run
//! with a skewed or frozen clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bgw_primitives::clock::shift;
pub use bgw_primitives::{Clock, FixedClock, OffsetClock, SystemClock};
use chrono::{DateTime, Utc};

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
        self.local.system_now()
    }

    /// Best estimate of the cloud's clock.
    pub fn now(&self) -> SystemTime {
        shift(
            self.local.system_now(),
            self.offset_ms.load(Ordering::Relaxed),
        )
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
        let local: DateTime<Utc> = self.local.now();
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
