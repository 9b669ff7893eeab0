//! A tolerant, bounded SOAP response reader.
//!
//! Responses are read as a stream of events with [`quick_xml`]. Elements whose
//! local name is one of the "record" names (for example `objects` in a
//! `RetrievePropertiesEx` answer) are cut out as small trees and handed to a
//! callback as soon as they are complete, so a 10,000-VM answer never sits in
//! memory at once. Everything else forms a small remainder tree (the envelope,
//! `token`, `version`, faults).
//!
//! Virtual devices other than disks are skipped without being built: they are
//! most of a VM's answer and nothing of them is used.
//!
//! Namespace prefixes are resolved, unknown elements are kept but ignored by
//! the callers, DTDs are skipped and only the XML built-in entities and
//! character references are decoded: there is no entity expansion. Every tree
//! has a size limit and a depth limit.

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::error::{Error, Result};

const XSI_NS: &[u8] = b"http://www.w3.org/2001/XMLSchema-instance";

/// Limits applied while reading one response.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest size, in bytes of names and text, of one record or of the remainder.
    pub max_tree_bytes: usize,
    /// Deepest element nesting accepted.
    pub max_depth: usize,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tree_bytes: 32 << 20,
            max_depth: 64,
            max_response_bytes: 2 << 30,
        }
    }
}

/// One element: local name, the two attributes vSphere uses, text and children.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// Local name, without namespace prefix.
    pub name: String,
    /// `xsi:type`, whatever prefix the server bound the XSI namespace to.
    pub xsi_type: Option<String>,
    /// The plain `type` attribute (the type of a managed object reference).
    pub type_attr: Option<String>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the first child with this name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// Follows a path of child names.
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        let mut n = self;
        for p in path {
            n = n.child(p)?;
        }
        Some(n)
    }

    /// Depth-first search for the first descendant with this local name.
    pub fn find(&self, name: &str) -> Option<&Node> {
        for c in &self.children {
            if c.name == name {
                return Some(c);
            }
            if let Some(f) = c.find(name) {
                return Some(f);
            }
        }
        None
    }
}

struct Building {
    stack: Vec<Node>,
    bytes: usize,
}

/// Reads a response from `reader`. Complete elements named in `records` are
/// passed to `on_record` and not kept; the rest is returned as a tree rooted at
/// the document element.
pub fn read_stream<R: BufRead>(
    reader: R,
    records: &[&str],
    limits: Limits,
    mut on_record: impl FnMut(Node) -> Result<()>,
) -> Result<Node> {
    let mut reader = NsReader::from_reader(reader);
    {
        let cfg = reader.config_mut();
        cfg.trim_text(false);
        cfg.expand_empty_elements = true;
        cfg.check_end_names = true;
    }
    let mut buf = Vec::with_capacity(8192);
    let mut remainder = Building {
        stack: Vec::new(),
        bytes: 0,
    };
    let mut record: Option<Building> = None;
    let mut root: Option<Node> = None;
    // Depth inside an element being skipped (0: not skipping).
    let mut skipping = 0usize;
    loop {
        buf.clear();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| Error::malformed(format!("XML: {e}")))?;
        if skipping > 0 {
            match event {
                Event::Start(_) => skipping += 1,
                Event::End(_) => skipping -= 1,
                Event::Eof => return Err(Error::malformed("response ended inside an element")),
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(start) => {
                let node = open(&reader, &start)?;
                if is_unused_device(&node) {
                    // Most of a VM's devices are not disks: skip them unbuilt.
                    skipping = 1;
                    continue;
                }
                let depth = remainder.stack.len() + record.as_ref().map_or(0, |r| r.stack.len());
                if depth >= limits.max_depth {
                    return Err(Error::malformed(format!(
                        "elements nested deeper than {}",
                        limits.max_depth
                    )));
                }
                let add = node.name.len() + 16;
                if let Some(r) = record.as_mut() {
                    r.bytes += add;
                    check(r.bytes, limits)?;
                    r.stack.push(node);
                } else if records.contains(&node.name.as_str()) && !remainder.stack.is_empty() {
                    record = Some(Building {
                        stack: vec![node],
                        bytes: add,
                    });
                } else {
                    remainder.bytes += add;
                    check(remainder.bytes, limits)?;
                    remainder.stack.push(node);
                }
            }
            Event::End(_) => {
                if let Some(r) = record.as_mut() {
                    let node = r.stack.pop().expect("open record element");
                    match r.stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => {
                            record = None;
                            on_record(node)?;
                        }
                    }
                } else {
                    let node = remainder
                        .stack
                        .pop()
                        .ok_or_else(|| Error::malformed("unbalanced end tag"))?;
                    match remainder.stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => root = Some(node),
                    }
                }
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| Error::malformed(format!("XML text: {e}")))?;
                append_text(&mut remainder, record.as_mut(), &text, limits)?;
            }
            Event::CData(c) => {
                let text = String::from_utf8_lossy(&c);
                append_text(&mut remainder, record.as_mut(), &text, limits)?;
            }
            Event::Eof => break,
            // Declarations, comments, processing instructions and DTDs carry
            // nothing we use; DTDs in particular are never interpreted.
            _ => {}
        }
        if reader.buffer_position() > limits.max_response_bytes {
            return Err(Error::malformed(format!(
                "response larger than {} bytes",
                limits.max_response_bytes
            )));
        }
    }
    if record.is_some() || !remainder.stack.is_empty() {
        return Err(Error::malformed("response ended inside an element"));
    }
    root.ok_or_else(|| Error::malformed("empty response"))
}

