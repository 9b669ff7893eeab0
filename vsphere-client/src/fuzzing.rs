//! Entry point for the fuzz target in `fuzz/`: the whole path an untrusted
//! SOAP answer takes through this crate. Not part of the supported API.

use crate::inventory::{RawVm, Topology};
use crate::soap::ObjectContent;
use crate::xml::{self, Limits};

/// Parses `data` as a SOAP answer the way the inventory, topology and watch
/// code do; must never panic, loop or allocate without bound.
pub fn soap_response(data: &[u8]) {
    let limits = Limits {
        max_tree_bytes: 1 << 20,
        max_depth: 64,
        max_response_bytes: 4 << 20,
    };
    let topo = Topology::default();
    let res = xml::read_stream(data, &["objects", "objectSet"], limits, |node| {
        if node.name == "objects" {
            let o = ObjectContent::from_objects(node)?;
            let _ = RawVm::from_object(&o).resolve(&topo);
            let _ = Topology::from_objects(vec![o]);
        } else {
            let _ = crate::watch::parse_update_for_fuzzing(node);
        }
        Ok(())
    });
    if let Ok(root) = res {
        let _ = crate::transport::body_of_for_fuzzing(root);
    }
}
