//! Backup and restore of VMs: the commands the cloud sends, the chunk upload and download, and
//! the job reports the agent sends back.
//!
//! A VM disk travels as fixed-size chunks named by the SHA-256 of their raw bytes (lowercase
//! hex, [`ChunkHash`]). A backup asks the cloud which chunks of a batch it lacks
//! ([`paths::CHUNKS_MISSING`]), uploads only those as zstd frames ([`chunk_path`], `PUT`), and
//! ends with a [`JobComplete`] carrying each disk's chunk list ([`DiskManifest`]). A restore
//! downloads the chunks its [`RestoreVm`] command lists (`GET` on the same path).
//!
//! ```
//! use bgw_protocol::backup::{chunk_path, ChunkHash};
//! let hash: ChunkHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
//!     .parse()
//!     .unwrap();
//! assert_eq!(
//!     chunk_path(&hash),
//!     "/gateway/v1/chunks/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
//! );
//! assert!("E3B0".parse::<ChunkHash>().is_err());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The largest chunk the cloud accepts, raw and compressed alike.
pub const MAX_CHUNK_BYTES: u64 = 16 * 1024 * 1024;

/// The chunk size agents use for VM disks (4 MiB, as image backup tools do).
pub const DEFAULT_CHUNK_SIZE: u64 = 4 * 1024 * 1024;

/// At most this many hashes in one [`MissingChunksRequest`].
pub const MAX_MISSING_BATCH: usize = 4096;

/// Header of a chunk upload: the length of the raw (decompressed) chunk in bytes.
pub const RAW_LENGTH_HEADER: &str = "x-bgw-raw-length";

/// Query parameter of a chunk upload naming the job it belongs to.
pub const JOB_ID_QUERY: &str = "jobId";

/// Request paths of the backup part of the protocol.
pub mod paths {
    /// `POST` [`super::MissingChunksRequest`] → [`super::MissingChunks`].
    pub const CHUNKS_MISSING: &str = "/gateway/v1/chunks/missing";
    /// `PUT {prefix}{sha256hex}?jobId=ID` uploads a chunk, `GET {prefix}{sha256hex}` reads one.
    pub const CHUNKS_PREFIX: &str = "/gateway/v1/chunks/";
    /// `POST` [`super::JobProgress`] → `{}`.
    pub const JOBS_PROGRESS: &str = "/gateway/v1/jobs/progress";
    /// `POST` [`super::JobComplete`] → `{}`.
    pub const JOBS_COMPLETE: &str = "/gateway/v1/jobs/complete";
}

/// The path of one chunk (upload with `PUT ...?jobId=ID`, download with `GET`).
pub fn chunk_path(hash: &ChunkHash) -> String {
    format!("{}{}", paths::CHUNKS_PREFIX, hash)
}

/// The SHA-256 of a chunk's raw bytes, as 64 lowercase hex digits: the chunk's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ChunkHash(String);

