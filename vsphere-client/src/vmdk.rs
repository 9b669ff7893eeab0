//! VMDK descriptors: which files hold a disk's data, and a descriptor for a restored disk.
//!
//! A flat disk on a datastore is two files: the small text descriptor `NAME.vmdk` that
//! vSphere shows as the disk's backing, and the extent it names, usually `NAME-flat.vmdk`,
//! whose bytes are the disk's bytes. Sparse formats (delta, SE sparse, stream-optimized)
//! need a different reader and are refused with a clear error.

use crate::error::{Error, Result};

/// Bytes per sector in extent sizes.
pub const SECTOR: u64 = 512;

/// Largest descriptor read; a real one is well under 2 KiB.
pub const MAX_DESCRIPTOR_BYTES: u64 = 64 * 1024;

/// One extent line: `RW 2097152 VMFS "web01-flat.vmdk"` or `RW 4192256 FLAT "x-f001.vmdk" 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    /// Size in sectors.
    pub sectors: u64,
    /// `FLAT`, `VMFS`, `SPARSE`, `VMFSSPARSE`, `SESPARSE`, `ZERO`, …
    pub kind: String,
    /// The extent's file, relative to the descriptor's directory (absent for `ZERO`).
    pub file: Option<String>,
    /// Where the extent's data starts in its file, in sectors.
    pub offset_sectors: u64,
}

impl Extent {
    /// Whether the extent's bytes are the disk's bytes (a plain file or nothing at all).
    pub fn is_flat(&self) -> bool {
        matches!(self.kind.as_str(), "FLAT" | "VMFS" | "ZERO")
    }
}

/// A parsed descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub create_type: String,
    pub extents: Vec<Extent>,
    /// `parentFileNameHint` of a delta disk.
    pub parent: Option<String>,
}

impl Descriptor {
    /// Sum of the extents, in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.extents.iter().map(|e| e.sectors * SECTOR).sum()
    }

    /// Parses a descriptor; `name` is only used in error messages.
    pub fn parse(name: &str, text: &[u8]) -> Result<Descriptor> {
        let text = std::str::from_utf8(text)
            .map_err(|_| bad(name, "it is not text (a sparse or binary disk?)"))?;
        if text.trim().is_empty() {
            return Err(bad(name, "the file is empty"));
        }
        let mut create_type = None;
        let mut parent = None;
        let mut extents = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                let value = value.trim().trim_matches('"').to_string();
                match key.trim() {
                    "createType" => create_type = Some(value),
                    "parentFileNameHint" => parent = Some(value),
                    _ => {}
                }
                continue;
            }
            if let Some(extent) = parse_extent(line) {
                extents.push(extent.map_err(|why| bad(name, &why))?);
            }
        }
        let create_type = create_type.ok_or_else(|| bad(name, "it has no createType"))?;
        if extents.is_empty() {
            return Err(bad(name, "it names no extent"));
        }
        Ok(Descriptor {
            create_type,
            extents,
            parent,
        })
    }

    /// Refuses what a flat reader cannot read.
    pub fn check_flat(&self, name: &str) -> Result<()> {
        if let Some(p) = &self.parent {
            return Err(bad(
                name,
                &format!("it is a delta disk of {p}; read the snapshot's base disk instead"),
            ));
        }
        if let Some(e) = self.extents.iter().find(|e| !e.is_flat()) {
            return Err(bad(
                name,
                &format!(
                    "its extent {} is {} (createType {}); only flat disks are read over the datastore",
                    e.file.as_deref().unwrap_or("-"),
                    e.kind,
                    self.create_type
                ),
            ));
        }
        Ok(())
    }
}

/// `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`; `None` for lines that are not extents.
fn parse_extent(line: &str) -> Option<std::result::Result<Extent, String>> {
    let mut rest = line;
    let access = take_word(&mut rest)?;
    if !matches!(access, "RW" | "RDONLY" | "NOACCESS") {
        return None;
    }
    Some((|| {
        let sectors = take_word(&mut rest)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| format!("extent line {line:?} has no size"))?;
        let kind = take_word(&mut rest)
            .ok_or_else(|| format!("extent line {line:?} has no type"))?
            .to_string();
        let rest = rest.trim_start();
        let (file, after) = match rest.strip_prefix('"') {
            Some(q) => {
                let end = q
                    .find('"')
                    .ok_or_else(|| format!("extent line {line:?} has an unclosed file name"))?;
                (Some(q[..end].to_string()), &q[end + 1..])
            }
            None => (None, rest),
        };
        let offset_sectors = after.trim().parse::<u64>().unwrap_or(0);
        Ok(Extent {
            sectors,
            kind,
            file,
            offset_sectors,
        })
    })())
}

