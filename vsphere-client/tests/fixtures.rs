//! Behaviour the simulator does not serve, against recorded answers replayed by
//! a small local HTTPS server: `ContinueRetrievePropertiesEx` paging tokens,
//! `NotAuthenticated` and `InvalidCollectorVersion` faults, and the `/api`
//! tagging endpoints of vCenter 7.0 U2 and later.

mod replay;

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use replay::{fixture, Reply, Server};
use vsphere_client::{
    CancellationToken, Change, Client, ConnectOptions, RestFlavor, Thumbprint, Trust,
};

async fn connect(server: &Server) -> Client {
    let trust = Trust::Thumbprint(server.thumbprint.parse::<Thumbprint>().unwrap());
    let opts = ConnectOptions::new(server.host_port(), "user", "pass", trust);
    Client::connect(opts).await.expect("connect").0
}

/// Answers every call a listing makes; `RetrievePropertiesEx` for VMs comes in
/// two pages joined by a token.
fn inventory_reply(method: &str, body: &str) -> Option<Reply> {
    Some(match method {
        "RetrieveServiceContent" => Reply::xml(fixture("service_content.xml")),
        "Login" => Reply::xml(fixture("login.xml")).with_cookie("fixture-session"),
        "Logout" => Reply::xml(empty("Logout")),
        "CurrentTime" => Reply::xml(empty("CurrentTime")),
        "CreateContainerView" => Reply::xml(returnval(
            "CreateContainerView",
            r#"<returnval type="ContainerView">view-1</returnval>"#,
        )),
        "DestroyView" => Reply::xml(empty("DestroyView")),
        "RetrievePropertiesEx" if !body.contains("<type>VirtualMachine</type>") => {
            Reply::xml(fixture("topology.xml"))
        }
        "RetrievePropertiesEx" => Reply::xml(first_page()),
        "ContinueRetrievePropertiesEx" if body.contains("page-2-token") => {
            Reply::xml(fixture("retrieve_page2.xml"))
        }
        _ => return None,
    })
}

/// The first page of a listing: two VMs, then the folders, hosts and
/// datastores they refer to (so the VMs arrive before their folders), then a
/// paging token.
fn first_page() -> String {
    let topo = fixture("topology.xml");
    let start = topo.find("<objects>").unwrap();
    let end = topo.rfind("</objects>").unwrap() + "</objects>".len();
    let page = fixture("retrieve_page1.xml");
    let at = page.find("<token>").unwrap();
    format!("{}{}{}", &page[..at], &topo[start..end], &page[at..])
}

fn empty(method: &str) -> String {
    returnval(method, "")
}

fn returnval(method: &str, inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><{method}Response xmlns="urn:vim25">{inner}</{method}Response></soapenv:Body></soapenv:Envelope>"#
    )
}

#[tokio::test]
async fn follows_paging_tokens() {
    let server = Server::start(|req| inventory_reply(&req.soap_method, &req.body)).await;
    let client = connect(&server).await;
    let mut pages = 0;
    let mut vms = Vec::new();
    let stats = client
        .inventory(|p| {
            pages += 1;
            vms.extend(p)
        })
        .await
        .unwrap();
    assert_eq!(stats.calls, 2, "one RetrievePropertiesEx and one Continue");
    let morefs: Vec<&str> = vms.iter().map(|v| v.moref.as_str()).collect();
    assert_eq!(morefs, ["vm-63", "vm-66", "vm-69"]);
    assert_eq!(server.count("ContinueRetrievePropertiesEx"), 1);
    // Paths come from the recorded topology: DC0 sits in folder F0, its VMs in vm/F0.
    for vm in &vms {
        assert_eq!(vm.path, format!("/F0/DC0/vm/F0/{}", vm.name));
    }
    assert!(vms.iter().all(|v| v.esxi_host.is_some()));
    client.logout().await.unwrap();
}

