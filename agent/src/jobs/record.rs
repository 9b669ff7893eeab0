//! A job's persisted record: what it is, where it is, how it ended.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A job's identifier (a UUID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for JobId {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

/// What kind of work a job does. Each kind has its own concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobKind {
    /// A full metadata sync of the associated hypervisor.
    MetadataSync,
    /// A VM backup.
    Backup,
    /// A VM restore.
    Restore,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [JobKind::MetadataSync, JobKind::Backup, JobKind::Restore];

    /// How many jobs of this kind (and of the kinds sharing its [`JobKind::slots`]) run at
    /// once; the others wait `Queued`.
    pub fn concurrency(self) -> usize {
        match self {
            JobKind::MetadataSync => 1,
            JobKind::Backup | JobKind::Restore => 4,
        }
    }

    /// Kinds with the same slots share their concurrency: backups and restores together
    /// run four at once per gateway.
    pub fn slots(self) -> JobKind {
        match self {
            JobKind::Restore => JobKind::Backup,
            other => other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::MetadataSync => "METADATA_SYNC",
            JobKind::Backup => "BACKUP",
            JobKind::Restore => "RESTORE",
        }
    }
}

/// Where a job is. `Succeeded`, `Failed` and `Cancelled` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "QUEUED",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::Cancelled => "CANCELLED",
        }
    }
}

/// How far a job has come, in the job's own units (VMs, bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done: u64,
    /// `None` while the total is not known yet.
    pub total: Option<u64>,
}

/// A job as stored and as `bgw-agent jobs` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub kind: JobKind,
    pub state: JobState,
    /// What the job works on, e.g. the hypervisor ARN.
    pub subject: String,
    pub progress: Progress,
    /// The result or the reason it failed.
    pub message: Option<String>,
    /// Set when the agent stopped while the job ran: the job's work may be half done, and
    /// a later job of the same kind cleans up.
    #[serde(default)]
    pub interrupted: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// How a job's work ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded(Option<String>),
    Failed(String),
    /// Stopped on request, after cleaning up.
    Cancelled(String),
}
