//! The disk-reader interface: how a backup reads a virtual disk and a restore writes one.
//!
//! A [`DiskTransport`] opens a [`DiskReader`] on a disk of a VM or snapshot, and a
//! [`DiskWriter`] on a disk to restore. [`DatastoreTransport`] is the first transport: it
//! reads the disk's flat extent over HTTPS from the datastore (`/folder`, ranged GETs, several
//! in flight) and writes it back with one streamed PUT. NBD(SSL) through NFC, or VDDK, fit
//! behind the same traits: a reader reads ranges, a writer takes the disk in order.
//!
//! ```no_run
//! # async fn demo(client: vsphere_client::Client, disk: vsphere_client::Disk) -> vsphere_client::Result<()> {
//! use vsphere_client::disk_io::{DatastoreTransport, DiskLocation, DiskTransport};
//! let transport = DatastoreTransport::new(client);
//! let reader = transport.open(&DiskLocation { dc_path: "DC0".into(), disk }).await?;
//! let first = reader.read_at(0, 4 << 20).await?;
//! println!("{} of {} bytes", first.len(), reader.capacity());
//! # Ok(()) }
//! ```

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::datastore::DatastorePath;
use crate::error::{Error, Result};
use crate::inventory::Disk;
use crate::vmdk::{flat_descriptor, Descriptor, MAX_DESCRIPTOR_BYTES, SECTOR};

/// Where a disk lives: its datacenter and its device record (from
/// [`Client::hardware_of`](crate::Client::hardware_of) of the VM or the snapshot).
#[derive(Debug, Clone)]
pub struct DiskLocation {
    /// The datacenter's `dcPath` ([`Client::datacenter_of`](crate::Client::datacenter_of)).
    pub dc_path: String,
    pub disk: Disk,
}

/// Opens disks for reading and writing.
pub trait DiskTransport: Send + Sync {
    /// A short name for logs and job records, e.g. `https-datastore`.
    fn name(&self) -> &'static str;

    /// Opens a disk for reading.
    fn open<'a>(&'a self, disk: &'a DiskLocation) -> BoxFuture<'a, Result<Arc<dyn DiskReader>>>;

    /// Opens a disk of `disk.capacity_bytes` for writing from its first byte to its last; what
    /// it held is replaced.
    fn create<'a>(&'a self, disk: &'a DiskLocation) -> BoxFuture<'a, Result<Box<dyn DiskWriter>>>;
}

/// Reads a disk. Reads may run concurrently.
pub trait DiskReader: Send + Sync {
    /// The disk's size in bytes.
    fn capacity(&self) -> u64;

    /// Reads `len` bytes at `offset` (cut at the end of the disk).
    fn read_at(&self, offset: u64, len: u64) -> BoxFuture<'_, Result<Bytes>>;
}

/// Writes a disk in order, from its first byte.
pub trait DiskWriter: Send {
    /// Appends `data`.
    fn write(&mut self, data: Bytes) -> BoxFuture<'_, Result<()>>;

    /// Ends the disk: everything written is stored when this returns `Ok`. A writer dropped
    /// without `finish` leaves the disk incomplete.
    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<()>>;
}

/// Datastore file access over HTTPS (`/folder`): what every vCenter and ESXi serves.
#[derive(Clone)]
pub struct DatastoreTransport {
    client: Client,
}

impl DatastoreTransport {
    pub fn new(client: Client) -> Self {
        DatastoreTransport { client }
    }
}

/// One piece of the disk: `sectors` of the disk starting at disk sector `start` are in
/// `file` from file sector `file_offset` (or zeros when `file` is `None`).
#[derive(Debug, Clone)]
struct Piece {
    start: u64,
    len: u64,
    file: Option<DatastorePath>,
    file_offset: u64,
}

struct FlatReader {
    client: Client,
    dc_path: String,
    capacity: u64,
    pieces: Vec<Piece>,
}

