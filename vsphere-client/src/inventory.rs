//! Virtual machine records and how they are read from property collector
//! answers, plus the locally built inventory paths.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use crate::soap::{MoRef, ObjectContent};
use crate::xml::Node;

/// VM properties fetched in one `RetrievePropertiesEx` (and watched).
///
/// Not the devices: `config.hardware.device` is three quarters of what vCenter sends for a VM
/// and only a backup needs it, so disks are read on request for chosen VMs
/// ([`DISK_PROPERTIES`], `Client::disks_for`).
pub(crate) const VM_PROPERTIES: &[&str] = &[
    "name",
    "config.instanceUuid",
    "config.uuid",
    "config.template",
    "config.changeTrackingEnabled",
    "guest.hostName",
    "guest.ipAddress",
    "runtime.powerState",
    "runtime.host",
    "parent",
    "parentVApp",
    "resourcePool",
    "datastore",
];

/// VM properties that [`Vm::disks`] is built from, read per chosen VM.
pub(crate) const DISK_PROPERTIES: &[&str] =
    &["config.hardware.device", "config.changeTrackingEnabled"];

/// Objects whose names make up paths, host names and datastore names.
pub(crate) const TOPOLOGY_TYPES: &[(&str, &[&str])] = &[
    ("Folder", &["name", "parent"]),
    ("Datacenter", &["name", "parent"]),
    (
        "VirtualApp",
        &["name", "parent", "parentFolder", "parentVApp"],
    ),
    ("ResourcePool", &["name", "parent"]),
    ("ClusterComputeResource", &["name", "parent"]),
    ("ComputeResource", &["name", "parent"]),
    ("HostSystem", &["name", "parent"]),
    ("Datastore", &["name", "parent"]),
];

/// Power state of a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum PowerState {
    PoweredOn,
    PoweredOff,
    Suspended,
    #[default]
    Unknown,
}

impl PowerState {
    fn parse(s: &str) -> Self {
        match s.trim() {
            "poweredOn" => PowerState::PoweredOn,
            "poweredOff" => PowerState::PoweredOff,
            "suspended" => PowerState::Suspended,
            _ => PowerState::Unknown,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PowerState::PoweredOn => "poweredOn",
            PowerState::PoweredOff => "poweredOff",
            PowerState::Suspended => "suspended",
            PowerState::Unknown => "unknown",
        }
    }
}

/// A virtual disk of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Disk {
    /// Device key, unique within the VM (e.g. 2000).
    pub key: i32,
    pub label: String,
    pub capacity_bytes: u64,
    /// Backing file, e.g. `[datastore1] web01/web01.vmdk`.
    pub file_name: String,
    /// Changed block tracking is enabled for the VM and this disk has a change id
    /// or the VM-level flag is set (the flag applies to every disk).
    pub cbt_enabled: bool,
    /// The disk's change id (`backing.changeId`) when changed-block tracking is on: a later
    /// `QueryChangedDiskAreas` with it reports what changed since.
    pub change_id: Option<String>,
    /// Key of the controller the disk hangs on (e.g. 1000 for the first SCSI controller).
    pub controller_key: i32,
    pub unit_number: Option<i32>,
    /// `backing.thinProvisioned`, when the server says.
    pub thin_provisioned: Option<bool>,
}

/// A virtual machine as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Vm {
    /// Managed object id, e.g. `vm-42`.
    pub moref: String,
    /// `config.instanceUuid`: the stable key of a VM.
    pub instance_uuid: Option<String>,
    /// `config.uuid` (BIOS UUID); clones may share it.
    pub bios_uuid: Option<String>,
    pub name: String,
    /// Inventory path, e.g. `/DC0/vm/Folder/Sub/web01`.
    pub path: String,
    pub template: bool,
    pub guest_hostname: Option<String>,
    pub guest_ip: Option<String>,
    pub power_state: PowerState,
    /// Name of the ESXi host the VM runs on.
    pub esxi_host: Option<String>,
    /// Names of the datastores the VM uses.
    pub datastores: Vec<String>,
    /// The VM's virtual disks. The listing and the watch leave this empty (reading devices is
    /// what makes a listing expensive); `Client::disks_for` and `Client::fill_disks` read them
    /// for the VMs that need them.
    pub disks: Vec<Disk>,
    /// Path of the resource pool, e.g. `/DC0/host/C0/Resources`.
    pub resource_pool: Option<String>,
    /// `config.changeTrackingEnabled`.
    pub change_tracking: bool,
}

