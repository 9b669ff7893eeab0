//! The last metadata sync, as `status` shows it; persisted so it survives a restart.

use std::sync::{Arc, RwLock};

use bgw_protocol::metadata::SyncStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::Store;

/// The last metadata sync.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncSummary {
    /// `None` before any sync.
    pub last_status: Option<SyncStatus>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_message: Option<String>,
    pub vms: Option<u64>,
    /// The ESXi hosts of the last full listing.
    #[serde(default)]
    pub esxi_hosts: Vec<String>,
}

/// Store key of the persisted [`SyncSummary`].
pub const SYNC_SUMMARY_KEY: &str = "sync_summary";

pub struct SyncBoard {
    store: Store,
    summary: RwLock<SyncSummary>,
}

impl SyncBoard {
    /// Starts from the summary the store holds.
    pub fn load(store: Store) -> crate::Result<Arc<Self>> {
        let summary = store
            .value::<SyncSummary>(SYNC_SUMMARY_KEY)?
            .unwrap_or_default();
        Ok(Arc::new(Self {
            store,
            summary: RwLock::new(summary),
        }))
    }

    pub fn current(&self) -> SyncSummary {
        self.summary.read().expect("sync board lock").clone()
    }

    /// Changes the summary with `change` and persists it. Shown even when it cannot be stored.
    pub fn update(&self, change: impl FnOnce(&mut SyncSummary)) -> crate::Result<()> {
        let mut summary = self.summary.write().expect("sync board lock");
        change(&mut summary);
        self.store.set_value(SYNC_SUMMARY_KEY, Some(&*summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_survives_a_restart_and_reads_older_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let board = SyncBoard::load(store.clone()).unwrap();
        board
            .update(|s| {
                s.last_status = Some(SyncStatus::PartiallyFailed);
                s.vms = Some(3);
            })
            .unwrap();
        let again = SyncBoard::load(store.clone()).unwrap().current();
        assert_eq!(again.last_status, Some(SyncStatus::PartiallyFailed));
        assert_eq!(again.vms, Some(3));

        // Records written when the status was stored as its wire spelling read the same.
        store
            .set_value(
                SYNC_SUMMARY_KEY,
                Some(
                    &serde_json::json!({"last_status": "SUCCEEDED", "last_success": null,
                    "last_message": null, "vms": 7}),
                ),
            )
            .unwrap();
        let old = SyncBoard::load(store).unwrap().current();
        assert_eq!(old.last_status, Some(SyncStatus::Succeeded));
    }
}