impl ChunkHash {
    /// The hash of `data`.
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest;
        Self(hex::encode(sha2::Sha256::digest(data)))
    }

    /// The name from a finished SHA-256 digest.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(hex::encode(digest))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ChunkHash {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        if value.len() == 64
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(value.to_string()))
        } else {
            Err(format!(
                "chunk name {value:?} is not a SHA-256 in 64 lowercase hex digits"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for ChunkHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

/// One virtual disk as a recovery point stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskManifest {
    /// The disk's device key in the VM (vSphere `VirtualDisk.key`, e.g. `"2000"`).
    pub key: String,
    /// The disk's label as vSphere shows it, e.g. `"Hard disk 1"`.
    pub label: String,
    pub capacity_bytes: u64,
    /// Every chunk but the last is this long; the last one holds the rest of the capacity.
    pub chunk_size: u64,
    /// The chunks in disk order, `ceil(capacityBytes / chunkSize)` of them.
    pub chunks: Vec<ChunkHash>,
    /// The changed-block-tracking change id of the snapshot this disk was read from, when
    /// tracking is on: the next backup asks vCenter what changed since it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
}

/// `BACKUP_VM`: back up one VM into a vault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupVm {
    pub job_id: String,
    pub vm_arn: String,
    pub hypervisor_arn: String,
    /// The VM's `config.instanceUuid` on the hypervisor.
    pub instance_uuid: String,
    pub vault_name: String,
    /// The latest recovery point of the same VM in the same vault, for an incremental backup:
    /// chunks the agent knows are unchanged need not be read or sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousBackup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousBackup {
    pub recovery_point_arn: String,
    /// The disks as that recovery point recorded them (with their change ids and chunks).
    pub disks: Vec<DiskManifest>,
}

/// Keys of [`RestoreVm::metadata`], as given to `StartRestoreJob`.
pub mod restore_metadata {
    /// Name of the new VM (required).
    pub const VM_NAME: &str = "vmName";
    /// Inventory path of the folder to create it in, e.g. `/DC0/vm/restored` (default: the
    /// datacenter's VM folder).
    pub const FOLDER: &str = "folder";
    /// Host to run it on (name as in the inventory). Give `host`, or `cluster` with an optional
    /// `resourcePool`.
    pub const HOST: &str = "host";
    pub const CLUSTER: &str = "cluster";
    pub const RESOURCE_POOL: &str = "resourcePool";
    /// Datastore for its files and disks (required).
    pub const DATASTORE: &str = "datastore";
    /// `true` to power it on once restored (default `false`).
    pub const POWER_ON: &str = "powerOn";
    /// Every key the cloud accepts.
    pub const ALL: &[&str] = &[
        VM_NAME,
        FOLDER,
        HOST,
        CLUSTER,
        RESOURCE_POOL,
        DATASTORE,
        POWER_ON,
    ];
}

/// `RESTORE_VM`: create a new VM from a recovery point's disks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreVm {
    pub job_id: String,
    pub recovery_point_arn: String,
    /// Where and how to create the VM; keys in [`restore_metadata`].
    pub metadata: BTreeMap<String, String>,
    pub disks: Vec<DiskManifest>,
}

/// `CANCEL_JOB`: stop a running or queued backup or restore (`StopBackupJob`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelJob {
    pub job_id: String,
}

/// `POST chunks/missing`: which of these chunks does the cloud lack?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingChunksRequest {
    pub job_id: String,
    pub hashes: Vec<ChunkHash>,
}

/// The answer: the subset of the request's hashes the cloud does not hold, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingChunks {
    pub missing: Vec<ChunkHash>,
}

/// The answer to a chunk upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkStored {
    pub hash: ChunkHash,
    /// `true` when the cloud already held the chunk (nothing was written).
    pub already_present: bool,
}

wire_enum! {
    /// The state of a job as the agent reports it. Closed: the cloud shows it in
    /// `DescribeBackupJob`, so an unknown value is refused with an error naming it.
    pub enum AgentJobState: closed "job state" {
        /// Waiting for a free slot in the gateway's job runner.
        Pending = "PENDING",
        Running = "RUNNING",
        /// Cancelled, cleaning up (removing the snapshot).
        Aborting = "ABORTING",
    }
}

/// `POST jobs/progress`, at least every second while a job runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    pub job_id: String,
    pub state: AgentJobState,
    /// 0.0 to 100.0.
    pub percent_done: f64,
    /// Bytes of disk read (backup) or written (restore) so far.
    pub bytes_read: u64,
    /// The size of what the job backs up or restores, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_size_bytes: Option<u64>,
}

