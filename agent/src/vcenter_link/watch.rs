//! Between full syncs, vCenter's change feed (`WaitForUpdatesEx`) is turned into small
//! metadata batches: VMs added, renamed or moved, and VMs removed. Changes arriving close
//! together are uploaded as one batch.
//!
//! The feed starts with every existing VM; those equal to what the last sync uploaded are
//! dropped, so a (re)started watch costs no upload.

use std::collections::BTreeMap;

use bgw_protocol::metadata::{MetadataBatch, VmRecord};
use vsphere_client::{Change, Client, Vm};

use super::records::{self, Problem};
use super::sync::Known;
use super::Ctx;
use crate::state::OutboxItem;

/// What a group of changes means for the cloud.
#[derive(Debug, Default, PartialEq)]
pub struct Delta {
    /// New or changed VMs that need their tags read (new to this agent).
    pub added: Vec<Vm>,
    /// Changed VMs whose tags are already known, by moref.
    pub updated: Vec<(String, VmRecord)>,
    /// Removed VMs by moref and instance UUID.
    pub removed: Vec<(String, String)>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }
}

/// Works out the delta of `changes` against what was uploaded last. Pure.
pub fn delta(
    ctx_mappings: &[bgw_protocol::config::PropertyMapping],
    known: &Known,
    changes: Vec<Change>,
) -> Delta {
    // The last change of each VM wins.
    let mut latest: BTreeMap<String, Option<Vm>> = BTreeMap::new();
    for change in changes {
        match change {
            Change::Enter(vm) | Change::Modify(vm) => {
                latest.insert(vm.moref.clone(), Some(vm));
            }
            Change::Leave { moref } => {
                latest.insert(moref, None);
            }
        }
    }
    let mut out = Delta::default();
    for (moref, vm) in latest {
        match (vm, known.instance_uuid(&moref)) {
            (None, Some(uuid)) => out.removed.push((moref, uuid)),
            (None, None) => {}
            (Some(vm), None) => out.added.push(vm),
            (Some(vm), Some(uuid)) => {
                if vm.instance_uuid.as_deref() != Some(uuid.as_str()) {
                    // A different VM under a recycled moref: treat as new.
                    out.removed.push((moref.clone(), uuid));
                    out.added.push(vm);
                    continue;
                }
                let mut problems: Vec<Problem> = Vec::new();
                let tags = known.tags(&moref);
                if let Some(record) = records::vm_record(&vm, &tags, ctx_mappings, &mut problems) {
                    if !known.is_current(&moref, &record) {
                        out.updated.push((moref, record));
                    }
                }
            }
        }
    }
    out
}

/// Uploads a delta: reads the tags of new VMs (one call), queues one batch, and updates
/// `known`. Returns the number of VMs changed or removed.
pub async fn push(
    ctx: &Ctx,
    client: &Client,
    known: &mut Known,
    delta: Delta,
) -> crate::Result<usize> {
    if delta.is_empty() {
        return Ok(0);
    }
    let mut vms: Vec<(String, VmRecord)> = delta.updated;
    if !delta.added.is_empty() {
        let morefs: Vec<String> = delta.added.iter().map(|v| v.moref.clone()).collect();
        let tags = match client.tags_for(&morefs).await {
            Ok(t) => Some(t),
            Err(e) => {
                // The next full sync fills the tags in.
                tracing::warn!(error = %e, "cannot read the tags of new VMs");
                None
            }
        };
        let mut problems = Vec::new();
        for vm in &delta.added {
            let attached = tags
                .as_ref()
                .map(|t| t.of_vm(&vm.moref))
                .unwrap_or_default();
            if let Some(r) =
                records::vm_record(vm, &attached, &ctx.hv.property_mappings, &mut problems)
            {
                vms.push((vm.moref.clone(), r));
            }
        }
        for p in problems {
            tracing::warn!(problem = %p, "VM not synced");
        }
    }
    let removed: Vec<String> = delta.removed.iter().map(|(_, u)| u.clone()).collect();
    let count = vms.len() + removed.len();
    let batch = MetadataBatch {
        hypervisor_arn: ctx.hv.hypervisor_arn.clone(),
        sync_id: format!(
            "{}{}",
            bgw_protocol::metadata::WATCH_SYNC_PREFIX,
            uuid::Uuid::new_v4()
        ),
        batch: 0,
        vms: vms.iter().map(|(_, r)| r.clone()).collect(),
        removed,
        complete: None,
    };
    ctx.env.outbox.push(&OutboxItem::Metadata(batch))?;
    for (moref, _) in &delta.removed {
        known.remove(moref);
    }
    for (moref, r) in &vms {
        known.insert(moref, r);
    }
    tracing::info!(changed = count, "VM changes queued for upload");
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgw_protocol::metadata::VmwareTag;

    fn vm(moref: &str, uuid: &str, name: &str) -> Vm {
        Vm {
            moref: moref.into(),
            instance_uuid: Some(uuid.into()),
            bios_uuid: None,
            name: name.into(),
            path: format!("/DC0/vm/{name}"),
            template: false,
            guest_hostname: None,
            guest_ip: None,
            power_state: vsphere_client::PowerState::PoweredOn,
            esxi_host: Some("esx".into()),
            datastores: vec![],
            disks: vec![],
            resource_pool: None,
            change_tracking: false,
        }
    }

    fn known_of(vms: &[Vm]) -> Known {
        let mut known = Known::new();
        for v in vms {
            let mut p = vec![];
            let mut r = records::vm_record(v, &[], &[], &mut p).unwrap();
            r.vmware_tags.push(VmwareTag {
                category: "env".into(),
                name: "prod".into(),
                description: String::new(),
            });
            known.insert(&v.moref, &r);
        }
        known
    }

    #[test]
    fn unchanged_vms_from_the_initial_feed_are_dropped() {
        let a = vm("vm-1", "u1", "a");
        let known = known_of(std::slice::from_ref(&a));
        // The known record has a tag; the feed's VM has none: only tags differ, and the watch
        // keeps the known tags, so nothing changes.
        let d = delta(&[], &known, vec![Change::Enter(a)]);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn rename_add_and_remove() {
        let a = vm("vm-1", "u1", "a");
        let b = vm("vm-2", "u2", "b");
        let known = known_of(&[a.clone(), b.clone()]);
        let renamed = vm("vm-1", "u1", "a-renamed");
        let c = vm("vm-3", "u3", "c");
        let d = delta(
            &[],
            &known,
            vec![
                Change::Modify(renamed),
                Change::Enter(c.clone()),
                Change::Leave {
                    moref: "vm-2".into(),
                },
            ],
        );
        assert_eq!(d.added, vec![c]);
        assert_eq!(d.updated.len(), 1);
        assert_eq!(d.updated[0].0, "vm-1");
        assert_eq!(d.updated[0].1.name, "a-renamed");
        assert_eq!(d.updated[0].1.vmware_tags.len(), 1, "tags carried over");
        assert_eq!(d.removed, vec![("vm-2".to_string(), "u2".to_string())]);
    }

    #[test]
    fn enter_then_leave_of_an_unknown_vm_is_nothing() {
        let known = Known::new();
        let c = vm("vm-3", "u3", "c");
        let d = delta(
            &[],
            &known,
            vec![
                Change::Enter(c),
                Change::Leave {
                    moref: "vm-3".into(),
                },
            ],
        );
        assert!(d.is_empty());
    }
}