/// Raw VM properties with references not yet resolved to names. Both the
/// listing and the watch feed property values in through [`RawVm::set`].
#[derive(Debug, Clone, Default)]
pub(crate) struct RawVm {
    pub moref: String,
    name: String,
    instance_uuid: Option<String>,
    bios_uuid: Option<String>,
    template: bool,
    change_tracking: bool,
    disks: Vec<RawDisk>,
    guest_hostname: Option<String>,
    guest_ip: Option<String>,
    power_state: PowerState,
    host: Option<String>,
    parent: Option<String>,
    parent_vapp: Option<String>,
    resource_pool: Option<String>,
    datastores: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct RawDisk {
    key: i32,
    label: String,
    capacity_bytes: u64,
    file_name: String,
    change_id: Option<String>,
    controller_key: i32,
    unit_number: Option<i32>,
    thin_provisioned: Option<bool>,
}

fn text(v: Option<&Node>) -> Option<String> {
    v.map(|n| n.text.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn moref_value(v: Option<&Node>) -> Option<String> {
    v.and_then(MoRef::from_node).map(|m| m.value)
}

impl RawVm {
    pub(crate) fn new(moref: &str) -> Self {
        RawVm {
            moref: moref.to_string(),
            ..RawVm::default()
        }
    }

    pub(crate) fn from_object(o: &ObjectContent) -> Self {
        let mut vm = RawVm::new(&o.obj.value);
        for (path, val) in &o.props {
            vm.set(path, Some(val));
        }
        vm
    }

    /// Applies one property value (`None` = unset / removed).
    pub(crate) fn set(&mut self, path: &str, v: Option<&Node>) {
        match path {
            "name" => self.name = text(v).map(|s| unescape(&s)).unwrap_or_default(),
            "config.instanceUuid" => self.instance_uuid = text(v),
            "config.uuid" => self.bios_uuid = text(v),
            "config.template" => self.template = text(v).as_deref() == Some("true"),
            "config.changeTrackingEnabled" => {
                self.change_tracking = text(v).as_deref() == Some("true")
            }
            "config.hardware.device" => self.disks = v.map(disks).unwrap_or_default(),
            "guest.hostName" => self.guest_hostname = text(v),
            "guest.ipAddress" => self.guest_ip = text(v),
            "runtime.powerState" => {
                self.power_state = text(v).map(|s| PowerState::parse(&s)).unwrap_or_default()
            }
            "runtime.host" => self.host = moref_value(v),
            "parent" => self.parent = moref_value(v),
            "parentVApp" => self.parent_vapp = moref_value(v),
            "resourcePool" => self.resource_pool = moref_value(v),
            "datastore" => {
                self.datastores = v
                    .map(|n| {
                        n.children
                            .iter()
                            .filter_map(MoRef::from_node)
                            .map(|m| m.value)
                            .collect()
                    })
                    .unwrap_or_default()
            }
            // `config` may arrive whole (or be unset) in updates.
            "config" => {
                let c = v;
                self.instance_uuid = text(c.and_then(|c| c.child("instanceUuid")));
                self.bios_uuid = text(c.and_then(|c| c.child("uuid")));
                self.template =
                    text(c.and_then(|c| c.child("template"))).as_deref() == Some("true");
                self.change_tracking = text(c.and_then(|c| c.child("changeTrackingEnabled")))
                    .as_deref()
                    == Some("true");
                self.disks = c
                    .and_then(|c| c.at(&["hardware"]))
                    .map(|h| disks_from_children(h.children_named("device")))
                    .unwrap_or_default();
            }
            _ => {}
        }
    }

    /// Whether the VM's placement refers to objects the topology does not know.
    pub(crate) fn needs_topology(&self, topo: &Topology) -> bool {
        let container = self.parent.as_ref().or(self.parent_vapp.as_ref());
        container.is_some_and(|c| topo.path(c).is_none())
            || self
                .resource_pool
                .as_ref()
                .is_some_and(|r| topo.path(r).is_none())
            || self
                .host
                .iter()
                .chain(self.datastores.iter())
                .any(|r| !topo.entities.contains_key(r))
    }

    pub(crate) fn resolve(&self, topo: &Topology) -> Vm {
        let container = self.parent.as_ref().or(self.parent_vapp.as_ref());
        let path = match container.and_then(|c| topo.path(c)) {
            Some(p) => format!("{p}/{}", self.name),
            None => format!("/{}", self.name),
        };
        Vm {
            moref: self.moref.clone(),
            instance_uuid: self.instance_uuid.clone(),
            bios_uuid: self.bios_uuid.clone(),
            name: self.name.clone(),
            path,
            template: self.template,
            guest_hostname: self.guest_hostname.clone(),
            guest_ip: self.guest_ip.clone(),
            power_state: self.power_state,
            esxi_host: self.host.as_ref().map(|h| topo.name(h)),
            datastores: self.datastores.iter().map(|d| topo.name(d)).collect(),
            disks: self.disks(),
            resource_pool: self
                .resource_pool
                .as_ref()
                .map(|r| topo.path(r).unwrap_or_else(|| topo.name(r))),
            change_tracking: self.change_tracking,
        }
    }
}

impl RawVm {
    /// The disks among the devices read (none unless `config.hardware.device` was).
    pub(crate) fn disks(&self) -> Vec<Disk> {
        to_disks(&self.disks, self.change_tracking)
    }
}

/// Public disk records from raw ones; `change_tracking` is the VM-level flag.
pub(crate) fn to_disks(raw: &[RawDisk], change_tracking: bool) -> Vec<Disk> {
    raw.iter()
        .map(|d| Disk {
            key: d.key,
            label: d.label.clone(),
            capacity_bytes: d.capacity_bytes,
            file_name: d.file_name.clone(),
            cbt_enabled: change_tracking || d.change_id.is_some(),
            change_id: d.change_id.clone(),
            controller_key: d.controller_key,
            unit_number: d.unit_number,
            thin_provisioned: d.thin_provisioned,
        })
        .collect()
}

pub(crate) fn disks(array: &Node) -> Vec<RawDisk> {
    disks_from_children(array.children.iter())
}

fn disks_from_children<'a>(devices: impl Iterator<Item = &'a Node>) -> Vec<RawDisk> {
    devices
        .filter(|d| d.xsi_type.as_deref() == Some("VirtualDisk"))
        .map(|d| {
            let capacity_bytes = d
                .child_text("capacityInBytes")
                .and_then(|s| s.trim().parse::<u64>().ok())
                .or_else(|| {
                    d.child_text("capacityInKB")
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(|kb| kb * 1024)
                })
                .unwrap_or(0);
            let backing = d.child("backing");
            RawDisk {
                key: d
                    .child_text("key")
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0),
                label: d
                    .at(&["deviceInfo", "label"])
                    .map(|l| l.text.trim().to_string())
                    .unwrap_or_default(),
                capacity_bytes,
                file_name: backing
                    .and_then(|b| b.child_text("fileName"))
                    .unwrap_or_default()
                    .to_string(),
                change_id: backing
                    .and_then(|b| b.child_text("changeId"))
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty()),
                controller_key: d
                    .child_text("controllerKey")
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0),
                unit_number: d
                    .child_text("unitNumber")
                    .and_then(|s| s.trim().parse().ok()),
                thin_provisioned: backing
                    .and_then(|b| b.child_text("thinProvisioned"))
                    .map(|t| t.trim() == "true"),
            }
        })
        .collect()
}