/// A virtual device that is neither a disk nor a controller (`VirtualDevice` in a device
/// array, `device` inside a whole `config.hardware`): nothing of it is used. Controllers are
/// kept because a restore recreates the controllers its disks hang on.
fn is_unused_device(n: &Node) -> bool {
    (n.name == "VirtualDevice" || n.name == "device")
        && n.xsi_type
            .as_deref()
            .is_some_and(|t| t != "VirtualDisk" && !t.ends_with("Controller"))
}

fn check(bytes: usize, limits: Limits) -> Result<()> {
    if bytes > limits.max_tree_bytes {
        return Err(Error::malformed(format!(
            "an element is larger than {} bytes",
            limits.max_tree_bytes
        )));
    }
    Ok(())
}

fn append_text(
    remainder: &mut Building,
    record: Option<&mut Building>,
    text: &str,
    limits: Limits,
) -> Result<()> {
    let target = match record {
        Some(r) => r,
        None => remainder,
    };
    if let Some(top) = target.stack.last_mut() {
        target.bytes += text.len();
        check(target.bytes, limits)?;
        top.text.push_str(text);
    }
    Ok(())
}

fn open<R>(reader: &NsReader<R>, start: &BytesStart<'_>) -> Result<Node> {
    let name = std::str::from_utf8(start.local_name().as_ref())
        .map_err(|_| Error::malformed("element name is not UTF-8"))?
        .to_string();
    let mut node = Node {
        name,
        ..Node::default()
    };
    for attr in start.attributes().with_checks(false) {
        let attr = attr.map_err(|e| Error::malformed(format!("XML attribute: {e}")))?;
        let (ns, local) = reader.resolve_attribute(attr.key);
        if local.as_ref() != b"type" {
            continue;
        }
        let value = attr
            .unescape_value()
            .map_err(|e| Error::malformed(format!("XML attribute: {e}")))?
            .into_owned();
        match ns {
            ResolveResult::Bound(ns) if ns.as_ref() == XSI_NS => {
                // Strip a namespace prefix from the type name (`xsd:string`).
                let bare = value.rsplit(':').next().unwrap_or(&value).to_string();
                node.xsi_type = Some(bare);
            }
            ResolveResult::Unbound => node.type_attr = Some(value),
            _ => {}
        }
    }
    Ok(node)
}

/// Escapes text for an XML element body or attribute value.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// Reads a whole small document (no records).
pub fn read_document(bytes: &[u8], limits: Limits) -> Result<Node> {
    read_stream(bytes, &[], limits, |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_any_xsi_prefix_and_moref_type() {
        let doc = br#"<?xml version="1.0"?><e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><R xmlns="urn:vim25"><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ManagedObjectReference" type="HostSystem">host-1</val><v2 xmlns:x="http://www.w3.org/2001/XMLSchema-instance" x:type="xsd:string">a &amp; b&#xA;</v2></R></e:Body></e:Envelope>"#;
        let root = read_document(doc, Limits::default()).unwrap();
        assert_eq!(root.name, "Envelope");
        let r = root.at(&["Body", "R"]).unwrap();
        let val = r.child("val").unwrap();
        assert_eq!(val.xsi_type.as_deref(), Some("ManagedObjectReference"));
        assert_eq!(val.type_attr.as_deref(), Some("HostSystem"));
        assert_eq!(val.text, "host-1");
        let v2 = r.child("v2").unwrap();
        assert_eq!(v2.xsi_type.as_deref(), Some("string"));
        assert_eq!(v2.type_attr, None);
        assert_eq!(v2.text, "a & b\n");
    }

    #[test]
    fn records_are_streamed_out_of_the_tree() {
        let doc = b"<a><r><x>1</x></r><t>tok</t><r><x>2</x></r></a>";
        let mut seen = Vec::new();
        let root = read_stream(&doc[..], &["r"], Limits::default(), |n| {
            seen.push(n.child_text("x").unwrap().to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["1", "2"]);
        assert_eq!(root.children.len(), 1);
        assert_eq!(root.child_text("t"), Some("tok"));
    }

    #[test]
    fn devices_other_than_disks_are_skipped() {
        let doc = br#"<val xmlns:x="http://www.w3.org/2001/XMLSchema-instance"><VirtualDevice x:type="VirtualCdrom"><key>3000</key><device>1</device><deep><deeper/></deep></VirtualDevice><VirtualDevice x:type="VirtualDisk"><key>2000</key></VirtualDevice><VirtualDevice x:type="VirtualE1000"><key>4000</key></VirtualDevice></val>"#;
        let root = read_document(doc, Limits::default()).unwrap();
        let keys: Vec<&str> = root
            .children
            .iter()
            .filter_map(|d| d.child_text("key"))
            .collect();
        assert_eq!(keys, ["2000"]);
        // A skipped element must still be closed.
        let cut = br#"<val xmlns:x="http://www.w3.org/2001/XMLSchema-instance"><VirtualDevice x:type="VirtualE1000"><key>1"#;
        assert!(read_document(cut, Limits::default()).is_err());
    }

    #[test]
    fn entities_are_not_expanded_and_limits_hold() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>"#;
        assert!(read_document(bomb, Limits::default()).is_err());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(read_document(deep.as_bytes(), Limits::default()).is_err());
        let big = format!("<a>{}</a>", "x".repeat(2000));
        let small = Limits {
            max_tree_bytes: 1000,
            ..Limits::default()
        };
        assert!(read_document(big.as_bytes(), small).is_err());
        assert!(read_document(b"<a><b></a>", Limits::default()).is_err());
        assert!(read_document(b"<a>", Limits::default()).is_err());
    }
}
