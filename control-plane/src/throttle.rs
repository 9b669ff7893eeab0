//! Per-access-key request throttling (GCRA, via governor).

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Limits each access key to a sustained rate with a burst allowance.
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

    /// True when `access_key` may make one more request now.
    pub fn allow(&self, access_key: &str) -> bool {
        self.limiter.check_key(&access_key.to_owned()).is_ok()
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