/// Unescapes an inventory name (`%2f` → `/`, `%5c` → `\`, `%25` → `%`).
pub fn unescape(name: &str) -> String {
    if name.contains('%') {
        percent_decode_str(name).decode_utf8_lossy().into_owned()
    } else {
        name.to_string()
    }
}

#[derive(Debug, Clone)]
struct Entity {
    kind: String,
    name: String,
    parent: Option<String>,
}

/// Names and parents of folders, datacenters, vApps, pools, clusters, hosts
/// and datastores: everything needed to build paths without a call per VM.
#[derive(Debug, Default, Clone)]
pub(crate) struct Topology {
    entities: HashMap<String, Entity>,
}

impl Topology {
    pub(crate) fn from_objects(objects: impl IntoIterator<Item = ObjectContent>) -> Self {
        let mut topo = Topology::default();
        for o in objects {
            topo.insert(&o);
        }
        topo
    }

    /// Adds (or replaces) one folder, datacenter, vApp, pool, host or datastore.
    pub(crate) fn insert(&mut self, o: &ObjectContent) {
        let name = text(o.get("name"))
            .map(|s| unescape(&s))
            .unwrap_or_default();
        // A vApp sits in a VM folder (parentFolder) or in another vApp.
        let parent = moref_value(o.get("parentFolder"))
            .or_else(|| moref_value(o.get("parentVApp")))
            .or_else(|| moref_value(o.get("parent")));
        self.entities.insert(
            o.obj.value.clone(),
            Entity {
                kind: o.obj.kind.clone(),
                name,
                parent,
            },
        );
    }

