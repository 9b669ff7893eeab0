//! Heartbeat: what the agent tells the cloud every `heartbeat_interval`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The cloud marks a gateway offline after this many intervals without a heartbeat.
pub const MISSED_HEARTBEATS_OFFLINE: u32 = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub agent_version: String,
    pub hostname: String,
    pub ip_addresses: Vec<String>,
    pub mac_addresses: Vec<String>,
    /// IANA time zone of the gateway (schedules and windows are in this zone).
    pub timezone: String,
    pub uptime_seconds: u64,
    /// Seconds between heartbeats: the cloud derives the offline threshold from it.
    pub interval_seconds: u64,
    pub resources: ResourceSummary,
    pub hypervisor: HypervisorStatus,
    /// Current upload limit in bits per second, `None` = unlimited.
    pub bandwidth_limit_bps: Option<u64>,
    pub update: UpdateStatus,
    /// The configuration version the agent has applied.
    pub config_version: u64,
}

/// Counts of the local resource check (vCPU, RAM, root disk).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSummary {
    pub ok: u32,
    pub warning: u32,
    pub fail: u32,
    pub cpus: u32,
    pub memory_bytes: u64,
}

/// Connection state of the associated hypervisor, as `GetHypervisor.State` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HypervisorState {
    /// No hypervisor associated, or not tried yet.
    #[default]
    Pending,
    Online,
    /// The gateway cannot reach it over the network.
    Offline,
    /// Reachable but unusable: authentication, TLS or privileges.
    Error,
}

impl HypervisorState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Online => "ONLINE",
            Self::Offline => "OFFLINE",
            Self::Error => "ERROR",
        }
    }
}

impl std::fmt::Display for HypervisorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HypervisorStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypervisor_arn: Option<String>,
    pub state: HypervisorState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStatus {
    pub state: UpdateState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_version: Option<String>,
    /// Downloaded, verified and waiting under the state directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_version: Option<String>,
    /// The latest update attempt (also one in progress), for the cloud's update history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<UpdateAttempt>,
}

/// One update attempt as the gateway reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateAttempt {
    pub version: String,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    pub result: UpdateResult,
    /// Why it failed or was refused (`CODE: detail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

wire_enum! {
    /// How an update attempt ended. Open, like the states.
    pub enum UpdateResult: open {
        InProgress = "IN_PROGRESS",
        /// The new version passed its trial and runs.
        Succeeded = "SUCCEEDED",
        /// The new version failed its trial; the previous one runs again.
        RolledBack = "ROLLED_BACK",
        /// The release was not installed (bad signature, checksum, version...).
        Refused = "REFUSED",
    }
}

/// A release the cloud offers: the signed manifest exactly as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateOffer {
    pub version: String,
    /// The manifest's JSON text, byte for byte as signed.
    pub manifest: String,
    #[serde(default)]
    pub key_id: String,
    /// Base64 ed25519 signature of `manifest` (empty: unsigned).
    #[serde(default)]
    pub signature: String,
}

wire_enum! {
    /// Where the agent's software update stands. Open: the cloud shows a state from a newer
    /// agent as sent instead of refusing its heartbeat.
    #[derive(Default)]
    pub enum UpdateState: open {
        /// No update in progress.
        #[default]
        Idle = "IDLE",
        Downloading = "DOWNLOADING",
        /// Downloaded and verified.
        Staged = "STAGED",
        /// Staged, waiting for the maintenance window or for running jobs to end.
        Waiting = "WAITING",
        Applying = "APPLYING",
        /// Installed; the new version is checking itself before it commits.
        Verifying = "VERIFYING",
        /// The new version passed its trial and is the one that runs.
        Committed = "COMMITTED",
        /// The new version failed its checks; the previous one runs again.
        RolledBack = "ROLLED_BACK",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatAck {
    pub server_time: DateTime<Utc>,
    /// The latest configuration version: pull it when it differs from the applied one.
    pub config_version: u64,
    /// The cloud wants the agent to rotate its credentials.
    #[serde(default)]
    pub rotate_credentials: bool,
    /// A newer release for this gateway, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateOffer>,
}