impl DiskTransport for DatastoreTransport {
    fn name(&self) -> &'static str {
        "https-datastore"
    }

    fn open<'a>(&'a self, loc: &'a DiskLocation) -> BoxFuture<'a, Result<Arc<dyn DiskReader>>> {
        Box::pin(async move {
            let descriptor_path: DatastorePath = loc.disk.file_name.parse()?;
            let text = self
                .client
                .datastore_read_all(&loc.dc_path, &descriptor_path, MAX_DESCRIPTOR_BYTES)
                .await?;
            let name = descriptor_path.to_string();
            let d = Descriptor::parse(&name, &text)?;
            d.check_flat(&name)?;
            let mut pieces = Vec::with_capacity(d.extents.len());
            let mut at = 0;
            for e in &d.extents {
                let len = e.sectors * SECTOR;
                pieces.push(Piece {
                    start: at,
                    len,
                    file: e
                        .file
                        .as_deref()
                        .filter(|_| e.kind != "ZERO")
                        .map(|f| descriptor_path.sibling(f)),
                    file_offset: e.offset_sectors * SECTOR,
                });
                at += len;
            }
            let capacity = if loc.disk.capacity_bytes > 0 {
                loc.disk.capacity_bytes
            } else {
                at
            };
            if at < capacity {
                return Err(Error::malformed(format!(
                    "disk descriptor {name}: its extents hold {at} bytes, the disk has {capacity}"
                )));
            }
            Ok(Arc::new(FlatReader {
                client: self.client.clone(),
                dc_path: loc.dc_path.clone(),
                capacity,
                pieces,
            }) as Arc<dyn DiskReader>)
        })
    }

    fn create<'a>(&'a self, loc: &'a DiskLocation) -> BoxFuture<'a, Result<Box<dyn DiskWriter>>> {
        Box::pin(async move {
            let descriptor: DatastorePath = loc.disk.file_name.parse()?;
            let stem = descriptor
                .file_name()
                .strip_suffix(".vmdk")
                .unwrap_or(descriptor.file_name())
                .to_string();
            let flat = descriptor.sibling(&format!("{stem}-flat.vmdk"));
            let capacity = loc.disk.capacity_bytes;
            let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
            let body = reqwest::Body::wrap_stream(futures::stream::unfold(rx, |mut rx| async {
                rx.recv().await.map(|item| (item, rx))
            }));
            let client = self.client.clone();
            let dc_path = loc.dc_path.clone();
            let put = {
                let (flat, dc_path) = (flat.clone(), dc_path.clone());
                tokio::spawn(
                    async move { client.datastore_put(&dc_path, &flat, body, capacity).await },
                )
            };
            Ok(Box::new(FlatWriter {
                client: self.client.clone(),
                dc_path,
                descriptor,
                flat,
                capacity,
                written: 0,
                tx: Some(tx),
                put: Some(put),
            }) as Box<dyn DiskWriter>)
        })
    }
}

impl DiskReader for FlatReader {
    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn read_at(&self, offset: u64, len: u64) -> BoxFuture<'_, Result<Bytes>> {
        Box::pin(async move {
            let end = offset.saturating_add(len).min(self.capacity);
            if offset >= end {
                return Ok(Bytes::new());
            }
            let mut parts: Vec<Bytes> = Vec::new();
            for p in &self.pieces {
                let (s, e) = (offset.max(p.start), end.min(p.start + p.len));
                if s >= e {
                    continue;
                }
                parts.push(match &p.file {
                    Some(file) => {
                        let from = p.file_offset + (s - p.start);
                        self.client
                            .datastore_read(&self.dc_path, file, from..from + (e - s))
                            .await?
                    }
                    None => Bytes::from(vec![0u8; (e - s) as usize]),
                });
            }
            Ok(match parts.len() {
                1 => parts.pop().unwrap_or_default(),
                _ => Bytes::from(parts.concat()),
            })
        })
    }
}

struct FlatWriter {
    client: Client,
    dc_path: String,
    descriptor: DatastorePath,
    flat: DatastorePath,
    capacity: u64,
    written: u64,
    tx: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    put: Option<JoinHandle<Result<()>>>,
}

impl FlatWriter {
    /// The upload's own error once it stopped taking data.
    async fn upload_error(&mut self) -> Error {
        self.tx = None;
        match self.put.take() {
            Some(put) => match put.await {
                Ok(Err(e)) => e,
                Ok(Ok(())) => Error::malformed(format!(
                    "the upload of {} ended before the disk was complete",
                    self.flat
                )),
                Err(e) => Error::malformed(format!("upload task failed: {e}")),
            },
            None => Error::malformed(format!("the upload of {} already ended", self.flat)),
        }
    }
}

impl DiskWriter for FlatWriter {
    fn write(&mut self, data: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if self.written + data.len() as u64 > self.capacity {
                return Err(Error::invalid(format!(
                    "{} bytes written to a disk of {} bytes ({})",
                    self.written + data.len() as u64,
                    self.capacity,
                    self.flat
                )));
            }
            let n = data.len() as u64;
            let sent = match &self.tx {
                Some(tx) => tx.send(Ok(data)).await.is_ok(),
                None => false,
            };
            if !sent {
                return Err(self.upload_error().await);
            }
            self.written += n;
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            if self.written != self.capacity {
                return Err(Error::invalid(format!(
                    "{} of {} bytes written to {}",
                    self.written, self.capacity, self.flat
                )));
            }
            self.tx = None;
            let put = self.put.take().expect("finish runs once");
            put.await
                .map_err(|e| Error::malformed(format!("upload task failed: {e}")))??;
            let text = flat_descriptor(self.flat.file_name(), self.capacity, "lsilogic");
            self.client
                .datastore_write(&self.dc_path, &self.descriptor, text.into_bytes())
                .await
        })
    }
}

impl Drop for FlatWriter {
    fn drop(&mut self) {
        if let Some(put) = self.put.take() {
            put.abort();
        }
    }
}
