//! A deliberately small vim25 SOAP client for test set-up and checks on the simulator:
//! log in, list VMs, call any method. The product's own client lives in `vsphere-client`;
//! this one exists so tests can verify it against an independent reading of the inventory.
//!
//! ```no_run
//! # async fn demo(vc: &bgw_tests::vcsim::Vcsim) -> bgw_tests::Result<()> {
//! let mut soap = bgw_tests::vcsim_soap::SoapSession::login(vc).await?;
//! for vm in soap.list_vms().await? {
//!     println!("{} {} {}", vm.moref, vm.name, vm.instance_uuid);
//! }
//! # Ok(()) }
//! ```

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{HarnessError, Result};
use crate::vcsim::Vcsim;

/// A parsed XML element: local name, attributes (local names), text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmlNode {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<XmlNode>,
}

impl XmlNode {
    /// First child named `name`.
    pub fn child(&self, name: &str) -> Option<&XmlNode> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a XmlNode> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// First descendant (depth first, self included) named `name`.
    pub fn find(&self, name: &str) -> Option<&XmlNode> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// Value of attribute `name` (local name, so `xsi:type` is `type`).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses a whole document and returns its root element.
    pub fn parse(xml: &str) -> std::result::Result<XmlNode, String> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(true);
        let mut stack: Vec<XmlNode> = vec![XmlNode::default()];
        loop {
            match reader.read_event().map_err(|e| e.to_string())? {
                Event::Start(e) => stack.push(element(&e)?),
                Event::Empty(e) => {
                    let node = element(&e)?;
                    stack.last_mut().expect("root").children.push(node);
                }
                Event::End(_) => {
                    let node = stack.pop().expect("balanced");
                    let parent = stack.last_mut().ok_or("unbalanced end tag")?;
                    parent.children.push(node);
                }
                Event::Text(t) => {
                    let text = t.unescape().map_err(|e| e.to_string())?;
                    stack.last_mut().expect("root").text.push_str(&text);
                }
                Event::CData(t) => {
                    let text = String::from_utf8_lossy(&t.into_inner()).into_owned();
                    stack.last_mut().expect("root").text.push_str(&text);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        let mut document = stack.pop().ok_or("empty document")?;
        if !stack.is_empty() {
            return Err("unclosed elements".into());
        }
        document
            .children
            .pop()
            .ok_or_else(|| "no root element".into())
    }
}

fn element(e: &quick_xml::events::BytesStart<'_>) -> std::result::Result<XmlNode, String> {
    let mut node = XmlNode {
        name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
        ..Default::default()
    };
    for attr in e.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
        let value = attr
            .unescape_value()
            .map_err(|e| e.to_string())?
            .into_owned();
        node.attrs.push((key, value));
    }
    Ok(node)
}

/// One VM as listed by [`SoapSession::list_vms`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VmSummary {
    /// Managed object id, e.g. `vm-55`.
    pub moref: String,
    pub name: String,
    /// `config.instanceUuid`: the stable identity of the VM.
    pub instance_uuid: String,
    /// `runtime.powerState`: `poweredOn`, `poweredOff` or `suspended`.
    pub power_state: String,
}

/// A logged-in SOAP session on the simulator.
pub struct SoapSession {
    http: reqwest::Client,
    url: String,
    cookie: String,
    root_folder: String,
    property_collector: String,
    view_manager: String,
    session_manager: String,
}

impl std::fmt::Debug for SoapSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoapSession")
            .field("url", &self.url)
            .field("cookie", &"***")
            .finish()
    }
}

impl SoapSession {
    /// Reads the service content and logs in with the simulator's credentials.
    pub async fn login(vcsim: &Vcsim) -> Result<SoapSession> {
        Self::login_as(vcsim, vcsim.username(), vcsim.password()).await
    }

    /// Like [`SoapSession::login`] with other credentials (a wrong password gives a `SoapFault`).
    pub async fn login_as(vcsim: &Vcsim, username: &str, password: &str) -> Result<SoapSession> {
        let mut session = SoapSession {
            http: vcsim.http_client()?,
            url: vcsim.url().to_string(),
            cookie: String::new(),
            root_folder: String::new(),
            property_collector: String::new(),
            view_manager: String::new(),
            session_manager: String::new(),
        };
        let content = session
            .call(
                "RetrieveServiceContent",
                r#"<_this type="ServiceInstance">ServiceInstance</_this>"#,
            )
            .await?;
        let text_of = |name: &str| {
            content
                .find(name)
                .map(|n| n.text.clone())
                .ok_or_else(|| HarnessError::Response {
                    url: session.url.clone(),
                    reason: format!("service content has no {name}"),
                })
        };
        let root_folder = text_of("rootFolder")?;
        let property_collector = text_of("propertyCollector")?;
        let view_manager = text_of("viewManager")?;
        let session_manager = text_of("sessionManager")?;
        session.root_folder = root_folder;
        session.property_collector = property_collector;
        session.view_manager = view_manager;
        session.session_manager = session_manager.clone();
        session
            .call(
                "Login",
                &format!(
                    r#"<_this type="SessionManager">{}</_this><userName>{}</userName><password>{}</password>"#,
                    session_manager,
                    xml_escape(username),
                    xml_escape(password)
                ),
            )
            .await?;
        Ok(session)
    }

