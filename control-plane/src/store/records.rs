//! Typed records kept in the store. Serialised as JSON; new fields must be `#[serde(default)]`
//! so older data directories stay readable.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// A gateway: created by `CreateGateway`, kept up to date by the gateway itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayRecord {
    pub arn: String,
    pub display_name: String,
    pub gateway_type: String,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub hypervisor_arn: Option<String>,
    #[serde(default)]
    pub last_seen: Option<DateTime<Utc>>,
    #[serde(default)]
    pub maintenance_start_time: Option<MaintenanceTime>,
    #[serde(default)]
    pub next_update_availability: Option<DateTime<Utc>>,
    #[serde(default)]
    pub software_version: Option<String>,
    /// IANA time zone the gateway reports; maintenance times are in this zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Set by `UpdateGatewaySoftwareNow`, cleared when the gateway reports the update done.
    #[serde(default)]
    pub update_requested: Option<DateTime<Utc>>,
    /// Free-form facts the gateway reports (host name, addresses, resources).
    #[serde(default)]
    pub reported: BTreeMap<String, String>,
}

/// Start of a weekly or monthly maintenance window, in the gateway's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceTime {
    pub hour_of_day: u8,
    pub minute_of_hour: u8,
    pub day_of_week: Option<u8>,
    pub day_of_month: Option<u8>,
}

/// Hypervisor state as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HypervisorState {
    Pending,
    Online,
    Offline,
    Error,
}

impl HypervisorState {
    pub fn as_str(self) -> &'static str {
        match self {
            HypervisorState::Pending => "PENDING",
            HypervisorState::Online => "ONLINE",
            HypervisorState::Offline => "OFFLINE",
            HypervisorState::Error => "ERROR",
        }
    }
}

/// Status of the latest metadata sync of a hypervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncStatus {
    Created,
    Running,
    Failed,
    PartiallyFailed,
    Succeeded,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Created => "CREATED",
            SyncStatus::Running => "RUNNING",
            SyncStatus::Failed => "FAILED",
            SyncStatus::PartiallyFailed => "PARTIALLY_FAILED",
            SyncStatus::Succeeded => "SUCCEEDED",
        }
    }
}

/// One VMware tag -> AWS tag mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyMapping {
    pub vmware_category: String,
    pub vmware_tag_name: String,
    pub aws_tag_key: String,
    pub aws_tag_value: String,
}

/// A hypervisor (vCenter or ESXi host) the customer imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HypervisorRecord {
    pub arn: String,
    pub name: String,
    pub host: String,
    #[serde(default)]
    pub username: Option<Secret>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    #[serde(default)]
    pub log_group_arn: Option<String>,
    pub state: HypervisorState,
    #[serde(default)]
    pub sync_status: Option<SyncStatus>,
    #[serde(default)]
    pub sync_message: Option<String>,
    #[serde(default)]
    pub last_successful_sync: Option<DateTime<Utc>>,
    #[serde(default)]
    pub property_mappings: Vec<PropertyMapping>,
    #[serde(default)]
    pub iam_role_arn: Option<String>,
    #[serde(default)]
    pub gateway_arn: Option<String>,
}

/// A VMware tag attached to a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmwareTag {
    pub category: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A virtual machine reported by a gateway's metadata sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmRecord {
    pub arn: String,
    pub hypervisor_arn: String,
    /// vCenter `config.instanceUuid`: the stable identity of the VM.
    pub instance_uuid: String,
    pub name: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub host_name: Option<String>,
    #[serde(default)]
    pub last_backup: Option<DateTime<Utc>>,
    #[serde(default)]
    pub vmware_tags: Vec<VmwareTag>,
    /// The AWS tag keys the last metadata sync derived from VMware tags through the
    /// hypervisor's property mappings; a key no longer derived is removed from the VM.
    #[serde(default)]
    pub mapped_tag_keys: Vec<String>,
}

/// Lifecycle of a one-time activation key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Available,
    Consumed { gateway_arn: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationKeyRecord {
    pub key: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub state: KeyState,
}

/// One bandwidth-rate-limit interval as stored (same meaning as the API shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthInterval {
    pub average_upload_rate_limit_bits_per_sec: Option<u64>,
    pub start_hour_of_day: u8,
    pub start_minute_of_hour: u8,
    pub end_hour_of_day: u8,
    pub end_minute_of_hour: u8,
    pub days_of_week: Vec<u8>,
}

/// Tags of one resource, ordered by key.
pub type Tags = BTreeMap<String, String>;
