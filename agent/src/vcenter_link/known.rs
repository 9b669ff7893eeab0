//! What the cloud was last sent about each VM, kept small: the change watch compares new
//! records against it and carries each VM's tags over (the change feed does not carry tags).
//!
//! A VM costs one map entry of about 64 bytes and no allocation of its own: the moref inline,
//! the instance UUID as 16 bytes, a 64-bit digest of the uploaded record, and the index of its
//! set of tags in a table of distinct tag sets (a few hundred VMs usually share each set). A
//! full record with three tags is over a kilobyte in a dozen allocations. Keeping the entries
//! free of small allocations also matters because the map is filled during a sync, between the
//! sync's short-lived allocations: scattered long-lived ones would keep that memory pinned.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use bgw_protocol::metadata::{VmRecord, VmwareTag};
use compact_str::CompactString;
use uuid::Uuid;
use vsphere_client::AttachedTag;

#[derive(Debug, Default)]
pub struct Known {
    vms: HashMap<CompactString, KnownVm>,
    tags: Interner<VmwareTag>,
    tag_sets: Interner<Box<[u32]>>,
}

#[derive(Debug)]
struct KnownVm {
    instance_uuid: InstanceUuid,
    digest: u64,
    /// Index into `tag_sets`.
    tag_set: u32,
}

/// `config.instanceUuid`: a UUID in practice, kept as 16 bytes when its text round-trips.
#[derive(Debug)]
enum InstanceUuid {
    Uuid(Uuid),
    Other(CompactString),
}

impl InstanceUuid {
    fn new(text: &str) -> Self {
        match Uuid::parse_str(text) {
            Ok(u) if u.hyphenated().to_string() == text => InstanceUuid::Uuid(u),
            _ => InstanceUuid::Other(text.into()),
        }
    }

    fn text(&self) -> String {
        match self {
            InstanceUuid::Uuid(u) => u.hyphenated().to_string(),
            InstanceUuid::Other(s) => s.to_string(),
        }
    }
}

/// Each distinct value once; users refer to it by index.
#[derive(Debug)]
struct Interner<T> {
    all: Vec<T>,
    index: HashMap<T, u32>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            all: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T: Hash + Eq + Clone> Interner<T> {
    fn intern(&mut self, value: T) -> u32 {
        if let Some(&i) = self.index.get(&value) {
            return i;
        }
        let i = self.all.len() as u32;
        self.all.push(value.clone());
        self.index.insert(value, i);
        i
    }

    fn get(&self, i: u32) -> &T {
        &self.all[i as usize]
    }
}

fn digest(record: &VmRecord) -> u64 {
    let mut h = DefaultHasher::new();
    record.hash(&mut h);
    h.finish()
}

impl Known {
    pub fn new() -> Self {
        Known::default()
    }

    pub fn with_capacity(vms: usize) -> Self {
        Known {
            vms: HashMap::with_capacity(vms),
            ..Known::default()
        }
    }

    pub fn len(&self) -> usize {
        self.vms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vms.is_empty()
    }

    /// Records what was sent for the VM `moref`.
    pub fn insert(&mut self, moref: &str, record: &VmRecord) {
        let tags: Box<[u32]> = record
            .vmware_tags
            .iter()
            .map(|t| self.tags.intern(t.clone()))
            .collect();
        let tag_set = self.tag_sets.intern(tags);
        self.vms.insert(
            moref.into(),
            KnownVm {
                instance_uuid: InstanceUuid::new(&record.instance_uuid),
                digest: digest(record),
                tag_set,
            },
        );
    }

    /// Forgets the VM `moref`; its instance UUID if it was known.
    pub fn remove(&mut self, moref: &str) -> Option<String> {
        self.vms.remove(moref).map(|v| v.instance_uuid.text())
    }

    pub fn instance_uuid(&self, moref: &str) -> Option<String> {
        self.vms.get(moref).map(|v| v.instance_uuid.text())
    }

