//! Backups of gateway VMs: the AWS Backup API's vaults, jobs and recovery points, and the
//! gateway protocol's chunk upload and job reports, over one [`BackupService`].
//!
//! - [`api`]: the AWS Backup API (REST-JSON, signing name `backup`) handlers: they parse,
//!   call the service and answer.
//! - [`routes`]: the gateway protocol's `chunks/…` and `jobs/…` paths.
//! - [`gc`]: freeing chunks no recovery point references any more.
//!
//! The service works on narrow interfaces — the catalogue ([`BackupCatalog`]), the VM
//! inventory ([`VmInventory`]), the chunk store ([`ChunkStore`]) and the command hub — so its
//! tests run on the in-memory catalogue and a directory chunk store.

pub mod api;
pub mod gc;
pub mod routes;
mod service;

#[cfg(test)]
mod tests;

pub use service::{
    BackupArns, BackupJobFilter, BackupService, LiveJob, RestoreJobFilter, StartBackup,
    StartRestore, MAX_JOBS_PER_GATEWAY, RESOURCE_TYPE,
};

pub use crate::store::backup::{BackupCatalog, VmInventory, VmTarget};
pub use bgw_chunks::ChunkStore;
