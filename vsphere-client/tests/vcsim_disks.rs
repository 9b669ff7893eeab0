//! The data path against the simulator: snapshots, the disks of a snapshot, reading a flat
//! disk over the datastore, creating a VM and writing its disk.

use bgw_tests::vcsim::{Vcsim, VcsimOptions};
use bgw_tests::vcsim_disks::{self, DiskImage};
use bgw_tests::vcsim_soap::SoapSession;
use vsphere_client::disk_io::{DatastoreTransport, DiskLocation, DiskTransport};
use vsphere_client::{Client, ConnectOptions, Controller, MoRef, NewDisk, NewVm, Trust};

async fn connect(vc: &Vcsim) -> Client {
    let trust = Trust::Thumbprint(vc.thumbprint_sha256().parse().unwrap());
    let opts = ConnectOptions::new(vc.host_port(), vc.username(), vc.password(), trust);
    Client::connect(opts).await.expect("connect").0
}

#[tokio::test]
async fn snapshots_are_taken_found_by_prefix_and_removed() {
    let vc = Vcsim::start(VcsimOptions::default()).unwrap();
    let mut soap = SoapSession::login(&vc).await.unwrap();
    let vms = soap.list_vms().await.unwrap();
    let client = connect(&vc).await;

    let a = client
        .create_snapshot(&vms[0].moref, "bgw-backup-job1", "backup", false)
        .await
        .unwrap();
    client
        .create_snapshot(&vms[0].moref, "operator-snapshot", "", false)
        .await
        .unwrap();
    let b = client
        .create_snapshot(&vms[1].moref, "bgw-backup-job2", "backup", false)
        .await
        .unwrap();
    assert_eq!(
        vcsim_disks::snapshot_names(&mut soap, &vms[0].moref)
            .await
            .unwrap(),
        ["bgw-backup-job1", "operator-snapshot"]
    );
    let own = client.snapshots(&vms[0].moref).await.unwrap();
    assert_eq!(own.len(), 2);
    assert_eq!(own[0].moref, a.value);

    let mut found = client.snapshots_named("bgw-backup-").await.unwrap();
    found.sort_by(|x, y| x.name.cmp(&y.name));
    let names: Vec<(&str, &str)> = found
        .iter()
        .map(|s| (s.name.as_str(), s.vm.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("bgw-backup-job1", vms[0].moref.as_str()),
            ("bgw-backup-job2", vms[1].moref.as_str())
        ]
    );

    // The disks of a snapshot are the VM's disks when it was taken.
    let of_vm = client
        .hardware_of(&MoRef::new("VirtualMachine", vms[1].moref.clone()))
        .await
        .unwrap();
    let of_snapshot = client.hardware_of(&b).await.unwrap();
    assert_eq!(of_vm.disks, of_snapshot.disks);
    assert_eq!(of_snapshot.disks.len(), 1);
    assert_eq!(of_snapshot.disks[0].capacity_bytes, 1 << 20);
    assert!(of_snapshot.disks[0].file_name.ends_with("disk1.vmdk"));
    assert!(
        of_snapshot
            .controllers
            .iter()
            .any(|c| c.key == of_snapshot.disks[0].controller_key),
        "{of_snapshot:?}"
    );

    for s in &found {
        client.remove_snapshot(&s.moref()).await.unwrap();
    }
    assert_eq!(
        vcsim_disks::snapshot_names(&mut soap, &vms[0].moref)
            .await
            .unwrap(),
        ["operator-snapshot"]
    );
    assert!(client
        .snapshots_named("bgw-backup-")
        .await
        .unwrap()
        .is_empty());
    // Removing a snapshot that is gone names it.
    let err = client.remove_snapshot(&a).await.unwrap_err();
    assert!(
        err.to_string().contains(&a.value) || err.kind() == vsphere_client::ErrorKind::NotFound,
        "{err}"
    );
    client.logout().await.unwrap();
}