    /// The session cookie value (`vmware_soap_session`).
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// Calls a vim25 method; `inner` is the XML inside `<method xmlns="urn:vim25">`.
    /// Returns the `<methodResponse>` element, or `SoapFault` with the fault string and type.
    pub async fn call(&mut self, method: &str, inner: &str) -> Result<XmlNode> {
        let envelope = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><{method} xmlns="urn:vim25">{inner}</{method}></soapenv:Body></soapenv:Envelope>"#
        );
        let mut request = self
            .http
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", "urn:vim25/7.0.0.0")
            .body(envelope);
        if !self.cookie.is_empty() {
            request = request.header("Cookie", format!("vmware_soap_session={}", self.cookie));
        }
        let response = request.send().await.map_err(|source| HarnessError::Http {
            url: self.url.clone(),
            source,
        })?;
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap_or_default();
            if let Some(rest) = value.strip_prefix("vmware_soap_session=") {
                self.cookie = rest.split(';').next().unwrap_or_default().to_string();
            }
        }
        let body = response.text().await.map_err(|source| HarnessError::Http {
            url: self.url.clone(),
            source,
        })?;
        let document = XmlNode::parse(&body).map_err(|reason| HarnessError::Response {
            url: self.url.clone(),
            reason: format!("{reason}: {body}"),
        })?;
        let soap_body = document
            .child("Body")
            .ok_or_else(|| HarnessError::Response {
                url: self.url.clone(),
                reason: format!("no SOAP body: {body}"),
            })?;
        if let Some(fault) = soap_body.child("Fault") {
            let string = fault.child("faultstring").map(|n| n.text.as_str());
            let kind = fault
                .child("detail")
                .and_then(|d| d.children.first())
                .map(|n| n.attr("type").unwrap_or(&n.name).to_string());
            return Err(HarnessError::SoapFault {
                method: method.to_string(),
                fault: match (string.filter(|s| !s.is_empty()), kind) {
                    (Some(s), Some(k)) => format!("{s} ({k})"),
                    (Some(s), None) => s.to_string(),
                    (None, Some(k)) => k,
                    (None, None) => "unknown fault".to_string(),
                },
            });
        }
        soap_body
            .children
            .first()
            .cloned()
            .ok_or_else(|| HarnessError::Response {
                url: self.url.clone(),
                reason: format!("empty SOAP body: {body}"),
            })
    }

    /// All VMs with moref, name, instance UUID and power state, sorted by moref.
    pub async fn list_vms(&mut self) -> Result<Vec<VmSummary>> {
        let view = self
            .call(
                "CreateContainerView",
                &format!(
                    r#"<_this type="ViewManager">{}</_this><container type="Folder">{}</container><type>VirtualMachine</type><recursive>true</recursive>"#,
                    self.view_manager, self.root_folder
                ),
            )
            .await?;
        let view = view
            .child("returnval")
            .map(|n| n.text.clone())
            .unwrap_or_default();
        let result = self
            .call(
                "RetrievePropertiesEx",
                &format!(
                    r#"<_this type="PropertyCollector">{}</_this><specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>config.instanceUuid</pathSet><pathSet>runtime.powerState</pathSet></propSet><objectSet><obj type="ContainerView">{}</obj><skip>true</skip><selectSet xsi:type="TraversalSpec"><name>traverseView</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet><options></options>"#,
                    self.property_collector, view
                ),
            )
            .await;
        let _ = self
            .call(
                "DestroyView",
                &format!(r#"<_this type="ContainerView">{view}</_this>"#),
            )
            .await;
        let result = result?;
        let mut vms = Vec::new();
        if let Some(returnval) = result.child("returnval") {
            for object in returnval.children_named("objects") {
                let mut vm = VmSummary {
                    moref: object
                        .child("obj")
                        .map(|n| n.text.clone())
                        .unwrap_or_default(),
                    name: String::new(),
                    instance_uuid: String::new(),
                    power_state: String::new(),
                };
                for prop in object.children_named("propSet") {
                    let name = prop.child("name").map(|n| n.text.as_str()).unwrap_or("");
                    let value = prop
                        .child("val")
                        .map(|n| n.text.clone())
                        .unwrap_or_default();
                    match name {
                        "name" => vm.name = value,
                        "config.instanceUuid" => vm.instance_uuid = value,
                        "runtime.powerState" => vm.power_state = value,
                        _ => {}
                    }
                }
                vms.push(vm);
            }
        }
        vms.sort();
        Ok(vms)
    }

    /// Renames a managed entity (a VM or folder) and waits for the task.
    pub async fn rename(&mut self, kind: &str, moref: &str, new_name: &str) -> Result<()> {
        let inner = format!(
            r#"<_this type="{kind}">{moref}</_this><newName>{}</newName>"#,
            xml_escape(new_name)
        );
        self.run_task("Rename_Task", &inner).await
    }

    /// Powers a VM off and waits for the task (fails with `InvalidPowerState` if it is off).
    pub async fn power_off_vm(&mut self, moref: &str) -> Result<()> {
        let inner = format!(r#"<_this type="VirtualMachine">{moref}</_this>"#);
        self.run_task("PowerOffVM_Task", &inner).await
    }

    /// Powers a VM on and waits for the task.
    pub async fn power_on_vm(&mut self, moref: &str) -> Result<()> {
        let inner = format!(r#"<_this type="VirtualMachine">{moref}</_this>"#);
        self.run_task("PowerOnVM_Task", &inner).await
    }

    /// Deletes a VM from the inventory and disk, powering it off first if needed (the
    /// simulator starts its VMs powered on, and vCenter refuses to destroy a running VM).
    pub async fn destroy_vm(&mut self, moref: &str) -> Result<()> {
        match self.power_off_vm(moref).await {
            Ok(()) => {}
            Err(HarnessError::SoapFault { fault, .. }) if fault.contains("InvalidPowerState") => {}
            Err(e) => return Err(e),
        }
        let inner = format!(r#"<_this type="VirtualMachine">{moref}</_this>"#);
        self.run_task("Destroy_Task", &inner).await
    }

    /// Calls a `*_Task` method and waits (bounded) until the task succeeds; a failed task is a
    /// `SoapFault` naming the fault type.
    pub async fn run_task(&mut self, method: &str, inner: &str) -> Result<()> {
        let response = self.call(method, inner).await?;
        let task = response
            .child("returnval")
            .map(|n| n.text.clone())
            .unwrap_or_default();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let info = self.task_info(&task).await?;
            let state = info
                .child("state")
                .map(|n| n.text.clone())
                .unwrap_or_default();
            match state.as_str() {
                "success" => return Ok(()),
                "error" => {
                    let fault = info.child("error").and_then(|e| e.child("fault"));
                    let kind = fault
                        .and_then(|f| f.attr("type"))
                        .unwrap_or("unknown fault");
                    let message = info
                        .child("error")
                        .and_then(|e| e.child("localizedMessage"))
                        .map(|n| n.text.as_str())
                        .unwrap_or("");
                    return Err(HarnessError::SoapFault {
                        method: method.to_string(),
                        fault: format!("task {task} failed: {kind} {message}")
                            .trim()
                            .to_string(),
                    });
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(HarnessError::SoapFault {
                        method: method.to_string(),
                        fault: format!("task {task} still {state:?} after 60s"),
                    });
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    async fn task_info(&mut self, task: &str) -> Result<XmlNode> {
        let inner = format!(
            r#"<_this type="PropertyCollector">{}</_this><specSet><propSet><type>Task</type><pathSet>info</pathSet></propSet><objectSet><obj type="Task">{task}</obj><skip>false</skip></objectSet></specSet><options></options>"#,
            self.property_collector
        );
        let result = self.call("RetrievePropertiesEx", &inner).await?;
        result
            .find("val")
            .cloned()
            .ok_or_else(|| HarnessError::Response {
                url: self.url.clone(),
                reason: format!("no info for task {task}"),
            })
    }

    /// The open sessions (`SessionManager.sessionList`) as (key, user name) pairs, to check that
    /// a client logs out or to pick a session to terminate.
    pub async fn sessions(&mut self) -> Result<Vec<(String, String)>> {
        let inner = format!(
            r#"<_this type="PropertyCollector">{}</_this><specSet><propSet><type>SessionManager</type><pathSet>sessionList</pathSet></propSet><objectSet><obj type="SessionManager">{}</obj><skip>false</skip></objectSet></specSet><options></options>"#,
            self.property_collector, self.session_manager
        );
        let result = self.call("RetrievePropertiesEx", &inner).await?;
        let mut sessions = Vec::new();
        if let Some(val) = result.find("val") {
            for session in val.children_named("UserSession") {
                let key = session
                    .child("key")
                    .map(|n| n.text.clone())
                    .unwrap_or_default();
                let user = session
                    .child("userName")
                    .map(|n| n.text.clone())
                    .unwrap_or_default();
                sessions.push((key, user));
            }
        }
        sessions.sort();
        Ok(sessions)
    }

    /// Terminates other sessions by key (`SessionManager.TerminateSession`), as an
    /// administrator or an idle timeout would.
    pub async fn terminate_sessions(&mut self, keys: &[&str]) -> Result<()> {
        let mut inner = format!(
            r#"<_this type="SessionManager">{}</_this>"#,
            self.session_manager
        );
        for key in keys {
            inner.push_str(&format!("<sessionId>{}</sessionId>", xml_escape(key)));
        }
        self.call("TerminateSession", &inner).await?;
        Ok(())
    }

    /// Logs out (sessions left open exhaust a real vCenter's session limit).
    pub async fn logout(mut self) -> Result<()> {
        let inner = format!(
            r#"<_this type="SessionManager">{}</_this>"#,
            self.session_manager
        );
        self.call("Logout", &inner).await?;
        Ok(())
    }
}

/// Escapes text for XML element content and attribute values.
pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
