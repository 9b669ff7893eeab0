//! From vCenter's view of a VM to the record the cloud stores: identity, path, host, VMware
//! tags and the AWS tags the property mappings derive from them. Pure functions, no I/O.

use std::collections::BTreeMap;

use bgw_protocol::config::PropertyMapping;
use bgw_protocol::metadata::{AwsTag, VmRecord, VmwareTag};
use vsphere_client::{AttachedTag, Vm};

/// Why a VM could not be synced, or synced without some of its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// vCenter gave no `config.instanceUuid`: the VM has no stable identity and is skipped.
    NoInstanceUuid { vm: String },
    /// Two mapped VMware tags of one VM ask for different values of the same AWS tag key.
    ConflictingMapping {
        vm: String,
        key: String,
        kept: String,
        dropped: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NoInstanceUuid { vm } => {
                write!(f, "VM {vm}: no instance UUID, not synced")
            }
            Problem::ConflictingMapping {
                vm,
                key,
                kept,
                dropped,
            } => write!(
                f,
                "VM {vm}: tag {key} mapped to both {kept:?} and {dropped:?}; kept {kept:?}"
            ),
        }
    }
}

/// Builds the cloud record of `vm` with the tags attached to it. `None` (with a problem) when
/// the VM has no instance UUID.
pub fn vm_record(
    vm: &Vm,
    tags: &[AttachedTag],
    mappings: &[PropertyMapping],
    problems: &mut Vec<Problem>,
) -> Option<VmRecord> {
    let Some(instance_uuid) = vm.instance_uuid.clone().filter(|u| !u.is_empty()) else {
        problems.push(Problem::NoInstanceUuid {
            vm: format!("{} ({})", vm.path, vm.moref),
        });
        return None;
    };
    let vmware_tags: Vec<VmwareTag> = tags
        .iter()
        .map(|t| VmwareTag {
            category: t.category.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
        })
        .collect();
    let aws_tags = map_tags(&vm.path, &vmware_tags, mappings, problems);
    Some(VmRecord {
        instance_uuid,
        name: vm.name.clone(),
        path: vm.path.clone(),
        host_name: vm.esxi_host.clone().unwrap_or_default(),
        vmware_tags,
        aws_tags,
    })
}

/// Applies the property mappings (VMware category + tag name → AWS tag key + value) to the
/// tags of one VM. Names compare exactly, as vCenter shows them. When two mappings give one
/// key different values, the first mapping in the configured order wins and the conflict is
/// reported.
pub fn map_tags(
    vm: &str,
    tags: &[VmwareTag],
    mappings: &[PropertyMapping],
    problems: &mut Vec<Problem>,
) -> Vec<AwsTag> {
    let mut out: BTreeMap<&str, &str> = BTreeMap::new();
    for m in mappings {
        let attached = tags
            .iter()
            .any(|t| t.category == m.vmware_category && t.name == m.vmware_tag_name);
        if !attached {
            continue;
        }
        match out.get(m.aws_tag_key.as_str()) {
            None => {
                out.insert(&m.aws_tag_key, &m.aws_tag_value);
            }
            Some(kept) if *kept == m.aws_tag_value => {}
            Some(kept) => problems.push(Problem::ConflictingMapping {
                vm: vm.to_string(),
                key: m.aws_tag_key.clone(),
                kept: kept.to_string(),
                dropped: m.aws_tag_value.clone(),
            }),
        }
    }
    out.into_iter()
        .map(|(k, v)| AwsTag {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect()
}

/// The message of a `PARTIALLY_FAILED` sync: a count and the first few problems, short
/// enough for `GetHypervisor` and a log line.
pub fn summarize(problems: &[Problem], extra: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut lines: Vec<String> = extra.to_vec();
    lines.extend(problems.iter().take(SHOWN).map(Problem::to_string));
    let mut message = lines.join("; ");
    if problems.len() > SHOWN {
        message.push_str(&format!("; and {} more", problems.len() - SHOWN));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(cat: &str, tag: &str, key: &str, value: &str) -> PropertyMapping {
        PropertyMapping {
            vmware_category: cat.into(),
            vmware_tag_name: tag.into(),
            aws_tag_key: key.into(),
            aws_tag_value: value.into(),
        }
    }

    fn tag(cat: &str, name: &str) -> VmwareTag {
        VmwareTag {
            category: cat.into(),
            name: name.into(),
            description: String::new(),
        }
    }

    fn vm(uuid: Option<&str>) -> Vm {
        Vm {
            moref: "vm-42".into(),
            instance_uuid: uuid.map(str::to_string),
            bios_uuid: None,
            name: "web01".into(),
            path: "/DC0/vm/prod/web01".into(),
            template: false,
            guest_hostname: None,
            guest_ip: None,
            power_state: vsphere_client::PowerState::PoweredOn,
            esxi_host: Some("esx-1.example.com".into()),
            datastores: vec![],
            disks: vec![],
            resource_pool: None,
            change_tracking: false,
        }
    }

    #[test]
    fn mappings_apply_only_to_attached_tags() {
        let maps = [
            mapping("tier", "gold", "backup", "daily"),
            mapping("tier", "silver", "backup", "weekly"),
            mapping("env", "prod", "env", "production"),
        ];
        let mut problems = vec![];
        let tags = map_tags(
            "web01",
            &[tag("tier", "gold"), tag("owner", "alice")],
            &maps,
            &mut problems,
        );
        assert_eq!(
            tags,
            vec![AwsTag {
                key: "backup".into(),
                value: "daily".into()
            }]
        );
        assert!(problems.is_empty());
    }

    #[test]
    fn conflicting_mappings_keep_the_first_and_report() {
        let maps = [
            mapping("tier", "gold", "backup", "daily"),
            mapping("tier", "silver", "backup", "weekly"),
        ];
        let mut problems = vec![];
        let tags = map_tags(
            "web01",
            &[tag("tier", "gold"), tag("tier", "silver")],
            &maps,
            &mut problems,
        );
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].value, "daily");
        assert_eq!(problems.len(), 1);
        assert!(summarize(&problems, &[]).contains("weekly"));
    }

    #[test]
    fn record_keeps_identity_path_and_host() {
        let mut problems = vec![];
        let attached = vec![AttachedTag {
            category: "env".into(),
            name: "prod".into(),
            description: "production".into(),
        }];
        let maps = [mapping("env", "prod", "env", "production")];
        let r = vm_record(&vm(Some("5001-aa")), &attached, &maps, &mut problems).unwrap();
        assert_eq!(r.instance_uuid, "5001-aa");
        assert_eq!(r.path, "/DC0/vm/prod/web01");
        assert_eq!(r.host_name, "esx-1.example.com");
        assert_eq!(r.vmware_tags[0].category, "env");
        assert_eq!(r.aws_tags[0].key, "env");
        assert!(problems.is_empty());
    }

    #[test]
    fn vm_without_instance_uuid_is_reported_not_synced() {
        let mut problems = vec![];
        assert!(vm_record(&vm(None), &[], &[], &mut problems).is_none());
        assert!(summarize(&problems, &[]).contains("/DC0/vm/prod/web01 (vm-42)"));
    }

    #[test]
    fn summary_is_bounded() {
        let problems: Vec<Problem> = (0..25)
            .map(|i| Problem::NoInstanceUuid {
                vm: format!("vm{i}"),
            })
            .collect();
        let s = summarize(&problems, &["tags unavailable".into()]);
        assert!(s.starts_with("tags unavailable; VM vm0"));
        assert!(s.ends_with("and 15 more"), "{s}");
    }
}
