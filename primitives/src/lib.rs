//! The small types every backup-gateway crate shares, so there is one of each:
//!
//! - [`Secret`]: a string that never reaches a log line (`Debug` and `Display` print `***`) and
//!   serialises as the plain string, so stored state and wire JSON keep their format.
//! - [`Clock`]: the wall clock as an input, with [`SystemClock`] for production and
//!   [`FixedClock`] and [`OffsetClock`] for tests.
//!
//! The crate has no I/O and no async runtime; clocks that follow tokio's paused time live next to
//! their users (the throttle's `TokioWallClock` in `bgw-scheduler`).

pub mod clock;
pub mod secret;

pub use clock::{Clock, FixedClock, OffsetClock, SystemClock};
pub use secret::Secret;
