//! One restore: a new VM placed by the restore metadata, each disk written from its chunks in
//! disk order (downloaded a few at a time, decompressed, checked against their names), and the
//! VM powered on if asked. A restore that fails removes the VM it created.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bgw_protocol::backup::{
    restore_metadata as keys, ChunkHash, DiskManifest, JobOutcome as WireOutcome, RestoreVm,
};
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use vsphere_client::disk_io::{DiskLocation, DiskTransport};
use vsphere_client::{Client, Controller, MoRef, NewDisk, NewVm};

use super::pipeline::{retry, Stats};
use super::plan::{chunk_range, zero_hash};
use super::progress::{self, Progress};
use super::BackupService;
use crate::error::{Error, Result};
use crate::jobs::JobContext;

/// Chunk downloads in flight per restore.
pub const DOWNLOADS: usize = 4;

/// The controller restored disks hang on.
const CONTROLLER_KEY: i32 = 1000;

/// Where the new VM goes, from the restore metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub name: String,
    pub datastore: String,
    pub folder: Option<String>,
    pub host: Option<String>,
    pub cluster: Option<String>,
    pub resource_pool: Option<String>,
    pub power_on: bool,
}

impl Placement {
    /// Reads and checks the metadata; the error names the key.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<Placement> {
        let get = |k: &str| {
            m.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let name = get(keys::VM_NAME)
            .ok_or_else(|| Error::Job(format!("the restore metadata has no {}", keys::VM_NAME)))?;
        let datastore = get(keys::DATASTORE).ok_or_else(|| {
            Error::Job(format!("the restore metadata has no {}", keys::DATASTORE))
        })?;
        let power_on = match get(keys::POWER_ON).as_deref() {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(Error::Job(format!(
                    "restore metadata {} is {v:?}; use true or false",
                    keys::POWER_ON
                )))
            }
        };
        let p = Placement {
            name,
            datastore,
            folder: get(keys::FOLDER),
            host: get(keys::HOST),
            cluster: get(keys::CLUSTER),
            resource_pool: get(keys::RESOURCE_POOL),
            power_on,
        };
        if p.host.is_none() && p.cluster.is_none() && p.resource_pool.is_none() {
            return Err(Error::Job(format!(
                "the restore metadata names no {}, {} or {}",
                keys::HOST,
                keys::CLUSTER,
                keys::RESOURCE_POOL
            )));
        }
        Ok(p)
    }
}

