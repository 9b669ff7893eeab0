//! Request throttling per key (GCRA, via governor): per access key for the API, per client
//! address for the unauthenticated activation calls of the gateway protocol.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keys the limiter remembers before it forgets those that are back to a full burst.
const MAX_TRACKED_KEYS: usize = 10_000;

/// Limits each key to a sustained rate with a burst allowance.
pub struct Throttle {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl Throttle {
    /// Limits each key to `per_second` requests a second with a burst allowance.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self::with_quota(Quota::per_second(at_least_one(per_second)), burst)
    }

    /// Limits each key to `per_minute` requests a minute with a burst allowance.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        Self::with_quota(Quota::per_minute(at_least_one(per_minute)), burst)
    }

    fn with_quota(quota: Quota, burst: u32) -> Self {
        Throttle {
            limiter: RateLimiter::keyed(quota.allow_burst(at_least_one(burst))),
        }
    }

    /// True when `key` may make one more request now.
    pub fn allow(&self, key: &str) -> bool {
        if self.limiter.len() > MAX_TRACKED_KEYS {
            // Keys from many addresses: keep memory bounded.
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key.to_owned()).is_ok()
    }
}

fn at_least_one(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    #[test]
    fn burst_then_refuse_per_key() {
        let t = super::Throttle::new(1, 3);
        assert!((0..3).all(|_| t.allow("a")));
        assert!(!t.allow("a"));
        assert!(t.allow("b"));
    }
}
