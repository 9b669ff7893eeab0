//! Real disk data on the simulator's datastores, placed and read back independently of the
//! product's client: datastore files over `/folder` (PUT, GET), a VM created with a disk of a
//! chosen size, and disk images with recognisable content.
//!
//! ```no_run
//! # async fn demo(vc: &bgw_tests::vcsim::Vcsim) -> bgw_tests::Result<()> {
//! use bgw_tests::vcsim_disks::{self, DiskImage};
//! let mut soap = bgw_tests::vcsim_soap::SoapSession::login(vc).await?;
//! let vm = vcsim_disks::create_vm(&mut soap, "backup-me", 64 << 20).await?;
//! let image = DiskImage::patterned(64 << 20, 7);
//! vcsim_disks::put_flat_disk(vc, &vm.disk_file, &image.data).await?;
//! # Ok(()) }
//! ```

use crate::error::{HarnessError, Result};
use crate::vcsim::Vcsim;
use crate::vcsim_soap::{xml_escape, SoapSession};

/// The datacenter and datastore of the simulator's default inventory.
pub const DATACENTER: &str = "DC0";
pub const DATASTORE: &str = "LocalDS_0";

/// A VM the tests created, with its one disk's backing file (`[LocalDS_0] name/name.vmdk`).
#[derive(Debug, Clone)]
pub struct TestVm {
    pub moref: String,
    pub name: String,
    pub disk_file: String,
    pub disk_key: i32,
}

/// Disk content: mostly varied data that compresses a little, some repeated blocks that
/// deduplicate, and zero runs that a reader may skip.
#[derive(Debug, Clone)]
pub struct DiskImage {
    pub data: Vec<u8>,
}

impl DiskImage {
    /// `len` bytes derived from `seed`: each MiB is noise, a repeat of the first MiB, or zeros.
    pub fn patterned(len: usize, seed: u64) -> DiskImage {
        let mut data = vec![0u8; len];
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mib = 1 << 20;
        for (i, block) in data.chunks_mut(mib).enumerate() {
            match i % 8 {
                5 => {} // zeros
                7 if i > 0 => {
                    let n = block.len();
                    block.copy_from_slice(&first_mib(seed)[..n]);
                }
                _ => {
                    for (j, b) in block.iter_mut().enumerate() {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Every fourth byte is text-like, so the data compresses somewhat.
                        *b = if j % 4 == 0 {
                            b'a' + (j % 26) as u8
                        } else {
                            state as u8
                        };
                    }
                }
            }
        }
        DiskImage { data }
    }

    /// Overwrites `len` bytes at `offset` with new noise from `seed`.
    pub fn scribble(&mut self, offset: usize, len: usize, seed: u64) {
        let mut state = seed | 1;
        for b in &mut self.data[offset..offset + len] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
    }
}

fn first_mib(seed: u64) -> Vec<u8> {
    let image = DiskImage::patterned(1 << 20, seed);
    image.data
}

fn datastore_url(vc: &Vcsim, file: &str) -> Result<String> {
    let (ds, path) = file
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .ok_or_else(|| HarnessError::Response {
            url: vc.base_url(),
            reason: format!("{file:?} is not a datastore path"),
        })?;
    Ok(format!(
        "{}/folder/{}?dcPath={DATACENTER}&dsName={ds}",
        vc.base_url(),
        path.trim()
    ))
}

/// Replaces a datastore file (`[ds] dir/name`).
pub async fn put_file(vc: &Vcsim, file: &str, data: Vec<u8>) -> Result<()> {
    let url = datastore_url(vc, file)?;
    let response = vc
        .http_client()?
        .put(&url)
        .body(data)
        .send()
        .await
        .map_err(|source| HarnessError::Http {
            url: url.clone(),
            source,
        })?;
    check(&url, response).await.map(|_| ())
}

/// Reads a whole datastore file.
pub async fn get_file(vc: &Vcsim, file: &str) -> Result<Vec<u8>> {
    let url = datastore_url(vc, file)?;
    let response =
        vc.http_client()?
            .get(&url)
            .send()
            .await
            .map_err(|source| HarnessError::Http {
                url: url.clone(),
                source,
            })?;
    let response = check(&url, response).await?;
    Ok(response
        .bytes()
        .await
        .map_err(|source| HarnessError::Http { url, source })?
        .to_vec())
}

async fn check(url: &str, response: reqwest::Response) -> Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(HarnessError::HttpStatus {
        url: url.to_string(),
        status: status.as_u16(),
        body: response.text().await.unwrap_or_default(),
    })
}

/// `NAME-flat.vmdk` beside a descriptor `NAME.vmdk`.
pub fn flat_file_of(descriptor: &str) -> String {
    match descriptor.strip_suffix(".vmdk") {
        Some(stem) => format!("{stem}-flat.vmdk"),
        None => format!("{descriptor}-flat"),
    }
}

/// Writes a monolithic flat disk as ESXi lays it out: the descriptor at `descriptor` naming
/// `NAME-flat.vmdk`, and the flat extent holding `data`.
pub async fn put_flat_disk(vc: &Vcsim, descriptor: &str, data: &[u8]) -> Result<()> {
    let flat = flat_file_of(descriptor);
    let flat_name = flat.rsplit('/').next().unwrap_or(&flat).to_string();
    let sectors = data.len().div_ceil(512);
    let text = format!(
        "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=12345678\nparentCID=ffffffff\n\
         createType=\"vmfs\"\n\n# Extent description\nRW {sectors} VMFS \"{flat_name}\"\n\n\
         # The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n"
    );
    put_file(vc, &flat, data.to_vec()).await?;
    put_file(vc, descriptor, text.into_bytes()).await
}

