//! `QueryChangedDiskAreas`, which the simulator lacks, against a small fake at the SOAP level
//! that answers like ESXi: each answer covers only part of the disk, so the client has to ask
//! again from where the answer ended.

#[allow(dead_code)]
mod replay;

use std::sync::{Arc, Mutex};

use replay::{fixture, Reply, Server};
use vsphere_client::{Client, ConnectOptions, DiskArea, MoRef, Thumbprint, Trust, ALL_ALLOCATED};

const MIB: u64 = 1 << 20;
/// How much of the disk one answer covers.
const WINDOW: u64 = 10 * MIB;
const CAPACITY: u64 = 25 * MIB;

fn envelope(inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"#
    )
}

fn fault(kind: &str, message: &str) -> Reply {
    Reply::xml(envelope(&format!(
        r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{message}</faultstring><detail><{kind}Fault xmlns="urn:vim25" xsi:type="{kind}"></{kind}Fault></detail></soapenv:Fault>"#
    )))
    .status(500)
}

fn tag<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(&body[start..end])
}

/// The areas the fake reports: allocated ones for `*`, changed ones for a known change id.
fn areas_for(change_id: &str) -> Option<Vec<(u64, u64)>> {
    match change_id {
        "*" => Some(vec![
            (0, 2 * MIB),
            (9 * MIB, 3 * MIB), // crosses the first window's end
            (24 * MIB, MIB),
        ]),
        "52 aa bb/7" => Some(vec![(4 * MIB, 64 * 1024), (21 * MIB, 8192)]),
        _ => None,
    }
}

fn answer(body: &str, calls: &Mutex<Vec<String>>) -> Option<Reply> {
    calls.lock().unwrap().push(body.to_string());
    if !body.contains(r#"<snapshot type="VirtualMachineSnapshot">snapshot-9</snapshot>"#)
        || tag(body, "deviceKey") != Some("2000")
    {
        return Some(fault("InvalidArgument", "wrong snapshot or device key"));
    }
    let start: u64 = tag(body, "startOffset")?.parse().ok()?;
    let Some(areas) = areas_for(tag(body, "changeId")?) else {
        return Some(fault(
            "FileFault",
            "Error caused by file /vmfs/volumes/ds/web01/web01.vmdk",
        ));
    };
    let end = (start + WINDOW).min(CAPACITY);
    let mut inner = format!(
        "<startOffset>{start}</startOffset><length>{}</length>",
        end - start
    );
    for (s, l) in areas {
        // ESXi reports what starts inside the window, whole.
        if s >= start && s < end {
            inner.push_str(&format!(
                "<changedArea><start>{s}</start><length>{l}</length></changedArea>"
            ));
        }
    }
    Some(Reply::xml(envelope(&format!(
        r#"<QueryChangedDiskAreasResponse xmlns="urn:vim25"><returnval>{inner}</returnval></QueryChangedDiskAreasResponse>"#
    ))))
}

async fn start() -> (Server, Client, Arc<Mutex<Vec<String>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let server = Server::start(move |req| match req.soap_method.as_str() {
        "RetrieveServiceContent" => Some(Reply::xml(fixture("service_content.xml"))),
        "Login" => Some(Reply::xml(fixture("login.xml")).with_cookie("cbt")),
        "QueryChangedDiskAreas" => answer(&req.body, &seen),
        _ => None,
    })
    .await;
    let trust = Trust::Thumbprint(server.thumbprint.parse::<Thumbprint>().unwrap());
    let opts = ConnectOptions::new(server.host_port(), "user", "pass", trust);
    let client = Client::connect(opts).await.unwrap().0;
    (server, client, calls)
}

#[tokio::test]
async fn the_whole_disk_is_covered_by_asking_again_where_an_answer_ended() {
    let (_server, client, calls) = start().await;
    let snapshot = MoRef::new("VirtualMachineSnapshot", "snapshot-9");
    let areas = client
        .changed_disk_areas("vm-42", &snapshot, 2000, CAPACITY, ALL_ALLOCATED)
        .await
        .unwrap();
    assert_eq!(
        areas,
        [
            DiskArea {
                start: 0,
                length: 2 * MIB
            },
            DiskArea {
                start: 9 * MIB,
                length: 3 * MIB
            },
            DiskArea {
                start: 24 * MIB,
                length: MIB
            },
        ]
    );
    let offsets: Vec<String> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|b| tag(b, "startOffset").unwrap().to_string())
        .collect();
    assert_eq!(
        offsets,
        ["0", "10485760", "20971520"],
        "three calls, each from where the last answer ended"
    );

    // Since a change id: only what changed, also past the first answer.
    calls.lock().unwrap().clear();
    let changed = client
        .changed_disk_areas("vm-42", &snapshot, 2000, CAPACITY, "52 aa bb/7")
        .await
        .unwrap();
    assert_eq!(
        changed,
        [
            DiskArea {
                start: 4 * MIB,
                length: 65536
            },
            DiskArea {
                start: 21 * MIB,
                length: 8192
            },
        ]
    );
    assert!(calls.lock().unwrap()[0].contains("<changeId>52 aa bb/7</changeId>"));
}

#[tokio::test]
async fn an_unknown_change_id_is_an_error_naming_the_fault() {
    let (_server, client, _) = start().await;
    let snapshot = MoRef::new("VirtualMachineSnapshot", "snapshot-9");
    let err = client
        .changed_disk_areas("vm-42", &snapshot, 2000, CAPACITY, "52 old/1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("FileFault"), "{err}");
}
