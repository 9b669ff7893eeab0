//! A fast vCenter client: inventory, tags and change tracking in a handful of calls.
//!
//! The slow way to read a vSphere inventory is a round trip per VM (lazy
//! property reads, per-VM tag and folder lookups). This crate reads every VM
//! with one container view and one `RetrievePropertiesEx` (paged when the
//! server pages), builds inventory paths locally from a second view, reads tags
//! for 2,000 VMs per REST call, and streams the answer so memory stays at one
//! page.
//!
//! ```no_run
//! use vsphere_client::{Client, ConnectOptions, Secret, Trust};
//!
//! # async fn demo() -> Result<(), vsphere_client::Error> {
//! let pin = "AB:CD:...".parse().unwrap_or_else(|_| unreachable!());
//! let opts = ConnectOptions::new("vcenter.example.com", "backup@vsphere.local",
//!                                Secret::new("password"), Trust::Thumbprint(pin));
//! let (client, info) = Client::connect(opts).await?;
//! println!("connected to {}", info.product);
//! let vms = client.list_vms().await?;
//! let morefs: Vec<String> = vms.iter().map(|v| v.moref.clone()).collect();
//! let tags = client.tags_for(&morefs).await?;
//! for vm in &vms {
//!     println!("{} {} {:?}", vm.moref, vm.path, tags.of_vm(&vm.moref));
//! }
//! client.logout().await?;
//! # Ok(()) }
//! ```
//!
//! Sessions: the client logs in once, logs in again (once, shared by
//! concurrent callers) when vCenter answers `NotAuthenticated`, and
//! [`Client::keepalive`] keeps an idle session from expiring. Always call
//! [`Client::logout`]: vCenter limits the number of sessions.
//!
//! TLS: [`Trust`] offers system roots, a CA file, a pinned SHA-256 thumbprint
//! and trust on first use (which reports the thumbprint it saw). A certificate
//! that does not match its pin fails with [`Error::Tls`] showing both.

mod changed_areas;
mod client;
mod datastore;
pub mod disk_io;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod hardware;
mod inventory;
mod provision;
mod secret;
mod session;
mod snapshot;
mod soap;
mod tags;
mod task;
mod tls;
mod transport;
pub mod vmdk;
mod watch;
pub mod xml;

pub use changed_areas::{normalise as normalise_areas, DiskArea, ALL_ALLOCATED};
pub use client::{Client, ConnectInfo, ConnectOptions, InventoryStats, KEEPALIVE_INTERVAL};
pub use datastore::DatastorePath;
pub use error::{Error, ErrorKind, Result};
pub use hardware::{Controller, Hardware};
pub use inventory::{unescape, Disk, PowerState, Vm};
pub use provision::{NewDisk, NewVm};
pub use secret::Secret;
pub use snapshot::Snapshot;
pub use soap::MoRef;
pub use tags::{AttachedTag, Cardinality, Category, RestFlavor, Tag, Tags, MAX_BATCH};
pub use tls::{Thumbprint, Trust};
pub use tokio_util::sync::CancellationToken;
pub use watch::Change;
