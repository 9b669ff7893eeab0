//! Test support shared by the whole-system tests: real peers started as child processes.
//!
//! - [`vcsim::Vcsim`]: govmomi's vCenter simulator with a generated certificate, plus
//!   [`vcsim_tags::TagClient`] (REST tagging) and [`vcsim_soap::SoapSession`] (listing VMs).
//! - [`cloud::Cloud`]: the `bgw-cloud` control plane on a free port with a temporary data dir.
//! - [`aws`]: the unmodified aws-cli and boto3 from the venvs `scripts/test` installs.
//! - [`latency_proxy::LatencyProxy`]: a TCP proxy that delays a peer's answers per connection.
//! - [`process::ChildProcess`]: the guard behind all of them (output captured, killed on drop).
//!
//! ```no_run
//! # async fn demo() -> bgw_tests::Result<()> {
//! use bgw_tests::vcsim::{Vcsim, VcsimOptions};
//! let vc = Vcsim::start(VcsimOptions::default())?;
//! let mut soap = bgw_tests::vcsim_soap::SoapSession::login(&vc).await?;
//! assert_eq!(soap.list_vms().await?.len(), 4);
//! # Ok(()) }
//! ```
//!
//! Missing tools (Go, govmomi, the venvs) are errors that name `scripts/test`, never skips.

pub mod aws;
pub mod cloud;
pub mod error;
pub mod latency_proxy;
pub mod paths;
pub mod process;
pub mod systemd_analyze;
pub mod tls;
pub mod vcsim;
pub mod vcsim_disks;
pub mod vcsim_soap;
pub mod vcsim_tags;

pub use error::{HarnessError, Result};