    fn compute_path(&self, id: &str) -> Option<String> {
        let mut parts = Vec::new();
        let mut cur = Some(id.to_string());
        let mut guard = 0;
        while let Some(c) = cur {
            let e = self.entities.get(&c)?;
            // The root folder ("Datacenters") has no parent and is not part of paths.
            if e.parent.is_none() && e.kind == "Folder" {
                break;
            }
            parts.push(e.name.as_str());
            cur = e.parent.clone();
            guard += 1;
            if guard > 256 {
                return None; // a cycle: refuse rather than loop
            }
        }
        parts.reverse();
        Some(format!("/{}", parts.join("/")))
    }

    /// Inventory path of a container whose ancestors are all known.
    pub(crate) fn path(&self, id: &str) -> Option<String> {
        self.compute_path(id)
    }

    /// Inventory path of the datacenter that holds `id` (a folder, pool or datastore), without
    /// the leading `/` (the `dcPath` of datastore URLs), e.g. `DC0` or `Folder/DC0`.
    pub(crate) fn datacenter_path(&self, id: &str) -> Option<String> {
        let mut cur = Some(id.to_string());
        for _ in 0..256 {
            let c = cur?;
            let e = self.entities.get(&c)?;
            if e.kind == "Datacenter" {
                return self.path(&c).map(|p| p.trim_start_matches('/').to_string());
            }
            cur = e.parent.clone();
        }
        None
    }

    /// Objects of `kind` whose name or inventory path (with or without the leading `/`) is
    /// `name_or_path`, with their paths.
    pub(crate) fn locate(&self, kind: &str, name_or_path: &str) -> Vec<(String, String)> {
        let want = name_or_path.trim();
        let as_path = format!("/{}", want.trim_start_matches('/'));
        let mut out: Vec<(String, String)> = self
            .entities
            .iter()
            .filter(|(_, e)| e.kind == kind)
            .filter_map(|(id, e)| {
                let path = self.path(id)?;
                (e.name == want || path == as_path).then(|| (id.clone(), path))
            })
            .collect();
        out.sort();
        out
    }

    /// Name of a known object, or its id when unknown.
    pub(crate) fn name(&self, id: &str) -> String {
        self.entities
            .get(id)
            .map(|e| e.name.clone())
            .unwrap_or_else(|| id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, id: &str, name: &str, parent: Option<(&str, &str)>) -> ObjectContent {
        let mut props = vec![(
            "name".to_string(),
            Node {
                name: "val".into(),
                text: name.into(),
                ..Node::default()
            },
        )];
        if let Some((pk, pv)) = parent {
            props.push((
                "parent".to_string(),
                Node {
                    name: "val".into(),
                    type_attr: Some(pk.into()),
                    text: pv.into(),
                    ..Node::default()
                },
            ));
        }
        ObjectContent {
            obj: MoRef::new(kind, id),
            props,
        }
    }

    #[test]
    fn paths_are_built_locally_and_unescaped() {
        let topo = Topology::from_objects(vec![
            obj("Folder", "group-d1", "Datacenters", None),
            obj("Datacenter", "dc-1", "DC0", Some(("Folder", "group-d1"))),
            obj("Folder", "f-vm", "vm", Some(("Datacenter", "dc-1"))),
            obj("Folder", "f-a", "a%2fb", Some(("Folder", "f-vm"))),
            obj("HostSystem", "host-1", "esx1.local", None),
        ]);
        assert_eq!(topo.path("f-a").as_deref(), Some("/DC0/vm/a/b"));
        let mut vm = RawVm::new("vm-1");
        vm.name = "web%2501".into();
        vm.parent = Some("f-a".into());
        vm.host = Some("host-1".into());
        let v = vm.resolve(&topo);
        assert_eq!(v.path, "/DC0/vm/a/b/web%2501");
        assert_eq!(v.esxi_host.as_deref(), Some("esx1.local"));
        assert_eq!(unescape("web%2501"), "web%01");
    }
}
