//! Commands from the cloud to the gateway, delivered by long-poll, and their results.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backup::{BackupVm, CancelJob, RestoreVm};
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandPoll {
    /// How long the cloud may hold the request open (capped by the cloud).
    pub wait_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandBatch {
    pub commands: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    /// Unique id; the agent answers with it, and ignores a command id it has already run.
    pub id: String,
    pub issued_at: DateTime<Utc>,
    pub kind: CommandKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandKind {
    /// Run a metadata sync now (`StartVirtualMachinesMetadataSync`).
    #[serde(rename_all = "camelCase")]
    SyncMetadata { hypervisor_arn: String },
    /// Try a hypervisor configuration and report exactly what failed.
    #[serde(rename_all = "camelCase")]
    TestHypervisor {
        host: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Secret>,
    },
    /// Apply an available update now (`UpdateGatewaySoftwareNow`).
    UpdateNow,
    /// The configuration changed: pull it.
    #[serde(rename_all = "camelCase")]
    ConfigChanged { version: u64 },
    /// Back up a VM (`StartBackupJob`); the job reports on `jobs/progress` and `jobs/complete`.
    BackupVm(BackupVm),
    /// Restore a recovery point as a new VM (`StartRestoreJob`).
    RestoreVm(RestoreVm),
    /// Stop a backup or restore job (`StopBackupJob`).
    CancelJob(CancelJob),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandResult {
    pub command_id: String,
    pub outcome: CommandOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandOutcome {
    Succeeded,
    /// `stage` says where it failed.
    #[serde(rename_all = "camelCase")]
    Failed {
        stage: TestStage,
        message: String,
    },
}

wire_enum! {
    /// Where a command failed. Open: the cloud quotes a stage from a newer agent as sent rather
    /// than losing the command's result.
    pub enum TestStage: open {
        /// The host name does not resolve, or is not a host name.
        Dns = "DNS",
        /// No TCP connection to the host's port.
        Tcp = "TCP",
        /// The TLS handshake or the certificate check failed.
        Tls = "TLS",
        /// vCenter refused the user name or password.
        Authentication = "AUTHENTICATION",
        /// Logged in, but the user may not read the inventory or tags.
        Privileges = "PRIVILEGES",
        /// vCenter did not answer within the test's time limit.
        Timeout = "TIMEOUT",
        /// vCenter answered with some other fault.
        Vcenter = "VCENTER",
        /// No vCenter session is available to run the command on.
        Unavailable = "UNAVAILABLE",
        /// The metadata sync could not be started.
        Sync = "SYNC",
        /// This agent does not support the command.
        Unsupported = "UNSUPPORTED",
    }
}