fn take_word<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let s = rest.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    let (w, r) = s.split_at(end);
    *rest = r;
    Some(w)
}

fn bad(name: &str, why: &str) -> Error {
    Error::Malformed {
        what: format!("disk descriptor {name}: {why}"),
    }
}

/// A descriptor for a flat disk of `capacity_bytes` whose data is `flat_file` (in the same
/// directory), as ESXi writes it for a thick or thin disk on a datastore.
pub fn flat_descriptor(flat_file: &str, capacity_bytes: u64, adapter_type: &str) -> String {
    let sectors = capacity_bytes.div_ceil(SECTOR);
    let cylinders = (sectors / (255 * 63)).max(1);
    format!(
        "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\nparentCID=ffffffff\n\
         createType=\"vmfs\"\n\n# Extent description\nRW {sectors} VMFS \"{flat_file}\"\n\n\
         # The Disk Data Base\n#DDB\n\nddb.adapterType = \"{adapter_type}\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\nddb.geometry.heads = \"255\"\n\
         ddb.geometry.sectors = \"63\"\nddb.virtualHWVersion = \"13\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESXI: &str = r#"# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=7d3a4e52
parentCID=ffffffff
createType="vmfs"

# Extent description
RW 20971520 VMFS "web01-flat.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
"#;

    #[test]
    fn an_esxi_flat_descriptor_names_its_extent() {
        let d = Descriptor::parse("web01.vmdk", ESXI.as_bytes()).unwrap();
        assert_eq!(d.create_type, "vmfs");
        assert_eq!(d.capacity_bytes(), 10 << 30);
        assert_eq!(d.extents[0].file.as_deref(), Some("web01-flat.vmdk"));
        d.check_flat("web01.vmdk").unwrap();
    }

    #[test]
    fn split_flat_extents_with_offsets() {
        let text = "createType=\"twoGbMaxExtentFlat\"\nRW 4192256 FLAT \"a-f001.vmdk\" 0\nRW 2048 FLAT \"a-f002.vmdk\" 16\nRW 10 ZERO\n";
        let d = Descriptor::parse("a.vmdk", text.as_bytes()).unwrap();
        assert_eq!(d.extents.len(), 3);
        assert_eq!(d.extents[1].offset_sectors, 16);
        assert_eq!(d.extents[2].file, None);
        d.check_flat("a.vmdk").unwrap();
    }

    #[test]
    fn sparse_delta_and_empty_files_are_refused_by_name() {
        let delta = "createType=\"vmfsSparse\"\nparentFileNameHint=\"web01.vmdk\"\nRW 100 VMFSSPARSE \"web01-000001-delta.vmdk\"\n";
        let d = Descriptor::parse("web01-000001.vmdk", delta.as_bytes()).unwrap();
        let err = d.check_flat("web01-000001.vmdk").unwrap_err().to_string();
        assert!(err.contains("delta disk of web01.vmdk"), "{err}");
        let sparse = "createType=\"monolithicSparse\"\nRW 100 SPARSE \"x.vmdk\"\n";
        let err = Descriptor::parse("x.vmdk", sparse.as_bytes())
            .unwrap()
            .check_flat("x.vmdk")
            .unwrap_err()
            .to_string();
        assert!(err.contains("SPARSE"), "{err}");
        let err = Descriptor::parse("e.vmdk", b"").unwrap_err().to_string();
        assert!(err.contains("e.vmdk") && err.contains("empty"), "{err}");
        assert!(Descriptor::parse("b.vmdk", &[0xff, 0xfe, 0]).is_err());
    }

    #[test]
    fn a_written_descriptor_reads_back() {
        let text = flat_descriptor("r-flat.vmdk", 64 << 20, "lsilogic");
        let d = Descriptor::parse("r.vmdk", text.as_bytes()).unwrap();
        assert_eq!(d.capacity_bytes(), 64 << 20);
        assert_eq!(d.extents[0].file.as_deref(), Some("r-flat.vmdk"));
        d.check_flat("r.vmdk").unwrap();
    }
}
