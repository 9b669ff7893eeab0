//! Releases of the gateway software and each gateway's update history.
//!
//! A release is stored with its signed manifest exactly as published; its artifact lives as a
//! file beside the store (see [`crate::release`]). The history keeps one entry per attempt, as
//! the gateway reports it in its heartbeats, keyed by version and start.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Tree;

use super::{decode, encode, Store, StoreError};

/// A published release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub version: String,
    /// The manifest's JSON text, byte for byte as signed.
    pub manifest: String,
    pub key_id: String,
    pub signature: String,
    /// File name of the artifact in the releases directory.
    pub artifact_file: String,
    pub size: u64,
    pub urgent: bool,
    pub published: DateTime<Utc>,
}

/// One update attempt of a gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateHistoryEntry {
    pub version: String,
    pub started: DateTime<Utc>,
    #[serde(default)]
    pub ended: Option<DateTime<Utc>>,
    /// `IN_PROGRESS`, `SUCCEEDED`, `ROLLED_BACK` or `REFUSED` (as the gateway reports it).
    pub result: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Releases and update history.
pub trait Releases: Send + Sync {
    /// Stores `release`; a version already published is refused (a release never changes).
    fn put_release(&self, release: &ReleaseRecord) -> Result<(), StoreError>;

    fn release(&self, version: &str) -> Result<Option<ReleaseRecord>, StoreError>;

    /// Every release, in no particular order.
    fn releases(&self) -> Result<Vec<ReleaseRecord>, StoreError>;

    /// Adds `entry` to the gateway's history, or replaces the entry of the same version and
    /// start (an attempt in progress that has ended).
    fn record_attempt(
        &self,
        gateway_arn: &str,
        entry: &UpdateHistoryEntry,
    ) -> Result<(), StoreError>;

    /// The gateway's attempts, oldest first.
    fn history(&self, gateway_arn: &str) -> Result<Vec<UpdateHistoryEntry>, StoreError>;
}

fn history_key(gateway_arn: &str, entry: &UpdateHistoryEntry) -> Vec<u8> {
    format!(
        "{gateway_arn}\0{:020}\0{}",
        entry.started.timestamp_millis(),
        entry.version
    )
    .into_bytes()
}

/// [`Releases`] in two sled trees of the store's database.
#[derive(Clone)]
pub struct SledReleases {
    releases: Tree,
    history: Tree,
}

impl SledReleases {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(SledReleases {
            releases: store.db.open_tree("releases")?,
            history: store.db.open_tree("update_history")?,
        })
    }
}

impl Releases for SledReleases {
    fn put_release(&self, release: &ReleaseRecord) -> Result<(), StoreError> {
        let swapped = self.releases.compare_and_swap(
            release.version.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(release)),
        )?;
        if swapped.is_err() {
            return Err(StoreError::Conflict(format!(
                "release {} is already published; publish a newer version",
                release.version
            )));
        }
        self.releases.flush()?;
        Ok(())
    }

    fn release(&self, version: &str) -> Result<Option<ReleaseRecord>, StoreError> {
        self.releases
            .get(version.as_bytes())?
            .map(|v| decode(version.as_bytes(), &v))
            .transpose()
    }

    fn releases(&self) -> Result<Vec<ReleaseRecord>, StoreError> {
        self.releases
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    fn record_attempt(
        &self,
        gateway_arn: &str,
        entry: &UpdateHistoryEntry,
    ) -> Result<(), StoreError> {
        let key = history_key(gateway_arn, entry);
        let value = encode(entry);
        if self.history.get(&key)?.as_deref() != Some(value.as_slice()) {
            self.history.insert(key, value)?;
        }
        Ok(())
    }

    fn history(&self, gateway_arn: &str) -> Result<Vec<UpdateHistoryEntry>, StoreError> {
        self.history
            .scan_prefix(format!("{gateway_arn}\0").as_bytes())
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }
}

/// [`Releases`] in memory, for tests of the services.
#[derive(Default)]
pub struct MemoryReleases {
    releases: Mutex<HashMap<String, ReleaseRecord>>,
    history: Mutex<BTreeMap<Vec<u8>, UpdateHistoryEntry>>,
}

impl Releases for MemoryReleases {
    fn put_release(&self, release: &ReleaseRecord) -> Result<(), StoreError> {
        let mut releases = self.releases.lock().unwrap_or_else(|e| e.into_inner());
        if releases.contains_key(&release.version) {
            return Err(StoreError::Conflict(format!(
                "release {} is already published; publish a newer version",
                release.version
            )));
        }
        releases.insert(release.version.clone(), release.clone());
        Ok(())
    }

    fn release(&self, version: &str) -> Result<Option<ReleaseRecord>, StoreError> {
        let releases = self.releases.lock().unwrap_or_else(|e| e.into_inner());
        Ok(releases.get(version).cloned())
    }

    fn releases(&self) -> Result<Vec<ReleaseRecord>, StoreError> {
        let releases = self.releases.lock().unwrap_or_else(|e| e.into_inner());
        Ok(releases.values().cloned().collect())
    }

    fn record_attempt(
        &self,
        gateway_arn: &str,
        entry: &UpdateHistoryEntry,
    ) -> Result<(), StoreError> {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.insert(history_key(gateway_arn, entry), entry.clone());
        Ok(())
    }

    fn history(&self, gateway_arn: &str) -> Result<Vec<UpdateHistoryEntry>, StoreError> {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!("{gateway_arn}\0").into_bytes();
        Ok(history
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect())
    }
}
