//! VM snapshots: take one for a backup, remove it, and find the ones a backup left behind.
//!
//! A backup names its snapshots with a fixed prefix (`bgw-backup-<job>`), so snapshots left by
//! a crash are found by name across the inventory in one call and removed at start.

use serde::Serialize;
use tracing::info;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::soap::{self, MoRef};
use crate::xml::Node;

/// A snapshot of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// `VirtualMachineSnapshot` moref, e.g. `snapshot-42`.
    pub moref: String,
    /// The VM it belongs to.
    pub vm: String,
    pub name: String,
    pub description: String,
    /// When it was taken, as vCenter wrote it (ISO 8601).
    pub created: String,
    pub quiesced: bool,
}

impl Snapshot {
    pub fn moref(&self) -> MoRef {
        MoRef::new("VirtualMachineSnapshot", self.moref.clone())
    }
}

impl Client {
    /// Takes a snapshot of `vm` without its memory; `quiesce` asks VMware Tools to flush the
    /// guest's file systems first (only when Tools runs). Returns the snapshot's moref.
    pub async fn create_snapshot(
        &self,
        vm: &str,
        name: &str,
        description: &str,
        quiesce: bool,
    ) -> Result<MoRef> {
        let args = format!(
            "{}{}<memory>false</memory><quiesce>{quiesce}</quiesce>",
            soap::text_arg("name", name),
            soap::text_arg("description", description),
        );
        let result = self
            .run_task(
                "CreateSnapshot_Task",
                &MoRef::new("VirtualMachine", vm),
                &args,
            )
            .await?;
        let snapshot = MoRef::from_node(&result)
            .ok_or_else(|| Error::malformed("CreateSnapshot_Task succeeded without a snapshot"))?;
        info!(vm, snapshot = %snapshot.value, name, quiesce, "snapshot taken");
        Ok(snapshot)
    }

    /// Removes one snapshot (its children stay) and consolidates its disks into the VM.
    pub async fn remove_snapshot(&self, snapshot: &MoRef) -> Result<()> {
        self.run_task(
            "RemoveSnapshot_Task",
            snapshot,
            "<removeChildren>false</removeChildren><consolidate>true</consolidate>",
        )
        .await?;
        info!(snapshot = %snapshot.value, "snapshot removed");
        Ok(())
    }

    /// The snapshots of one VM, parents before children.
    pub async fn snapshots(&self, vm: &str) -> Result<Vec<Snapshot>> {
        let o = self
            .properties(&MoRef::new("VirtualMachine", vm), &["snapshot"])
            .await?;
        let mut out = Vec::new();
        if let Some(info) = o.as_ref().and_then(|o| o.get("snapshot")) {
            collect(vm, info.children_named("rootSnapshotList"), &mut out);
        }
        Ok(out)
    }

    /// Every snapshot in the inventory whose name starts with `prefix`: one retrieval over
    /// all VMs.
    pub async fn snapshots_named(&self, prefix: &str) -> Result<Vec<Snapshot>> {
        let mut out = Vec::new();
        let i = &self.inner;
        let found = i
            .session
            .with_session(&i.t, &i.sc, |tok| async move {
                let view = self.inventory_view(&tok).await?;
                let spec = soap::view_filter_spec(
                    &view,
                    &[("VirtualMachine", &["snapshot"][..])],
                    "specSet",
                );
                let mut found = Vec::new();
                self.retrieve_spec(&tok, &spec, |o| {
                    if let Some(info) = o.get("snapshot") {
                        collect(
                            &o.obj.value,
                            info.children_named("rootSnapshotList"),
                            &mut found,
                        );
                    }
                    Ok(())
                })
                .await?;
                Ok(found)
            })
            .await?;
        out.extend(found.into_iter().filter(|s| s.name.starts_with(prefix)));
        Ok(out)
    }
}

/// Walks `VirtualMachineSnapshotTree` elements depth first.
fn collect<'a>(vm: &str, trees: impl Iterator<Item = &'a Node>, out: &mut Vec<Snapshot>) {
    for t in trees {
        let text = |n: &str| t.child_text(n).unwrap_or_default().trim().to_string();
        if let Some(moref) = t.child("snapshot").and_then(MoRef::from_node) {
            out.push(Snapshot {
                moref: moref.value,
                vm: t
                    .child("vm")
                    .and_then(MoRef::from_node)
                    .map(|m| m.value)
                    .unwrap_or_else(|| vm.to_string()),
                name: crate::inventory::unescape(&text("name")),
                description: text("description"),
                created: text("createTime"),
                quiesced: text("quiesced") == "true",
            });
        }
        collect(vm, t.children_named("childSnapshotList"), out);
    }
}
