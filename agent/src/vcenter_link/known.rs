//! What the cloud was last sent about each VM, kept small: the change watch compares new
//! records against it and carries each VM's tags over (the change feed does not carry tags).
//!
//! A VM costs its moref, its instance UUID, a 64-bit digest of the uploaded record and a
//! short list of indices into a table of distinct tags: about 150 bytes, where a full record
//! with three tags is over a kilobyte.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use bgw_protocol::metadata::{VmRecord, VmwareTag};
use vsphere_client::AttachedTag;

#[derive(Debug, Default)]
pub struct Known {
    vms: HashMap<Box<str>, KnownVm>,
    tags: TagTable,
}

#[derive(Debug)]
struct KnownVm {
    instance_uuid: Box<str>,
    digest: u64,
    tags: Box<[u32]>,
}

/// Each distinct VMware tag once; VMs refer to it by index.
#[derive(Debug, Default)]
struct TagTable {
    all: Vec<VmwareTag>,
    index: HashMap<VmwareTag, u32>,
}

impl TagTable {
    fn intern(&mut self, tag: &VmwareTag) -> u32 {
        if let Some(&i) = self.index.get(tag) {
            return i;
        }
        let i = self.all.len() as u32;
        self.all.push(tag.clone());
        self.index.insert(tag.clone(), i);
        i
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
            tags: TagTable::default(),
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
        let tags = record
            .vmware_tags
            .iter()
            .map(|t| self.tags.intern(t))
            .collect();
        self.vms.insert(
            moref.into(),
            KnownVm {
                instance_uuid: record.instance_uuid.as_str().into(),
                digest: digest(record),
                tags,
            },
        );
    }

    /// Forgets the VM `moref`; its instance UUID if it was known.
    pub fn remove(&mut self, moref: &str) -> Option<String> {
        self.vms.remove(moref).map(|v| v.instance_uuid.into())
    }

    pub fn instance_uuid(&self, moref: &str) -> Option<&str> {
        self.vms.get(moref).map(|v| &*v.instance_uuid)
    }

    /// The VMware tags last sent for `moref` (empty if unknown).
    pub fn tags(&self, moref: &str) -> Vec<AttachedTag> {
        self.vms
            .get(moref)
            .map(|v| {
                v.tags
                    .iter()
                    .map(|&i| {
                        let t = &self.tags.all[i as usize];
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
        let key = |t: &AttachedTag| (t.category.clone(), t.name.clone(), t.description.clone());
        let mut now: Vec<_> = tags.iter().map(key).collect();
        let mut before: Vec<_> = self.tags(moref).iter().map(key).collect();
        now.sort();
        before.sort();
        vm.tags.len() == tags.len() && now == before
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
        assert_eq!(k.instance_uuid("vm-1"), Some("u1"));
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
}
