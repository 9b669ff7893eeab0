//! Releases of the gateway software: publishing, offering to gateways, serving artifacts and
//! keeping each gateway's update history.
//!
//! A release is published with a manifest signed by the publisher's key (see `bgw-update`); the
//! cloud checks that the artifact matches the manifest, keeps the artifact under
//! `DATA/releases/`, and offers the newest release to every gateway that runs an older version
//! and has not failed that version before. The gateway verifies the signature itself: the cloud
//! is a courier, not a trust anchor.
//!
//! ```no_run
//! # fn run(shelf: &bgw_cloud::release::ReleaseShelf) -> Result<(), bgw_cloud::error::StoreError> {
//! let offer = shelf.offer("gw-arn", "1.0.0")?; // the newest release above 1.0.0, if any
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bgw_protocol::heartbeat::{UpdateAttempt, UpdateOffer};
use bgw_update::{SignedManifest, Version};
use chrono::{DateTime, Utc};

use crate::store::releases::{ReleaseRecord, Releases, UpdateHistoryEntry};
use crate::store::StoreError;

/// The releases and their artifacts.
#[derive(Clone)]
pub struct ReleaseShelf {
    store: Arc<dyn Releases>,
    dir: PathBuf,
}

impl ReleaseShelf {
    /// Releases recorded in `store`, artifacts in `dir` (created when first needed).
    pub fn new(store: Arc<dyn Releases>, dir: impl Into<PathBuf>) -> Self {
        ReleaseShelf {
            store,
            dir: dir.into(),
        }
    }

    /// Stores a release: checks that `artifact` is the file `signed` describes, copies it
    /// beside the store and records the release. Nothing is recorded if any step fails.
    pub fn publish(
        &self,
        signed: &SignedManifest,
        artifact: &Path,
        now: DateTime<Utc>,
    ) -> Result<ReleaseRecord, StoreError> {
        let manifest = signed
            .unverified()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        if signed.signature.is_empty() {
            return Err(StoreError::Invalid(
                "the release manifest is not signed; sign it with --signing-key".into(),
            ));
        }
        manifest.check_file(artifact).map_err(|r| {
            StoreError::Invalid(format!(
                "artifact {} does not match its manifest: {r}",
                artifact.display()
            ))
        })?;
        let version = manifest.version.to_string();
        if self.store.release(&version)?.is_some() {
            return Err(StoreError::Conflict(format!(
                "release {version} is already published; publish a newer version"
            )));
        }
        let io = |action: &str, path: &Path, e: std::io::Error| {
            StoreError::Invalid(format!("cannot {action} {}: {e}", path.display()))
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| io("create", &self.dir, e))?;
        let file = format!("bgw-agent-{version}.tar.gz");
        let target = self.dir.join(&file);
        let partial = self.dir.join(format!("{file}.partial"));
        std::fs::copy(artifact, &partial).map_err(|e| io("copy the artifact to", &partial, e))?;
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("sync", &partial, e))?;
        std::fs::rename(&partial, &target).map_err(|e| io("rename", &partial, e))?;
        let record = ReleaseRecord {
            version,
            manifest: signed.manifest.clone(),
            key_id: signed.key_id.clone(),
            signature: signed.signature.clone(),
            artifact_file: file,
            size: manifest.size,
            urgent: manifest.urgent,
            published: now,
        };
        self.store.put_release(&record)?;
        tracing::info!(version = %record.version, size = record.size, urgent = record.urgent, "release published");
        Ok(record)
    }

    /// Every release, oldest version first.
    pub fn releases(&self) -> Result<Vec<ReleaseRecord>, StoreError> {
        let mut all: Vec<(Version, ReleaseRecord)> = self
            .store
            .releases()?
            .into_iter()
            .filter_map(|r| Version::parse(&r.version).ok().map(|v| (v, r)))
            .collect();
        all.sort_by_key(|(v, _)| *v);
        Ok(all.into_iter().map(|(_, r)| r).collect())
    }

    /// The newest release above `running` that the gateway has not failed or refused.
    pub fn offer(
        &self,
        gateway_arn: &str,
        running: &str,
    ) -> Result<Option<ReleaseRecord>, StoreError> {
        let Ok(running) = Version::parse(running) else {
            return Ok(None);
        };
        let failed: Vec<String> = self
            .store
            .history(gateway_arn)?
            .into_iter()
            .filter(|h| h.result == "ROLLED_BACK" || h.result == "REFUSED")
            .map(|h| h.version)
            .collect();
        Ok(self.releases()?.into_iter().rev().find(|r| {
            Version::parse(&r.version).is_ok_and(|v| v > running) && !failed.contains(&r.version)
        }))
    }

    /// Path of the artifact of `version`, if it is published.
    pub fn artifact(&self, version: &str) -> Result<Option<(ReleaseRecord, PathBuf)>, StoreError> {
        Ok(self.store.release(version)?.map(|r| {
            let path = self.dir.join(&r.artifact_file);
            (r, path)
        }))
    }

    /// Records what a gateway reports about its latest attempt.
    pub fn record_attempt(
        &self,
        gateway_arn: &str,
        attempt: &UpdateAttempt,
    ) -> Result<(), StoreError> {
        let result = attempt.result.to_string();
        self.store.record_attempt(
            gateway_arn,
            &UpdateHistoryEntry {
                version: attempt.version.clone(),
                started: attempt.started_at,
                ended: attempt.ended_at,
                result,
                reason: attempt.reason.clone(),
            },
        )
    }

    pub fn history(&self, gateway_arn: &str) -> Result<Vec<UpdateHistoryEntry>, StoreError> {
        self.store.history(gateway_arn)
    }
}

/// The wire form of an offered release.
pub fn offer_of(release: &ReleaseRecord) -> UpdateOffer {
    UpdateOffer {
        version: release.version.clone(),
        manifest: release.manifest.clone(),
        key_id: release.key_id.clone(),
        signature: release.signature.clone(),
    }
}

#[cfg(test)]
mod tests;
