//! vim25 request bodies and the few answer shapes shared by several calls.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::xml::{escape, Node};

/// A managed object reference: its type (`VirtualMachine`) and id (`vm-42`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MoRef {
    pub kind: String,
    pub value: String,
}

impl MoRef {
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        MoRef {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// Reads a reference from an element with a `type` attribute.
    pub(crate) fn from_node(n: &Node) -> Option<Self> {
        let kind = n.type_attr.clone().or_else(|| n.xsi_type.clone())?;
        let value = n.text.trim();
        (!value.is_empty()).then(|| MoRef::new(kind, value))
    }

    pub(crate) fn xml(&self, element: &str) -> String {
        format!(
            r#"<{element} type="{}">{}</{element}>"#,
            escape(&self.kind),
            escape(&self.value)
        )
    }
}

/// The managers of the service content this client uses.
#[derive(Debug, Clone)]
pub(crate) struct ServiceContent {
    pub root_folder: MoRef,
    pub property_collector: MoRef,
    pub view_manager: MoRef,
    pub session_manager: MoRef,
    /// `SearchIndex`, which resolves inventory paths (absent from some recorded answers).
    pub search_index: Option<MoRef>,
    pub about_full_name: String,
    pub api_version: String,
    pub instance_uuid: String,
}

impl ServiceContent {
    pub(crate) fn parse(resp: &Node) -> Result<Self> {
        let rv = resp
            .child("returnval")
            .ok_or_else(|| Error::malformed("RetrieveServiceContent without returnval"))?;
        let moref = |name: &str| {
            rv.child(name)
                .and_then(MoRef::from_node)
                .ok_or_else(|| Error::malformed(format!("service content without {name}")))
        };
        let about = rv.child("about");
        let about_text = |n: &str| {
            about
                .and_then(|a| a.child_text(n))
                .unwrap_or_default()
                .to_string()
        };
        Ok(ServiceContent {
            root_folder: moref("rootFolder")?,
            property_collector: moref("propertyCollector")?,
            view_manager: moref("viewManager")?,
            session_manager: moref("sessionManager")?,
            search_index: rv.child("searchIndex").and_then(MoRef::from_node),
            about_full_name: about_text("fullName"),
            api_version: about_text("apiVersion"),
            instance_uuid: about_text("instanceUuid"),
        })
    }
}

/// Wraps a method element in a SOAP envelope.
pub(crate) fn envelope(method: &str) -> String {
    let mut s = String::with_capacity(method.len() + 300);
    s.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Body>"#);
    s.push_str(method);
    s.push_str("</soapenv:Body></soapenv:Envelope>");
    s
}

/// `<Method xmlns="urn:vim25"><_this .../>...</Method>` in an envelope.
pub(crate) fn call(method: &str, this: &MoRef, args: &str) -> String {
    envelope(&format!(
        r#"<{method} xmlns="urn:vim25">{}{args}</{method}>"#,
        this.xml("_this")
    ))
}

pub(crate) fn retrieve_service_content() -> String {
    call(
        "RetrieveServiceContent",
        &MoRef::new("ServiceInstance", "ServiceInstance"),
        "",
    )
}

/// A `RetrievePropertiesEx` spec for some properties of one object.
pub(crate) fn object_spec(obj: &MoRef, paths: &[&str]) -> String {
    let mut s = format!(
        "<specSet><propSet><type>{}</type><all>false</all>",
        escape(&obj.kind)
    );
    for p in paths {
        let _ = write!(s, "<pathSet>{p}</pathSet>");
    }
    let _ = write!(
        s,
        "</propSet><objectSet>{}<skip>false</skip></objectSet></specSet>",
        obj.xml("obj")
    );
    s
}

pub(crate) fn text_arg(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

/// A property filter spec over the members of a container view.
pub(crate) fn view_filter_spec(view: &MoRef, props: &[(&str, &[&str])], element: &str) -> String {
    let mut s = format!("<{element}>");
    for (kind, paths) in props {
        let _ = write!(s, "<propSet><type>{kind}</type><all>false</all>");
        for p in *paths {
            let _ = write!(s, "<pathSet>{p}</pathSet>");
        }
        s.push_str("</propSet>");
    }
    let _ = write!(
        s,
        r#"<objectSet>{}<skip>true</skip><selectSet xsi:type="TraversalSpec"><name>view</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></{element}>"#,
        view.xml("obj")
    );
    s
}

/// One object of a `RetrievePropertiesEx` answer or of an update set.
#[derive(Debug, Clone)]
pub(crate) struct ObjectContent {
    pub obj: MoRef,
    /// (property path, value element)
    pub props: Vec<(String, Node)>,
}

impl ObjectContent {
    /// Reads `<objects><obj/><propSet><name/><val/></propSet>...</objects>`.
    pub(crate) fn from_objects(n: Node) -> Result<Self> {
        let mut obj = None;
        let mut props = Vec::new();
        for c in n.children {
            match c.name.as_str() {
                "obj" => obj = MoRef::from_node(&c),
                "propSet" => {
                    let mut name = None;
                    let mut val = None;
                    for p in c.children {
                        match p.name.as_str() {
                            "name" => name = Some(p.text),
                            "val" => val = Some(p),
                            _ => {}
                        }
                    }
                    if let (Some(name), Some(val)) = (name, val) {
                        props.push((name, val));
                    }
                }
                _ => {}
            }
        }
        let obj = obj.ok_or_else(|| Error::malformed("object content without obj"))?;
        Ok(ObjectContent { obj, props })
    }

    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.props.iter().find(|(n, _)| n == path).map(|(_, v)| v)
    }
}