/// Reads back the data of a flat disk written by a restore: the extent its descriptor names.
pub async fn get_flat_disk(vc: &Vcsim, descriptor: &str) -> Result<Vec<u8>> {
    let text = String::from_utf8_lossy(&get_file(vc, descriptor).await?).into_owned();
    let extent = text
        .lines()
        .find_map(|l| {
            let l = l.trim();
            (l.starts_with("RW ")).then(|| l.split('"').nth(1).map(str::to_string))?
        })
        .ok_or_else(|| HarnessError::Response {
            url: vc.base_url(),
            reason: format!("descriptor {descriptor} names no extent:\n{text}"),
        })?;
    let dir = descriptor.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let flat = if dir.is_empty() {
        extent
    } else {
        format!("{dir}/{extent}")
    };
    get_file(vc, &flat).await
}

async fn find(soap: &mut SoapSession, path: &str) -> Result<String> {
    let r = soap
        .call(
            "FindByInventoryPath",
            &format!(
                r#"<_this type="SearchIndex">SearchIndex</_this><inventoryPath>{}</inventoryPath>"#,
                xml_escape(path)
            ),
        )
        .await?;
    r.child("returnval")
        .map(|n| n.text.clone())
        .ok_or_else(|| HarnessError::SoapFault {
            method: "FindByInventoryPath".into(),
            fault: format!("nothing at {path}"),
        })
}

/// Creates a powered-off VM in `DC0/vm` on cluster `DC0_C0` with one SCSI disk of `capacity`
/// bytes on `LocalDS_0`.
pub async fn create_vm(soap: &mut SoapSession, name: &str, capacity: u64) -> Result<TestVm> {
    let folder = find(soap, &format!("{DATACENTER}/vm")).await?;
    let pool = find(
        soap,
        &format!("{DATACENTER}/host/{DATACENTER}_C0/Resources"),
    )
    .await?;
    let spec = format!(
        r#"<_this type="Folder">{folder}</_this><config><name>{}</name><guestId>otherGuest64</guestId><files><vmPathName>[{DATASTORE}]</vmPathName></files><numCPUs>1</numCPUs><memoryMB>128</memoryMB><deviceChange><operation>add</operation><device xsi:type="ParaVirtualSCSIController"><key>-1</key><busNumber>0</busNumber><sharedBus>noSharing</sharedBus></device></deviceChange><deviceChange><operation>add</operation><fileOperation>create</fileOperation><device xsi:type="VirtualDisk"><key>-2</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[{DATASTORE}]</fileName><diskMode>persistent</diskMode><thinProvisioned>true</thinProvisioned></backing><controllerKey>-1</controllerKey><unitNumber>0</unitNumber><capacityInKB>{}</capacityInKB></device></deviceChange></config><pool type="ResourcePool">{pool}</pool>"#,
        xml_escape(name),
        capacity / 1024
    );
    soap.run_task("CreateVM_Task", &spec).await?;
    let vm = soap
        .list_vms()
        .await?
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| HarnessError::SoapFault {
            method: "CreateVM_Task".into(),
            fault: format!("no VM named {name} after creating it"),
        })?;
    let (disk_key, disk_file) = first_disk(soap, &vm.moref).await?;
    Ok(TestVm {
        moref: vm.moref,
        name: name.to_string(),
        disk_file,
        disk_key,
    })
}

/// Key and backing file of a VM's first disk.
pub async fn first_disk(soap: &mut SoapSession, vm: &str) -> Result<(i32, String)> {
    let r = soap
        .call(
            "RetrievePropertiesEx",
            &format!(
                r#"<_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>config.hardware.device</pathSet></propSet><objectSet><obj type="VirtualMachine">{vm}</obj></objectSet></specSet><options/>"#
            ),
        )
        .await?;
    let disk = r
        .find("val")
        .and_then(|v| {
            v.children
                .iter()
                .find(|d| d.attr("type") == Some("VirtualDisk"))
        })
        .ok_or_else(|| HarnessError::SoapFault {
            method: "RetrievePropertiesEx".into(),
            fault: format!("{vm} has no disk"),
        })?;
    let key = disk
        .child("key")
        .and_then(|k| k.text.parse().ok())
        .unwrap_or(0);
    let file = disk
        .child("backing")
        .and_then(|b| b.child("fileName"))
        .map(|f| f.text.clone())
        .unwrap_or_default();
    Ok((key, file))
}

/// Names of the snapshots of `vm`.
pub async fn snapshot_names(soap: &mut SoapSession, vm: &str) -> Result<Vec<String>> {
    let r = soap
        .call(
            "RetrievePropertiesEx",
            &format!(
                r#"<_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>snapshot</pathSet></propSet><objectSet><obj type="VirtualMachine">{vm}</obj></objectSet></specSet><options/>"#
            ),
        )
        .await?;
    let mut names = Vec::new();
    fn walk(n: &crate::vcsim_soap::XmlNode, names: &mut Vec<String>) {
        for t in n
            .children
            .iter()
            .filter(|c| c.name == "rootSnapshotList" || c.name == "childSnapshotList")
        {
            if let Some(name) = t.child("name") {
                names.push(name.text.clone());
            }
            walk(t, names);
        }
    }
    if let Some(v) = r.find("val") {
        walk(v, &mut names);
    }
    Ok(names)
}
