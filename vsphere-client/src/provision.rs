//! Creating a VM for a restore (`CreateVM_Task`), finding where to put it, powering it on.

use std::fmt::Write as _;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::hardware::Controller;
use crate::soap::{self, MoRef};
use crate::xml::escape;

/// A VM to create: its placement, hardware, and empty disks of given sizes. Disks name their
/// controller by the key it has in `controllers` (the keys of the VM that was backed up).
#[derive(Debug, Clone)]
pub struct NewVm {
    pub name: String,
    /// The VM folder it goes into.
    pub folder: MoRef,
    /// The resource pool it runs in.
    pub pool: MoRef,
    /// A host, or `None` to let vCenter choose one in the pool's cluster.
    pub host: Option<MoRef>,
    /// Name of the datastore for its files and disks.
    pub datastore: String,
    pub guest_id: String,
    pub num_cpus: u32,
    pub memory_mb: u64,
    /// The controllers the disks hang on (created with these keys and bus numbers).
    pub controllers: Vec<Controller>,
    pub disks: Vec<NewDisk>,
}

/// An empty disk of a new VM.
#[derive(Debug, Clone)]
pub struct NewDisk {
    pub controller_key: i32,
    pub unit_number: i32,
    pub capacity_bytes: u64,
    pub thin_provisioned: bool,
}

impl Client {
    /// The object at an inventory path such as `DC0/vm/Restored` or `DC0/host/C0/Resources`
    /// (`SearchIndex.FindByInventoryPath`), or `None`.
    pub async fn find_by_inventory_path(&self, path: &str) -> Result<Option<MoRef>> {
        let index = self
            .inner
            .sc
            .search_index
            .clone()
            .ok_or_else(|| Error::malformed("the service content names no SearchIndex"))?;
        let path = path.trim().trim_matches('/');
        let resp = self
            .call(&soap::call(
                "FindByInventoryPath",
                &index,
                &soap::text_arg("inventoryPath", path),
            ))
            .await?;
        Ok(resp.child("returnval").and_then(MoRef::from_node))
    }

    /// The VM whose `config.instanceUuid` is `uuid` (`SearchIndex.FindByUuid`), or `None`.
    pub async fn find_vm_by_instance_uuid(&self, uuid: &str) -> Result<Option<String>> {
        let index = self
            .inner
            .sc
            .search_index
            .clone()
            .ok_or_else(|| Error::malformed("the service content names no SearchIndex"))?;
        let resp = self
            .call(&soap::call(
                "FindByUuid",
                &index,
                &format!(
                    "{}<vmSearch>true</vmSearch><instanceUuid>true</instanceUuid>",
                    soap::text_arg("uuid", uuid)
                ),
            ))
            .await?;
        Ok(resp
            .child("returnval")
            .and_then(MoRef::from_node)
            .map(|m| m.value))
    }

    /// Finds an object of `kind` (`HostSystem`, `ClusterComputeResource`, `ResourcePool`,
    /// `Folder`, `Datastore`, `Datacenter`) by name or inventory path. Returns the object and
    /// its datacenter's `dcPath`; an error names the problem when nothing or more than one
    /// object matches.
    pub async fn locate(&self, kind: &str, name_or_path: &str) -> Result<(MoRef, String)> {
        let i = &self.inner;
        let topo = i
            .session
            .with_session(&i.t, &i.sc, |tok| async move { self.topology(&tok).await })
            .await?;
        let found = topo.locate(kind, name_or_path);
        match found.as_slice() {
            [(id, _)] => {
                let dc = topo.datacenter_path(id).unwrap_or_default();
                Ok((MoRef::new(kind, id.clone()), dc))
            }
            [] => Err(Error::NotFound {
                object: format!("{kind} {name_or_path}"),
                message: "no such object in the inventory".into(),
            }),
            many => Err(Error::invalid(format!(
                "{kind} {name_or_path:?} is ambiguous: {}; give its inventory path",
                many.iter()
                    .map(|(_, p)| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// One reference-valued property of an object (`vmFolder` of a datacenter,
    /// `resourcePool` of a cluster), or `None` when unset.
    pub async fn reference_property(&self, obj: &MoRef, path: &str) -> Result<Option<MoRef>> {
        Ok(self
            .properties(obj, &[path])
            .await?
            .and_then(|o| o.get(path).and_then(MoRef::from_node)))
    }

    /// Creates a powered-off VM and returns its moref.
    pub async fn create_vm(&self, vm: &NewVm) -> Result<String> {
        let mut args = format!(
            "<config><name>{}</name><guestId>{}</guestId><files><vmPathName>[{}]</vmPathName></files><numCPUs>{}</numCPUs><memoryMB>{}</memoryMB>",
            escape(&vm.name),
            escape(if vm.guest_id.is_empty() { "otherGuest64" } else { &vm.guest_id }),
            escape(&vm.datastore),
            vm.num_cpus.max(1),
            vm.memory_mb.max(4),
        );
        // New devices get negative keys, which vCenter replaces; disks refer to their
        // controller by its new key.
        let temp_key = |key: i32| -> i32 {
            vm.controllers
                .iter()
                .position(|c| c.key == key)
                .map_or(key, |i| -1000 - i as i32)
        };
        for c in &vm.controllers {
            let _ = write!(
                args,
                r#"<deviceChange><operation>add</operation><device xsi:type="{}"><key>{}</key><busNumber>{}</busNumber>{}</device></deviceChange>"#,
                escape(&c.kind),
                temp_key(c.key),
                c.bus_number,
                if c.kind.contains("SCSI") || c.kind.contains("Logic") {
                    "<sharedBus>noSharing</sharedBus>"
                } else {
                    ""
                }
            );
        }
        for (i, d) in vm.disks.iter().enumerate() {
            let _ = write!(
                args,
                r#"<deviceChange><operation>add</operation><fileOperation>create</fileOperation><device xsi:type="VirtualDisk"><key>{}</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[{}]</fileName><diskMode>persistent</diskMode><thinProvisioned>{}</thinProvisioned></backing><controllerKey>{}</controllerKey><unitNumber>{}</unitNumber><capacityInKB>{}</capacityInKB><capacityInBytes>{}</capacityInBytes></device></deviceChange>"#,
                -100 - i as i32,
                escape(&vm.datastore),
                d.thin_provisioned,
                temp_key(d.controller_key),
                d.unit_number,
                d.capacity_bytes.div_ceil(1024),
                d.capacity_bytes,
            );
        }
        args.push_str("</config>");
        args.push_str(&vm.pool.xml("pool"));
        if let Some(h) = &vm.host {
            args.push_str(&h.xml("host"));
        }
        let result = self.run_task("CreateVM_Task", &vm.folder, &args).await?;
        let created = MoRef::from_node(&result)
            .ok_or_else(|| Error::malformed("CreateVM_Task succeeded without a VM"))?;
        tracing::info!(vm = %created.value, name = %vm.name, "VM created");
        Ok(created.value)
    }

    /// Deletes a powered-off VM and its files (a restore that could not finish).
    pub async fn destroy_vm(&self, vm: &str) -> Result<()> {
        self.run_task("Destroy_Task", &MoRef::new("VirtualMachine", vm), "")
            .await
            .map(|_| ())
    }

    pub async fn power_on(&self, vm: &str) -> Result<()> {
        self.run_task("PowerOnVM_Task", &MoRef::new("VirtualMachine", vm), "")
            .await
            .map(|_| ())
    }
}
