//! The clock, as an input: handlers and the signature check read time through [`Clock`], so
//! tests can pin it. The one shared wall clock of [`bgw_primitives`].

pub use bgw_primitives::{Clock, FixedClock, SystemClock};
