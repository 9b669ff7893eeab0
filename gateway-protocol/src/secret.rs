//! A string that must never reach a log line; the one shared [`bgw_primitives::Secret`].

pub use bgw_primitives::Secret;