/// `POST jobs/complete`: the end of a job. Repeating it for a finished job changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobComplete {
    pub job_id: String,
    pub outcome: JobOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobOutcome {
    /// A backup carries every disk it read; a restore carries none (`disks` empty) and the
    /// new VM's instance UUID.
    #[serde(rename_all = "camelCase")]
    Succeeded {
        #[serde(default)]
        disks: Vec<DiskManifest>,
        /// The VM's name at the time of the backup, or the restored VM's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vm_name: Option<String>,
        /// Restores: the `config.instanceUuid` of the VM created.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created_instance_uuid: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Failed { message: String },
    /// Cancelled by `CANCEL_JOB`.
    #[serde(rename_all = "camelCase")]
    Aborted { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::CommandKind;

    fn hash(c: char) -> ChunkHash {
        c.to_string().repeat(64).parse().unwrap()
    }

    #[test]
    fn backup_command_is_camel_case_and_tagged() {
        let kind = CommandKind::BackupVm(BackupVm {
            job_id: "job-1".into(),
            vm_arn: "arn:vm".into(),
            hypervisor_arn: "arn:hv".into(),
            instance_uuid: "u-1".into(),
            vault_name: "v".into(),
            previous: Some(PreviousBackup {
                recovery_point_arn: "arn:rp".into(),
                disks: vec![DiskManifest {
                    key: "2000".into(),
                    label: "Hard disk 1".into(),
                    capacity_bytes: 10,
                    chunk_size: 4,
                    chunks: vec![hash('a'), hash('b'), hash('c')],
                    change_id: Some("52 1/2".into()),
                }],
            }),
        });
        let json = serde_json::to_value(&kind).unwrap();
        assert_eq!(json["type"], "BACKUP_VM");
        assert_eq!(json["jobId"], "job-1");
        assert_eq!(json["previous"]["recoveryPointArn"], "arn:rp");
        assert_eq!(json["previous"]["disks"][0]["changeId"], "52 1/2");
        assert_eq!(json["previous"]["disks"][0]["capacityBytes"], 10);
        let back: CommandKind = serde_json::from_value(json).unwrap();
        assert_eq!(back, kind);
    }

    #[test]
    fn cancel_and_restore_round_trip() {
        let cancel = CommandKind::CancelJob(CancelJob { job_id: "j".into() });
        let json = serde_json::to_string(&cancel).unwrap();
        assert_eq!(json, r#"{"type":"CANCEL_JOB","jobId":"j"}"#);
        let restore = CommandKind::RestoreVm(RestoreVm {
            job_id: "r".into(),
            recovery_point_arn: "arn:rp".into(),
            metadata: [(restore_metadata::VM_NAME.to_string(), "x".to_string())].into(),
            disks: vec![],
        });
        let json = serde_json::to_value(&restore).unwrap();
        assert_eq!(json["type"], "RESTORE_VM");
        assert_eq!(json["metadata"]["vmName"], "x");
        assert_eq!(
            serde_json::from_value::<CommandKind>(json).unwrap(),
            restore
        );
    }

    #[test]
    fn outcome_is_tagged_by_status() {
        let done = JobComplete {
            job_id: "j".into(),
            outcome: JobOutcome::Failed {
                message: "vCenter unreachable".into(),
            },
        };
        let json = serde_json::to_value(&done).unwrap();
        assert_eq!(json["outcome"]["status"], "FAILED");
        let ok: JobComplete = serde_json::from_str(
            r#"{"jobId":"j","outcome":{"status":"SUCCEEDED","disks":[],"vmName":"vm1"}}"#,
        )
        .unwrap();
        assert!(
            matches!(ok.outcome, JobOutcome::Succeeded { vm_name: Some(ref n), .. } if n == "vm1")
        );
    }

    #[test]
    fn a_bad_chunk_name_is_refused_by_name() {
        let err = serde_json::from_str::<MissingChunksRequest>(r#"{"jobId":"j","hashes":["zz"]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"zz\""), "{err}");
        assert_eq!(
            ChunkHash::of(b"").as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn an_unknown_job_state_is_refused() {
        let err = serde_json::from_str::<JobProgress>(
            r#"{"jobId":"j","state":"DONE","percentDone":1.0,"bytesRead":0}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("DONE") && err.contains("RUNNING"), "{err}");
    }
}