    /// The VMware tags last sent for `moref` (empty if unknown).
    pub fn tags(&self, moref: &str) -> Vec<AttachedTag> {
        self.vms
            .get(moref)
            .map(|v| {
                self.tag_sets
                    .get(v.tag_set)
                    .iter()
                    .map(|&i| {
                        let t = self.tags.get(i);
                        AttachedTag {
                            category: t.category.clone(),
                            name: t.name.clone(),
                            description: t.description.clone(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The morefs of all VMs.
    pub fn morefs(&self) -> Vec<String> {
        self.vms.keys().map(|m| m.to_string()).collect()
    }

    /// Whether `tags` (in any order) are the VMware tags last sent for `moref`.
    pub fn same_tags(&self, moref: &str, tags: &[AttachedTag]) -> bool {
        let Some(vm) = self.vms.get(moref) else {
            return false;
        };
        let mut before: Vec<(&str, &str, &str)> = self
            .tag_sets
            .get(vm.tag_set)
            .iter()
            .map(|&i| {
                let t = self.tags.get(i);
                (t.category.as_str(), t.name.as_str(), t.description.as_str())
            })
            .collect();
        let mut now: Vec<(&str, &str, &str)> = tags
            .iter()
            .map(|t| (t.category.as_str(), t.name.as_str(), t.description.as_str()))
            .collect();
        before.sort_unstable();
        now.sort_unstable();
        before == now
    }

    /// Whether `record` is what was last sent for `moref`.
    pub fn is_current(&self, moref: &str, record: &VmRecord) -> bool {
        self.vms
            .get(moref)
            .is_some_and(|v| v.digest == digest(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(uuid: &str, name: &str, tags: &[(&str, &str)]) -> VmRecord {
        VmRecord {
            instance_uuid: uuid.into(),
            name: name.into(),
            path: format!("/DC0/vm/{name}"),
            host_name: "esx".into(),
            vmware_tags: tags
                .iter()
                .map(|(c, n)| VmwareTag {
                    category: (*c).into(),
                    name: (*n).into(),
                    description: String::new(),
                })
                .collect(),
            aws_tags: vec![],
        }
    }

    #[test]
    fn remembers_identity_tags_and_sameness() {
        let mut k = Known::new();
        let a = record("u1", "a", &[("env", "prod"), ("tier", "gold")]);
        let b = record("u2", "b", &[("env", "dev"), ("tier", "gold")]);
        k.insert("vm-1", &a);
        k.insert("vm-2", &b);
        assert_eq!(k.len(), 2);
        assert_eq!(k.tags.all.len(), 3, "tier/gold is stored once");
        assert_eq!(k.instance_uuid("vm-1").as_deref(), Some("u1"));
        let tags = k.tags("vm-2");
        assert_eq!(tags.len(), 2);
        assert_eq!(
            (tags[0].category.as_str(), tags[0].name.as_str()),
            ("env", "dev")
        );
        assert!(k.is_current("vm-1", &a));
        assert!(!k.is_current(
            "vm-1",
            &record("u1", "a-renamed", &[("env", "prod"), ("tier", "gold")])
        ));
        assert!(!k.is_current("vm-1", &record("u1", "a", &[("env", "prod")])));
        assert!(!k.is_current("vm-3", &a));
        let mut swapped = k.tags("vm-2");
        swapped.reverse();
        assert!(k.same_tags("vm-2", &swapped), "order does not matter");
        assert!(!k.same_tags("vm-2", &swapped[..1]));
        assert!(!k.same_tags("vm-1", &swapped));
        assert_eq!(k.remove("vm-1").as_deref(), Some("u1"));
        assert!(k.tags("vm-1").is_empty());
        assert_eq!(k.remove("vm-1"), None);
    }

    #[test]
    fn instance_uuids_come_back_exactly_as_given() {
        let mut k = Known::new();
        for (moref, uuid) in [
            ("vm-1", "420c6ef6-eef0-03ff-20fb-1e6c4e3f5a0d"),
            ("vm-2", "420C6EF6-EEF0-03FF-20FB-1E6C4E3F5A0D"),
            ("vm-3", "not-a-uuid"),
        ] {
            k.insert(moref, &record(uuid, moref, &[]));
            assert_eq!(k.instance_uuid(moref).as_deref(), Some(uuid));
        }
        assert!(matches!(k.vms["vm-1"].instance_uuid, InstanceUuid::Uuid(_)));
    }
}
