//! What a backup reads of one VM or one snapshot, in one call: its disks (with change ids),
//! the controllers they hang on, CPUs, memory and guest type. A restore recreates the VM
//! from the same record.

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::inventory::{disks, to_disks, Disk};
use crate::soap::MoRef;
use crate::xml::Node;

/// Properties read by [`Client::hardware_of`]. A snapshot has the same `config` as a VM.
const HARDWARE_PROPERTIES: &[&str] = &[
    "config.hardware.device",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.guestId",
    "config.changeTrackingEnabled",
    "config.name",
    "config.instanceUuid",
];

/// A storage controller (SCSI, SATA, NVMe, IDE) of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controller {
    pub key: i32,
    /// The vSphere device type, e.g. `ParaVirtualSCSIController` or `VirtualLsiLogicController`.
    pub kind: String,
    pub bus_number: i32,
}

/// The hardware of a VM or of a snapshot of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// `config.name`: the VM's name (when the snapshot was taken, for a snapshot).
    pub name: String,
    pub instance_uuid: Option<String>,
    pub num_cpus: u32,
    pub memory_mb: u64,
    /// e.g. `otherGuest64`, `ubuntu64Guest`.
    pub guest_id: String,
    /// `config.changeTrackingEnabled`.
    pub change_tracking: bool,
    pub disks: Vec<Disk>,
    pub controllers: Vec<Controller>,
}

impl Client {
    /// The hardware of a VM (`VirtualMachine` moref) or of a snapshot
    /// (`VirtualMachineSnapshot` moref): the disks of a snapshot are the disks as they were
    /// when it was taken.
    pub async fn hardware_of(&self, obj: &MoRef) -> Result<Hardware> {
        let o = self
            .properties(obj, HARDWARE_PROPERTIES)
            .await?
            .ok_or_else(|| Error::NotFound {
                object: format!("{} {}", obj.kind, obj.value),
                message: "no configuration returned".into(),
            })?;
        let text = |p: &str| o.get(p).map(|n| n.text.trim().to_string());
        let change_tracking = text("config.changeTrackingEnabled").as_deref() == Some("true");
        let devices = o.get("config.hardware.device");
        Ok(Hardware {
            name: text("config.name")
                .map(|n| crate::inventory::unescape(&n))
                .unwrap_or_default(),
            instance_uuid: text("config.instanceUuid").filter(|u| !u.is_empty()),
            num_cpus: text("config.hardware.numCPU")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1),
            memory_mb: text("config.hardware.memoryMB")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            guest_id: text("config.guestId").unwrap_or_default(),
            change_tracking,
            disks: devices
                .map(|d| to_disks(&disks(d), change_tracking))
                .unwrap_or_default(),
            controllers: devices.map(controllers).unwrap_or_default(),
        })
    }

    /// Whether VMware Tools runs in the guest (a quiesced snapshot needs it).
    pub async fn tools_running(&self, vm: &str) -> Result<bool> {
        let o = self
            .properties(
                &MoRef::new("VirtualMachine", vm),
                &["guest.toolsRunningStatus"],
            )
            .await?;
        Ok(o.and_then(|o| {
            o.get("guest.toolsRunningStatus")
                .map(|n| n.text.trim() == "guestToolsRunning")
        })
        .unwrap_or(false))
    }
}

fn controllers(array: &Node) -> Vec<Controller> {
    array
        .children
        .iter()
        .filter_map(|d| {
            let kind = d.xsi_type.clone()?;
            if !kind.ends_with("Controller") {
                return None;
            }
            Some(Controller {
                key: d.child_text("key")?.trim().parse().ok()?,
                bus_number: d
                    .child_text("busNumber")
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0),
                kind,
            })
        })
        .collect()
}
