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
    pub fn new(per_second: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Throttle {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        }
    }

    /// Limits each key to `per_minute` requests a minute with a burst allowance.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Throttle {
            limiter: RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
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
