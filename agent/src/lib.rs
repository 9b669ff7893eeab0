//! The backup gateway agent: activation, heartbeat, vCenter sync and bandwidth enforcement.

pub mod cli;