#[tokio::test]
async fn the_listing_does_not_ask_for_devices_and_disks_are_read_for_chosen_vms() {
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = bodies.clone();
    let server = Server::start(move |req| {
        if req.soap_method == "RetrievePropertiesEx" {
            seen.lock().unwrap().push(req.body.clone());
        }
        // The disk query names its VMs in the objectSet, the listing uses the view.
        if req.soap_method == "RetrievePropertiesEx"
            && req
                .body
                .contains("<objectSet><obj type=\"VirtualMachine\">")
        {
            return Some(Reply::xml(
                fixture("retrieve_page1.xml").replace("<token>page-2-token</token>", ""),
            ));
        }
        inventory_reply(&req.soap_method, &req.body)
    })
    .await;
    let client = connect(&server).await;
    let vms = client.list_vms().await.unwrap();
    assert_eq!(vms.len(), 3);
    {
        let bodies = bodies.lock().unwrap();
        assert!(!bodies.is_empty());
        for body in bodies.iter() {
            assert!(body.contains("<pathSet>name</pathSet>"), "{body}");
            assert!(
                !body.contains("hardware.device"),
                "the listing asked for devices: {body}"
            );
        }
    }
    bodies.lock().unwrap().clear();

    let disks = client.disks_for(&["vm-63", "vm-66"]).await.unwrap();
    let body = bodies.lock().unwrap().concat();
    assert!(
        body.contains("<pathSet>config.hardware.device</pathSet>"),
        "{body}"
    );
    assert!(
        body.contains(r#"<obj type="VirtualMachine">vm-63</obj>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<obj type="VirtualMachine">vm-66</obj>"#),
        "{body}"
    );
    assert!(!body.contains("vm-69"), "only the chosen VMs: {body}");
    assert!(
        !body.contains("<pathSet>name</pathSet>"),
        "devices only: {body}"
    );
    let d = &disks["vm-63"];
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].key, 255511522);
    assert_eq!(d[0].capacity_bytes, 1024 * 1024);
    assert_eq!(d[0].file_name, "[LocalDS_0] DC0_H0_VM0/disk1.vmdk");
    assert_eq!(
        disks["vm-66"][0].file_name,
        "[LocalDS_0] DC0_H0_VM1/disk1.vmdk"
    );
    client.logout().await.unwrap();
}

#[tokio::test]
async fn logs_in_again_once_on_not_authenticated() {
    let server = Server::start(|req| {
        // The first CurrentTime after the first login finds the session gone.
        if req.soap_method == "CurrentTime" && req.cookie.as_deref() == Some("fixture-session-1") {
            return Some(Reply::xml(fixture("not_authenticated.xml")).status(500));
        }
        inventory_reply(&req.soap_method, &req.body)
    })
    .await;
    let client = connect(&server).await;
    let (a, b, c) = tokio::join!(client.keepalive(), client.keepalive(), client.list_vms());
    a.unwrap();
    b.unwrap();
    assert_eq!(c.unwrap().len(), 3);
    assert_eq!(
        server.count("Login"),
        2,
        "concurrent callers share one new login"
    );
    client.logout().await.unwrap();
}

#[tokio::test]
async fn wrong_password_is_an_authentication_error() {
    let server = Server::start(|req| match req.soap_method.as_str() {
        "Login" => Some(
            Reply::xml(
                fixture("not_authenticated.xml").replace("NotAuthenticated", "InvalidLogin"),
            )
            .status(500),
        ),
        m => inventory_reply(m, &req.body),
    })
    .await;
    let trust = Trust::Thumbprint(server.thumbprint.parse().unwrap());
    let err = Client::connect(ConnectOptions::new(server.host_port(), "u", "bad", trust))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        vsphere_client::ErrorKind::Authentication,
        "{err}"
    );
}

#[tokio::test]
async fn watch_restarts_from_a_full_listing_on_invalid_collector_version() {
    let server = Server::start(|req| {
        let m = req.soap_method.as_str();
        Some(match m {
            "CreatePropertyCollector" => Reply::xml(fixture("create_property_collector.xml")),
            "CreateFilter" => Reply::xml(returnval(
                "CreateFilter",
                r#"<returnval type="PropertyFilter">filter-1</returnval>"#,
            )),
            "DestroyPropertyCollector" => Reply::xml(empty("DestroyPropertyCollector")),
            "WaitForUpdatesEx" if req.body.contains("<version></version>") => {
                // Second full listing: vm-66 is gone.
                if req.seq_of("WaitForUpdatesEx") > 1 {
                    Reply::xml(drop_object(&fixture("wait_initial.xml"), "vm-66"))
                } else {
                    Reply::xml(fixture("wait_initial.xml"))
                }
            }
            "WaitForUpdatesEx" if req.seq_of("WaitForUpdatesEx") == 2 => {
                Reply::xml(fixture("invalid_collector_version.xml")).status(500)
            }
            // Nothing changes any more: answer empty after a short wait.
            "WaitForUpdatesEx" => {
                Reply::xml(empty("WaitForUpdatesEx")).delay(Duration::from_millis(200))
            }
            _ => return inventory_reply(m, &req.body),
        })
    })
    .await;
    let client = connect(&server).await;
    let cancel = CancellationToken::new();
    let mut changes = client.watch(cancel.clone());
    let mut entered = Vec::new();
    for _ in 0..6 {
        match next(&mut changes).await {
            Change::Enter(vm) => entered.push(vm.moref),
            other => panic!("expected the initial listing, got {other:?}"),
        }
    }
    assert!(entered.contains(&"vm-66".to_string()));
    // The version is refused; the watch lists again and reports only the difference.
    match next(&mut changes).await {
        Change::Leave { moref } => assert_eq!(moref, "vm-66"),
        other => panic!("expected vm-66 to leave, got {other:?}"),
    }
    assert_eq!(server.count("CreatePropertyCollector"), 2);
    cancel.cancel();
    client.logout().await.unwrap();
}