#[tokio::test]
async fn a_flat_disk_reads_back_over_the_datastore_and_a_new_vm_takes_its_data() {
    let vc = Vcsim::start(VcsimOptions::default()).unwrap();
    let mut soap = SoapSession::login(&vc).await.unwrap();
    let size = 9 << 20; // not a multiple of the reads below
    let source = vcsim_disks::create_vm(&mut soap, "source", size as u64)
        .await
        .unwrap();
    let image = DiskImage::patterned(size, 3);
    vcsim_disks::put_flat_disk(&vc, &source.disk_file, &image.data)
        .await
        .unwrap();

    let client = connect(&vc).await;
    let dc = client.datacenter_of(&source.moref).await.unwrap();
    assert_eq!(dc, "DC0");
    let hw = client
        .hardware_of(&MoRef::new("VirtualMachine", source.moref.clone()))
        .await
        .unwrap();
    let disk = hw.disks[0].clone();
    assert_eq!(disk.capacity_bytes, size as u64);
    let transport = DatastoreTransport::new(client.clone());
    let reader = transport
        .open(&DiskLocation {
            dc_path: dc.clone(),
            disk: disk.clone(),
        })
        .await
        .unwrap();
    assert_eq!(reader.capacity(), size as u64);
    let mut read = Vec::new();
    let mut at = 0;
    while at < size as u64 {
        let part = reader.read_at(at, 4 << 20).await.unwrap();
        assert!(!part.is_empty());
        at += part.len() as u64;
        read.extend_from_slice(&part);
    }
    assert!(read == image.data, "the disk reads back bit for bit");
    let tail = reader.read_at(size as u64 - 10, 100).await.unwrap();
    assert_eq!(&tail[..], &image.data[size - 10..]);

    // A new VM with the same hardware; its disk written through the transport.
    let folder = client
        .find_by_inventory_path("DC0/vm")
        .await
        .unwrap()
        .unwrap();
    let pool = client
        .find_by_inventory_path("/DC0/host/DC0_C0/Resources")
        .await
        .unwrap()
        .unwrap();
    assert!(client
        .find_by_inventory_path("DC0/vm/nothing-here")
        .await
        .unwrap()
        .is_none());
    let controllers: Vec<Controller> = hw
        .controllers
        .iter()
        .filter(|c| c.key == disk.controller_key)
        .cloned()
        .collect();
    let restored = client
        .create_vm(&NewVm {
            name: "restored".into(),
            folder,
            pool,
            host: None,
            datastore: "LocalDS_0".into(),
            guest_id: hw.guest_id.clone(),
            num_cpus: hw.num_cpus,
            memory_mb: hw.memory_mb,
            controllers,
            disks: vec![NewDisk {
                controller_key: disk.controller_key,
                unit_number: disk.unit_number.unwrap_or(0),
                capacity_bytes: disk.capacity_bytes,
                thin_provisioned: true,
            }],
        })
        .await
        .unwrap();
    let new_hw = client
        .hardware_of(&MoRef::new("VirtualMachine", restored.clone()))
        .await
        .unwrap();
    assert_eq!(new_hw.disks.len(), 1);
    assert_eq!(new_hw.name, "restored");
    let uuid = new_hw
        .instance_uuid
        .clone()
        .expect("a new VM has an instance UUID");
    assert_eq!(
        client.find_vm_by_instance_uuid(&uuid).await.unwrap(),
        Some(restored.clone())
    );
    assert_eq!(
        client
            .find_vm_by_instance_uuid("no-such-uuid")
            .await
            .unwrap(),
        None
    );
    assert_eq!(new_hw.disks[0].capacity_bytes, size as u64);
    let mut writer = transport
        .create(&DiskLocation {
            dc_path: dc,
            disk: new_hw.disks[0].clone(),
        })
        .await
        .unwrap();
    for part in image.data.chunks(3 << 20) {
        writer
            .write(bytes::Bytes::copy_from_slice(part))
            .await
            .unwrap();
    }
    writer.finish().await.unwrap();
    let written = vcsim_disks::get_flat_disk(&vc, &new_hw.disks[0].file_name)
        .await
        .unwrap();
    assert!(written == image.data, "the new disk holds the same bytes");
    client.power_on(&restored).await.unwrap();
    client.logout().await.unwrap();
}
