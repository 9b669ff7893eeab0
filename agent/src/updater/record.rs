//! The persisted update state: `state_dir/update-state.json`, written whole with a rename, so
//! a crash or power loss leaves either the old file or the new one.
//!
//! It is a plain file rather than a key of the sled store because the launcher reads and
//! writes it while the agent it runs holds the store (sled admits one process).

use std::io::Write;
use std::path::{Path, PathBuf};

use bgw_protocol::heartbeat::{UpdateAttempt, UpdateResult, UpdateState};
use bgw_update::{Manifest, SignedManifest, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File name under the state directory.
pub const STATE_FILE: &str = "update-state.json";

/// A release that passed the signature and version checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub signed: SignedManifest,
    pub manifest: Manifest,
}

impl Release {
    pub fn version(&self) -> Version {
        self.manifest.version
    }
}

/// Where the update stands. Each step is written before it takes effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Phase {
    /// Nothing in progress.
    Idle,
    /// The artifact is being fetched into `versions/incoming/` (resumed after a restart).
    Downloading { release: Release },
    /// Verified and unpacked under `versions/VERSION/`.
    Staged { release: Release },
    /// Staged; waiting for the maintenance window, or for running jobs to end (`jobs_since`:
    /// when the apply became due and started waiting for them).
    Waiting {
        release: Release,
        #[serde(default)]
        jobs_since: Option<DateTime<Utc>>,
    },
    /// The running version stopped to restart into `release`; the launcher starts the trial.
    Applying { release: Release, previous: Version },
    /// `release` runs on trial until `deadline`; it commits itself once it passed its
    /// self-check and reached the cloud.
    Verifying {
        release: Release,
        previous: Version,
        started_at: DateTime<Utc>,
        deadline: DateTime<Utc>,
    },
    /// `version` passed its trial and is the one that runs.
    Committed { version: Version },
    /// `version` failed its trial; `previous` runs again.
    RolledBack { version: Version, reason: String },
}

impl Phase {
    pub fn wire_state(&self) -> UpdateState {
        match self {
            Phase::Idle => UpdateState::Idle,
            Phase::Downloading { .. } => UpdateState::Downloading,
            Phase::Staged { .. } => UpdateState::Staged,
            Phase::Waiting { .. } => UpdateState::Waiting,
            Phase::Applying { .. } => UpdateState::Applying,
            Phase::Verifying { .. } => UpdateState::Verifying,
            Phase::Committed { .. } => UpdateState::Committed,
            Phase::RolledBack { .. } => UpdateState::RolledBack,
        }
    }

    /// The release being downloaded, staged or installed.
    pub fn release(&self) -> Option<&Release> {
        match self {
            Phase::Downloading { release }
            | Phase::Staged { release }
            | Phase::Waiting { release, .. }
            | Phase::Applying { release, .. }
            | Phase::Verifying { release, .. } => Some(release),
            _ => None,
        }
    }

    /// The version staged on disk (and not yet committed), if any.
    pub fn staged_version(&self) -> Option<Version> {
        match self {
            Phase::Downloading { .. } => None,
            other => other.release().map(Release::version),
        }
    }
}

/// The packaged binary: what runs when no other version is committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseBinary {
    pub version: Version,
    pub path: PathBuf,
}

/// Everything the updater and the launcher share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRecord {
    pub phase: Phase,
    /// The version the launcher starts (from `versions/`); `None`: the packaged binary.
    #[serde(default)]
    pub committed: Option<Version>,
    #[serde(default)]
    pub base: Option<BaseBinary>,
    /// Versions that failed their trial or were refused: never installed again.
    #[serde(default)]
    pub rejected: Vec<Version>,
    /// The latest attempt, as the heartbeat reports it.
    #[serde(default)]
    pub last_attempt: Option<UpdateAttempt>,
    /// `UpdateGatewaySoftwareNow` asked to apply without waiting for the window.
    #[serde(default)]
    pub apply_now: bool,
}

impl Default for UpdateRecord {
    fn default() -> Self {
        UpdateRecord {
            phase: Phase::Idle,
            committed: None,
            base: None,
            rejected: Vec::new(),
            last_attempt: None,
            apply_now: false,
        }
    }
}

impl UpdateRecord {
    /// Marks `version` as never to be installed again.
    pub fn reject(&mut self, version: Version) {
        if !self.rejected.contains(&version) {
            self.rejected.push(version);
        }
    }

    /// Records an attempt that ended (refused, rolled back or succeeded) at `now`.
    pub fn end_attempt(
        &mut self,
        version: Version,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
        result: UpdateResult,
        reason: Option<String>,
    ) {
        self.last_attempt = Some(UpdateAttempt {
            version: version.to_string(),
            started_at,
            ended_at: Some(now),
            result,
            reason,
        });
    }

    /// When the attempt at `version` started (the current attempt's start, else `now`).
    pub fn attempt_start(&self, version: Version, now: DateTime<Utc>) -> DateTime<Utc> {
        self.last_attempt
            .as_ref()
            .filter(|a| a.version == version.to_string() && a.ended_at.is_none())
            .map_or(now, |a| a.started_at)
    }

    /// Rolls back the trial of `version`: `previous` runs again and `version` never again.
    pub fn roll_back(&mut self, previous: Version, reason: String, now: DateTime<Utc>) {
        let Some(release) = self.phase.release().cloned() else {
            return;
        };
        let version = release.version();
        let started = self.attempt_start(version, now);
        self.committed = Some(previous);
        self.reject(version);
        self.end_attempt(
            version,
            started,
            now,
            UpdateResult::RolledBack,
            Some(reason.clone()),
        );
        self.phase = Phase::RolledBack { version, reason };
        self.apply_now = false;
    }
}

/// The state file of one state directory.
#[derive(Debug, Clone)]
pub struct RecordFile {
    path: PathBuf,
}

impl RecordFile {
    pub fn new(state_dir: &Path) -> Self {
        RecordFile {
            path: state_dir.join(STATE_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record; the default one when the file does not exist yet.
    pub fn load(&self) -> Result<UpdateRecord> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(UpdateRecord::default())
            }
            Err(source) => {
                return Err(Error::Io {
                    what: format!("reading {}", self.path.display()),
                    source,
                })
            }
        };
        serde_json::from_slice(&text).map_err(|e| Error::Io {
            what: format!("reading {}", self.path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    /// Replaces the file: write a temporary file, sync it, rename it over, sync the directory.
    pub fn save(&self, record: &UpdateRecord) -> Result<()> {
        let io = |source| Error::Io {
            what: format!("writing {}", self.path.display()),
            source,
        };
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = self.path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(record).expect("the update record serialises");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        file.write_all(&text).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}
