//! Operator commands of `bgw-agent`, one module per command group.

pub mod console;
pub mod daemon;
pub mod exit;
pub mod schedule;
pub mod vcenter;
