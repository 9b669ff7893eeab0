//! Bookkeeping of metadata syncs.

use std::collections::BTreeSet;

use crate::store::{Store, StoreError};

/// Which VMs a running sync mentioned (the rest are removed when it completes), and which
/// syncs completed (so a retried final batch completes nothing twice).
pub trait SyncBookkeeping: Send + Sync {
    /// Records that a sync mentioned these VMs.
    fn sync_seen(&self, sync_id: &str, uuids: &[String]) -> Result<(), StoreError>;

    /// The VMs a sync mentioned, and forgets them.
    fn take_sync_seen(&self, sync_id: &str) -> Result<BTreeSet<String>, StoreError>;

    /// Marks a sync completed; false if it already was.
    fn complete_sync(&self, sync_id: &str) -> Result<bool, StoreError>;

    fn sync_completed(&self, sync_id: &str) -> Result<bool, StoreError>;
}

impl SyncBookkeeping for Store {
    fn sync_seen(&self, sync_id: &str, uuids: &[String]) -> Result<(), StoreError> {
        Store::sync_seen(self, sync_id, uuids)
    }

    fn take_sync_seen(&self, sync_id: &str) -> Result<BTreeSet<String>, StoreError> {
        Store::take_sync_seen(self, sync_id)
    }

    fn complete_sync(&self, sync_id: &str) -> Result<bool, StoreError> {
        Store::complete_sync(self, sync_id)
    }

    fn sync_completed(&self, sync_id: &str) -> Result<bool, StoreError> {
        Store::sync_completed(self, sync_id)
    }
}
