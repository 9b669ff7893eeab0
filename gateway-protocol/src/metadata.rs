//! Metadata upload: VM inventory in batches, idempotent by `(sync_id, batch)`.
//!
//! A sync is a sequence of [`MetadataBatch`]es with the same `sync_id`. The last one has
//! `complete = Some(..)`: the cloud then removes every VM of the hypervisor that the sync did
//! not mention, and records the sync's final status. Re-sending a batch is harmless.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `sync_id` of a change-watch batch starts with this prefix; the rest makes it unique.
pub const WATCH_SYNC_PREFIX: &str = "watch-";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataBatch {
    pub hypervisor_arn: String,
    pub sync_id: String,
    /// 0, 1, 2 … within the sync.
    pub batch: u32,
    pub vms: Vec<VmRecord>,
    /// VMs removed since the last upload (change watch), by instance UUID.
    #[serde(default)]
    pub removed: Vec<String>,
    /// Present on the last batch of a full sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<SyncOutcome>,
}

impl MetadataBatch {
    /// A batch of the change watch: it stands alone and is not part of a full sync.
    pub fn is_watch(&self) -> bool {
        self.sync_id.starts_with(WATCH_SYNC_PREFIX)
    }
}

/// One VM as the cloud stores it. `instance_uuid` is its identity across renames and moves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmRecord {
    pub instance_uuid: String,
    pub name: String,
    /// Folder path, e.g. `/DC0/vm/prod`.
    pub path: String,
    pub host_name: String,
    /// VMware tags as `category/tag`.
    #[serde(default)]
    pub vmware_tags: Vec<VmwareTag>,
    /// AWS tags derived from the property mappings.
    #[serde(default)]
    pub aws_tags: Vec<AwsTag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmwareTag {
    pub category: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsTag {
    pub key: String,
    pub value: String,
}

/// Final status of a sync, mirroring `SyncMetadataStatus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncOutcome {
    Succeeded,
    /// Some VMs or tags failed; the message lists them.
    #[serde(rename_all = "camelCase")]
    PartiallyFailed {
        message: String,
    },
    /// Nothing usable was uploaded; the message says why.
    #[serde(rename_all = "camelCase")]
    Failed {
        message: String,
    },
}

wire_enum! {
    /// The state of a metadata sync, as `GetHypervisor.LatestMetadataSyncStatus` shows it.
    /// Closed: the cloud stores it, so an unknown value is refused with an error naming it.
    pub enum SyncStatus: closed "sync status" {
        Created = "CREATED",
        Running = "RUNNING",
        Failed = "FAILED",
        PartiallyFailed = "PARTIALLY_FAILED",
        Succeeded = "SUCCEEDED",
    }
}

/// Sent when a sync starts so `GetHypervisor` shows `RUNNING`, and when it fails before upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatusReport {
    pub hypervisor_arn: String,
    pub sync_id: String,
    /// `RUNNING`, or a final outcome when the sync ended without a completing batch.
    pub status: SyncStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataAck {
    pub accepted: u32,
}