pub async fn run(svc: &Arc<BackupService>, cmd: RestoreVm, ctx: &JobContext) -> WireOutcome {
    let placement = match Placement::from_metadata(&cmd.metadata) {
        Ok(p) => p,
        Err(e) => {
            return WireOutcome::Failed {
                message: e.to_string(),
            }
        }
    };
    let client = match svc.link.open_session(None).await {
        Ok(c) => c,
        Err(e) => {
            return WireOutcome::Failed {
                message: format!("cannot connect to vCenter: {e}"),
            }
        }
    };
    let progress = Progress::new(Arc::new(Stats::default()), true);
    progress.total.store(
        cmd.disks.iter().map(|d| d.capacity_bytes).sum(),
        Ordering::Relaxed,
    );
    let mut created = None;
    let work = restore(svc, &cmd, &client, &placement, &progress, &mut created);
    let result = tokio::select! {
        r = progress::while_running(ctx, &svc.cloud, &progress, work) => Some(r),
        _ = ctx.cancel.cancelled() => None,
    };
    let outcome = match result {
        Some(Ok(uuid)) => WireOutcome::Succeeded {
            disks: vec![],
            vm_name: Some(placement.name.clone()),
            created_instance_uuid: uuid,
        },
        other => {
            if let Some(vm) = created.take() {
                if let Err(e) = client.destroy_vm(&vm).await {
                    tracing::warn!(vm = %vm, error = %e, "cannot remove the VM of a failed restore");
                }
            }
            match other {
                None if svc.shutdown.is_cancelled() => WireOutcome::Failed {
                    message: "interrupted: the agent stopped".into(),
                },
                None | Some(Err(Error::JobStopped(_))) => WireOutcome::Aborted {
                    message: "stopped on request; the partly restored VM was removed".into(),
                },
                Some(Err(e)) => WireOutcome::Failed {
                    message: e.to_string(),
                },
                Some(Ok(_)) => unreachable!(),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), client.logout()).await;
    outcome
}

async fn restore(
    svc: &Arc<BackupService>,
    cmd: &RestoreVm,
    client: &Client,
    p: &Placement,
    progress: &Progress,
    created: &mut Option<String>,
) -> Result<Option<String>> {
    let vc = |what: String| move |source| Error::Vcenter { what, source };
    // Placement: the pool from the host, cluster or pool named; the folder named or the
    // datacenter's VM folder.
    let (pool, host, dc_path) = if let Some(rp) = &p.resource_pool {
        let (pool, dc) = client
            .locate("ResourcePool", rp)
            .await
            .map_err(vc(format!("finding resource pool {rp}")))?;
        (pool, None, dc)
    } else if let Some(h) = &p.host {
        let (host, dc) = client
            .locate("HostSystem", h)
            .await
            .map_err(vc(format!("finding host {h}")))?;
        let parent = client
            .reference_property(&host, "parent")
            .await
            .map_err(vc(format!("reading the cluster of host {h}")))?
            .ok_or_else(|| Error::Job(format!("host {h} has no parent")))?;
        let pool = client
            .reference_property(&parent, "resourcePool")
            .await
            .map_err(vc(format!("reading the resource pool of host {h}")))?
            .ok_or_else(|| Error::Job(format!("host {h} has no resource pool")))?;
        (pool, Some(host), dc)
    } else {
        let c = p.cluster.as_deref().unwrap_or_default();
        let (cluster, dc) = client
            .locate("ClusterComputeResource", c)
            .await
            .map_err(vc(format!("finding cluster {c}")))?;
        let pool = client
            .reference_property(&cluster, "resourcePool")
            .await
            .map_err(vc(format!("reading the resource pool of cluster {c}")))?
            .ok_or_else(|| Error::Job(format!("cluster {c} has no resource pool")))?;
        (pool, None, dc)
    };
    let folder = match &p.folder {
        Some(f) => {
            client
                .locate("Folder", f)
                .await
                .map_err(vc(format!("finding folder {f}")))?
                .0
        }
        None => {
            let dc = client
                .find_by_inventory_path(&dc_path)
                .await
                .map_err(vc(format!("finding datacenter {dc_path}")))?
                .ok_or_else(|| Error::Job(format!("no datacenter {dc_path}")))?;
            client
                .reference_property(&dc, "vmFolder")
                .await
                .map_err(vc(format!("reading the VM folder of {dc_path}")))?
                .ok_or_else(|| Error::Job(format!("datacenter {dc_path} has no VM folder")))?
        }
    };
    let spec = NewVm {
        name: p.name.clone(),
        folder,
        pool,
        host,
        datastore: p.datastore.clone(),
        guest_id: "otherGuest64".into(),
        num_cpus: 1,
        memory_mb: 1024,
        controllers: vec![Controller {
            key: CONTROLLER_KEY,
            kind: "ParaVirtualSCSIController".into(),
            bus_number: 0,
        }],
        disks: cmd
            .disks
            .iter()
            .enumerate()
            .map(|(i, d)| NewDisk {
                controller_key: CONTROLLER_KEY,
                // Unit 7 is the controller's own.
                unit_number: if i < 7 { i as i32 } else { i as i32 + 1 },
                capacity_bytes: d.capacity_bytes,
                thin_provisioned: true,
            })
            .collect(),
    };
    let vm = client
        .create_vm(&spec)
        .await
        .map_err(vc(format!("creating VM {}", p.name)))?;
    *created = Some(vm.clone());
    let hw = client
        .hardware_of(&MoRef::new("VirtualMachine", vm.clone()))
        .await
        .map_err(vc(format!("reading the disks of the new VM {vm}")))?;
    let mut disks = hw.disks.clone();
    disks.sort_by_key(|d| d.unit_number);
    if disks.len() != cmd.disks.len() {
        return Err(Error::Job(format!(
            "the new VM {vm} has {} disks, the recovery point {}",
            disks.len(),
            cmd.disks.len()
        )));
    }
    let transport = (svc.transport)(client.clone());
    for (target, manifest) in disks.iter().zip(&cmd.disks) {
        tracing::info!(vm = %vm, disk = target.key, capacity = manifest.capacity_bytes, "restoring a disk");
        write_disk(
            svc,
            transport.as_ref(),
            &dc_path,
            target,
            manifest,
            progress,
        )
        .await?;
    }
    if p.power_on {
        client
            .power_on(&vm)
            .await
            .map_err(vc(format!("powering on {vm}")))?;
    }
    Ok(hw.instance_uuid)
}

async fn write_disk(
    svc: &Arc<BackupService>,
    transport: &dyn DiskTransport,
    dc_path: &str,
    target: &vsphere_client::Disk,
    manifest: &DiskManifest,
    progress: &Progress,
) -> Result<()> {
    let capacity = manifest.capacity_bytes;
    let chunk_size = manifest.chunk_size;
    let expected = super::plan::chunk_count(capacity, chunk_size);
    if manifest.chunks.len() != expected || chunk_size == 0 {
        return Err(Error::Job(format!(
            "disk {} of the recovery point lists {} chunks; a disk of {capacity} bytes in chunks of {chunk_size} has {expected}",
            manifest.label,
            manifest.chunks.len()
        )));
    }
    let mut writer = transport
        .create(&DiskLocation {
            dc_path: dc_path.to_string(),
            disk: target.clone(),
        })
        .await
        .map_err(|source| Error::Vcenter {
            what: format!("opening disk {} of the new VM", target.file_name),
            source,
        })?;
    let svc = svc.clone();
    let mut chunks = futures::stream::iter(manifest.chunks.clone().into_iter().enumerate())
        .map(move |(i, hash)| {
            let r = chunk_range(i, capacity, chunk_size);
            let svc = svc.clone();
            async move { fetch(&svc, hash, r.end - r.start).await }
        })
        .buffered(DOWNLOADS);
    while let Some(data) = chunks.next().await {
        let data = data?;
        let n = data.len() as u64;
        writer.write(data).await.map_err(|source| Error::Vcenter {
            what: format!("writing disk {}", target.file_name),
            source,
        })?;
        progress.written.fetch_add(n, Ordering::Relaxed);
    }
    writer.finish().await.map_err(|source| Error::Vcenter {
        what: format!("finishing disk {}", target.file_name),
        source,
    })
}

/// One chunk's raw bytes, checked against its name.
async fn fetch(svc: &BackupService, hash: ChunkHash, len: u64) -> Result<Bytes> {
    if hash == zero_hash(len) {
        return Ok(Bytes::from(vec![0u8; len as usize]));
    }
    let (frame, _) = retry("downloading a chunk", || svc.cloud.get_chunk(&hash)).await?;
    let name = hash.clone();
    tokio::task::spawn_blocking(move || {
        let raw = zstd::bulk::decompress(&frame, len as usize).map_err(|e| {
            Error::Job(format!(
                "chunk {name} does not decompress to {len} bytes: {e}"
            ))
        })?;
        if raw.len() as u64 != len {
            return Err(Error::Job(format!(
                "chunk {name} holds {} bytes, the disk needs {len} there",
                raw.len()
            )));
        }
        if ChunkHash::from_digest(Sha256::digest(&raw).into()) != name {
            return Err(Error::Job(format!("chunk {name} does not match its name")));
        }
        Ok(Bytes::from(raw))
    })
    .await
    .map_err(|source| Error::Worker {
        what: "decompression",
        source,
    })?
}
