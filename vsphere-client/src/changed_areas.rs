//! Changed-block tracking: `QueryChangedDiskAreas` tells which areas of a disk changed since
//! a change id (or, with `*`, which areas hold data at all).
//!
//! One answer covers `startOffset .. startOffset + length` of the disk, which may be less than
//! the whole disk: [`Client::changed_disk_areas`] asks again from where the last answer ended
//! until the disk is covered, or changes past the first answer would be silently missed.

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::soap::{self, MoRef};

/// The change id meaning "since the disk was created": the allocated areas.
pub const ALL_ALLOCATED: &str = "*";

/// An area of a disk, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskArea {
    pub start: u64,
    pub length: u64,
}

impl DiskArea {
    pub fn end(&self) -> u64 {
        self.start + self.length
    }
}

/// Most calls made for one disk before giving up on a server that does not advance.
const MAX_CALLS: usize = 100_000;

impl Client {
    /// The areas of disk `device_key` of `vm`, as of `snapshot`, that changed since
    /// `change_id` ([`ALL_ALLOCATED`] for every allocated area). Sorted, merged where they
    /// touch, and cut at `capacity`.
    pub async fn changed_disk_areas(
        &self,
        vm: &str,
        snapshot: &MoRef,
        device_key: i32,
        capacity: u64,
        change_id: &str,
    ) -> Result<Vec<DiskArea>> {
        let this = MoRef::new("VirtualMachine", vm);
        let mut areas: Vec<DiskArea> = Vec::new();
        let mut offset = 0u64;
        let mut calls = 0;
        while offset < capacity {
            calls += 1;
            if calls > MAX_CALLS {
                return Err(Error::malformed(format!(
                    "QueryChangedDiskAreas for disk {device_key} of {vm} does not advance past {offset}"
                )));
            }
            let args = format!(
                "{}<deviceKey>{device_key}</deviceKey><startOffset>{offset}</startOffset>{}",
                snapshot.xml("snapshot"),
                soap::text_arg("changeId", change_id)
            );
            let resp = self
                .call(&soap::call("QueryChangedDiskAreas", &this, &args))
                .await?;
            let rv = resp
                .child("returnval")
                .ok_or_else(|| Error::malformed("QueryChangedDiskAreas without returnval"))?;
            let num = |n: &crate::xml::Node, name: &str| -> Result<u64> {
                n.child_text(name)
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| {
                        Error::malformed(format!("QueryChangedDiskAreas answer without {name}"))
                    })
            };
            let start = num(rv, "startOffset")?;
            let length = num(rv, "length")?;
            for a in rv.children_named("changedArea") {
                let area = DiskArea {
                    start: num(a, "start")?,
                    length: num(a, "length")?,
                };
                if area.length > 0 {
                    areas.push(area);
                }
            }
            let next = start.saturating_add(length);
            if next <= offset {
                return Err(Error::malformed(format!(
                    "QueryChangedDiskAreas for disk {device_key} of {vm} answered up to {next}, asked from {offset}"
                )));
            }
            offset = next;
        }
        Ok(normalise(areas, capacity))
    }
}

/// Sorts areas, merges overlapping or touching ones, and cuts them at `capacity`.
pub fn normalise(mut areas: Vec<DiskArea>, capacity: u64) -> Vec<DiskArea> {
    areas.sort_by_key(|a| a.start);
    let mut out: Vec<DiskArea> = Vec::with_capacity(areas.len());
    for a in areas {
        let end = a.end().min(capacity);
        if a.start >= end {
            continue;
        }
        match out.last_mut() {
            Some(last) if a.start <= last.end() => {
                last.length = last.length.max(end - last.start);
            }
            _ => out.push(DiskArea {
                start: a.start,
                length: end - a.start,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_sorted_merged_and_cut() {
        let a = |start, length| DiskArea { start, length };
        assert_eq!(
            normalise(
                vec![a(100, 50), a(0, 10), a(10, 5), a(120, 100), a(900, 500)],
                1000
            ),
            vec![a(0, 15), a(100, 120), a(900, 100)]
        );
        assert_eq!(normalise(vec![a(2000, 10)], 1000), vec![]);
    }
}
