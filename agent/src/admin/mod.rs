//! The local admin API (loopback only): what `bgw-agent status`, `activation-key`, `jobs`
//! and `vcenter retrust` (and the local console) ask the running daemon.
//!
//! | Request | Answer |
//! |---|---|
//! | `GET /status` | [`StatusReport`] |
//! | `GET /jobs` | [`JobsAnswer`] |
//! | `POST /jobs/{id}/cancel` | [`CancelAnswer`] |
//! | `POST /activation-key` [`KeyRequest`] | [`KeyAnswer`] (HTTP status of the failure) |
//! | `POST /vcenter/retrust` [`RetrustRequest`] | [`RetrustAnswer`] |
//! | `POST /timezone` [`TimezoneRequest`] | [`TimezoneAnswer`] (400 for an unknown zone) |
//! | `GET /health` | `ok` |
//!
//! Only the daemon opens the state store; everything else asks it through [`AdminClient`],
//! which gives up quickly (it never leaves a console hanging) with
//! [`Error::AdminUnreachable`](crate::Error::AdminUnreachable) when the agent is not running.

pub mod client;
pub mod server;
pub mod types;

pub use client::{admin_addr, AdminClient};
pub use server::{router, AdminState};
pub use types::{
    CancelAnswer, JobsAnswer, KeyAnswer, KeyRequest, RetrustAnswer, RetrustRequest, StatusReport,
    TimezoneAnswer, TimezoneRequest,
};