async fn next(
    s: &mut futures::stream::BoxStream<'static, vsphere_client::Result<Change>>,
) -> Change {
    tokio::time::timeout(Duration::from_secs(20), s.next())
        .await
        .expect("a change in time")
        .expect("stream open")
        .expect("no error")
}

fn drop_object(xml: &str, moref: &str) -> String {
    let marker = format!(r#"<obj type="VirtualMachine">{moref}</obj>"#);
    let at = xml.find(&marker).expect("object in fixture");
    let start = xml[..at].rfind("<objectSet>").unwrap();
    let end = at + xml[at..].find("</objectSet>").unwrap() + "</objectSet>".len();
    format!("{}{}", &xml[..start], &xml[end..])
}

#[tokio::test]
async fn tags_through_the_api_endpoints() {
    let server = Server::start(|req| {
        let path = req.path.as_str();
        let json = |v: serde_json::Value| Some(Reply::json(v.to_string()));
        if path.starts_with("/rest/") {
            return Some(Reply::json(String::new()).status(404));
        }
        if !path.starts_with("/api/") {
            // A vCenter recent enough to serve /api.
            if req.soap_method == "RetrieveServiceContent" {
                return Some(Reply::xml(
                    fixture("service_content.xml")
                        .replace("<apiVersion>6.5</apiVersion>", "<apiVersion>8.0.1.0</apiVersion>"),
                ));
            }
            return inventory_reply(&req.soap_method, &req.body);
        }
        if path != "/api/session" && req.header("vmware-api-session-id") != Some("api-token") {
            return Some(Reply::json(r#"{"error_type":"UNAUTHENTICATED","messages":[]}"#.into()).status(401));
        }
        match (req.method.as_str(), path) {
            ("POST", "/api/session") => json(serde_json::json!("api-token")),
            ("DELETE", "/api/session") => Some(Reply::json(String::new()).status(204)),
            ("GET", "/api/cis/tagging/category") => json(serde_json::json!(["cat-1"])),
            ("GET", "/api/cis/tagging/category/cat-1") => json(serde_json::json!({
                "id": "cat-1", "name": "Environment", "description": "where it runs",
                "cardinality": "SINGLE", "associable_types": ["VirtualMachine"], "used_by": []})),
            ("GET", "/api/cis/tagging/tag") => json(serde_json::json!(["tag-1", "tag-2"])),
            ("GET", "/api/cis/tagging/tag/tag-1") => json(serde_json::json!({
                "id": "tag-1", "category_id": "cat-1", "name": "prod", "description": "production", "used_by": []})),
            ("GET", "/api/cis/tagging/tag/tag-2") => json(serde_json::json!({
                "id": "tag-2", "category_id": "cat-1", "name": "dev", "description": "", "used_by": []})),
            ("POST", "/api/cis/tagging/tag-association")
                if req.query.as_deref() == Some("action=list-attached-tags-on-objects") =>
            {
                let asked: serde_json::Value = serde_json::from_str(&req.body).unwrap();
                let ids = asked["object_ids"].as_array().unwrap();
                let out: Vec<_> = ids
                    .iter()
                    .map(|o| {
                        let id = o["id"].as_str().unwrap();
                        let tags = if id == "vm-63" { vec!["tag-1"] } else { vec!["tag-2"] };
                        serde_json::json!({"object_id": {"type": "VirtualMachine", "id": id}, "tag_ids": tags})
                    })
                    .collect();
                json(serde_json::Value::Array(out))
            }
            (m, p) => Some(
                Reply::json(format!(
                    r#"{{"error_type":"NOT_FOUND","messages":[{{"default_message":"no fixture for {m} {p}"}}]}}"#
                ))
                .status(404),
            ),
        }
    })
    .await;
    let client = connect(&server).await;
    let morefs: Vec<String> = ["vm-63", "vm-66"].iter().map(|s| s.to_string()).collect();
    let tags = client.tags_for(&morefs).await.unwrap();
    assert_eq!(client.rest_flavor().await, Some(RestFlavor::Api));
    let t = tags.of_vm("vm-63");
    assert_eq!(t.len(), 1);
    assert_eq!(
        (
            t[0].category.as_str(),
            t[0].name.as_str(),
            t[0].description.as_str()
        ),
        ("Environment", "prod", "production")
    );
    assert_eq!(tags.of_vm("vm-66")[0].name, "dev");
    assert_eq!(
        tags.categories["cat-1"].cardinality,
        vsphere_client::Cardinality::Single
    );
    assert_eq!(
        server.rest_requests.load(Ordering::SeqCst),
        1 + 1 + 1 + 1 + 2 + 1
    );
    client.logout().await.unwrap();
    assert_eq!(server.count_path("/api/session"), 2, "login and logout");
}
