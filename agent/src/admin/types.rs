//! Requests and answers of the admin API, shared by the daemon's handlers and the client.
//!
//! The JSON shapes are what `bgw-agent status --json` and `bgw-agent jobs --json` print.

use bgw_protocol::heartbeat::HypervisorState;
use bgw_protocol::metadata::SyncStatus;
use serde::{Deserialize, Serialize};

use crate::jobs::JobRecord;

/// `GET /status`: everything `bgw-agent status` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub agent_id: Option<String>,
    pub activated: bool,
    pub gateway_arn: Option<String>,
    pub pending_activation_key: Option<String>,
    pub last_heartbeat: Option<String>,
    pub timezone: String,
    pub uptime_seconds: u64,
    pub config_version: u64,
    pub cloud: CloudStatus,
    pub hypervisor: HypervisorReport,
    pub sync: SyncReport,
    pub bandwidth: BandwidthReport,
    pub maintenance: MaintenanceReport,
    /// Software updates (absent in answers of agents that predate them).
    #[serde(default)]
    pub update: UpdateReport,
}

/// The software update part of `bgw-agent status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateReport {
    pub running_version: String,
    pub state: bgw_protocol::heartbeat::UpdateState,
    pub staged_version: Option<String>,
    /// The release the cloud offers.
    pub available_version: Option<String>,
    /// When the next maintenance window starts (UTC).
    pub next_window_start: Option<String>,
    /// `UpdateGatewaySoftwareNow` asked to apply without waiting for the window.
    #[serde(default)]
    pub apply_now: bool,
    /// The latest attempt: version, start, end, result and reason.
    pub last_attempt: Option<bgw_protocol::heartbeat::UpdateAttempt>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloudStatus {
    pub endpoint: String,
    pub region: String,
    pub last_error: Option<String>,
    pub clock_offset_ms: i64,
    pub queued_results: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HypervisorReport {
    pub arn: Option<String>,
    pub host: Option<String>,
    pub state: HypervisorState,
    pub message: Option<String>,
    /// How many VMware-tag-to-AWS-tag mappings the applied configuration holds.
    #[serde(default)]
    pub property_mappings: usize,
    /// SHA-256 thumbprint of the vCenter certificate the agent trusts (recorded at the first
    /// connection), hex pairs separated by colons.
    #[serde(default)]
    pub thumbprint: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncReport {
    /// `None` before any sync.
    pub last_status: Option<SyncStatus>,
    pub last_success: Option<String>,
    pub last_message: Option<String>,
    pub vms: Option<u64>,
    /// The ESXi hosts the VMs ran on at the last full sync.
    #[serde(default)]
    pub esxi_hosts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BandwidthReport {
    /// `null` = unlimited.
    pub current_limit_bps: Option<u64>,
    pub next_change_at: Option<String>,
    pub next_limit_bps: Option<u64>,
    pub intervals: usize,
    /// The whole schedule, in the gateway's time zone.
    #[serde(default)]
    pub schedule: Vec<ScheduleInterval>,
}

/// One interval of the bandwidth schedule (gateway time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleInterval {
    /// 0 = Sunday.
    pub days_of_week: Vec<u8>,
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`, inclusive.
    pub end: String,
    /// `null` = unlimited.
    pub limit_bps: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MaintenanceReport {
    pub next_window_start: Option<String>,
}

/// `POST /activation-key`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRequest {
    pub region: String,
}

/// Answer to `POST /activation-key`: the key, or the daemon's error with the HTTP status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyAnswer {
    pub activation_key: Option<String>,
    pub expires_at: Option<String>,
    pub error: Option<String>,
}

/// `GET /jobs`: every job recorded, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobsAnswer {
    pub jobs: Vec<JobRecord>,
}

/// `POST /jobs/{id}/cancel`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelAnswer {
    /// False when no such job is queued or running.
    pub cancelled: bool,
}

/// `POST /vcenter/retrust`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RetrustRequest {
    /// The host to forget; `None` forgets every recorded thumbprint.
    pub host: Option<String>,
}

/// Answer to `POST /vcenter/retrust`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetrustAnswer {
    /// The hosts whose thumbprint was forgotten.
    pub forgotten: Vec<String>,
    pub error: Option<String>,
}

/// `POST /timezone`: the gateway's new IANA time zone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimezoneRequest {
    pub timezone: String,
}

/// Answer to `POST /timezone` (400 with `error` for a name that is not an IANA zone).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimezoneAnswer {
    pub timezone: Option<String>,
    pub previous: Option<String>,
    pub error: Option<String>,
}
