//! Exponential backoff with jitter for talking to an unreachable cloud.
//!
//! Pure: the caller supplies the RNG, so tests can pin the sequence.

use std::time::Duration;

use rand::Rng;

/// Doubling delays from `base`, capped at `cap`, each drawn uniformly from the upper half of the
/// current step ("equal jitter"): spreads a fleet of gateways that lost the cloud together, and
/// never retries in a tight loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

/// The longest the agent ever waits between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap: cap.min(MAX_BACKOFF),
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        let jitter_ms = rng.gen_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter_ms).min(step - half)
    }

    /// Call after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    #[test]
    fn grows_then_caps_at_sixty_seconds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(3600));
        let delays: Vec<_> = (0..12).map(|_| b.next_delay(&mut rng)).collect();
        assert!(delays[0] <= Duration::from_secs(1));
        assert!(delays[3] >= Duration::from_secs(4));
        assert!(delays.iter().all(|d| *d <= MAX_BACKOFF));
        assert!(delays[11] >= Duration::from_secs(30));
        b.reset();
        assert!(b.next_delay(&mut rng) <= Duration::from_secs(1));
    }

    proptest! {
        #[test]
        fn delay_is_within_half_step_and_cap(seed: u64, attempts in 0u32..40, cap_s in 1u64..120) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let cap = Duration::from_secs(cap_s);
            let mut b = Backoff::new(Duration::from_millis(500), cap);
            for _ in 0..attempts { b.next_delay(&mut rng); }
            let d = b.next_delay(&mut rng);
            prop_assert!(d <= cap.min(MAX_BACKOFF));
            prop_assert!(d >= Duration::from_millis(250).min(cap.min(MAX_BACKOFF) / 2));
        }
    }
}
