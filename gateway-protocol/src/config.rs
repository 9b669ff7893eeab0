//! Configuration pull: what the cloud wants the gateway to do, versioned.

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigRequest {
    /// The version the agent has; the cloud answers `unchanged` when it is current.
    pub known_version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfigResponse {
    Unchanged { version: u64 },
    Changed(Box<GatewayConfig>),
}

/// Everything the cloud configures on a gateway. Version 0 is the empty configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfig {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<HypervisorConfig>,
    #[serde(default)]
    pub bandwidth_schedule: Vec<BandwidthInterval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_start_time: Option<MaintenanceStartTime>,
}

/// The hypervisor associated with the gateway. The password only travels over TLS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HypervisorConfig {
    pub hypervisor_arn: String,
    /// A name or an IP address, optionally with `:port`.
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default)]
    pub property_mappings: Vec<PropertyMapping>,
}

/// VMware category + tag → AWS tag key + value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyMapping {
    pub vmware_category: String,
    pub vmware_tag_name: String,
    pub aws_tag_key: String,
    pub aws_tag_value: String,
}

/// One interval of the upload rate-limit schedule, in the gateway's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BandwidthInterval {
    /// `None` = unlimited during the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_upload_rate_limit_bits_per_sec: Option<u64>,
    /// 0 = Sunday … 6 = Saturday.
    pub days_of_week: Vec<u8>,
    pub start_hour_of_day: u8,
    pub start_minute_of_hour: u8,
    pub end_hour_of_day: u8,
    pub end_minute_of_hour: u8,
}

/// Start of the weekly or monthly maintenance window, in the gateway's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceStartTime {
    pub hour_of_day: u8,
    pub minute_of_hour: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_of_week: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_of_month: Option<u8>,
}
