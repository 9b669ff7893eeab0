//! Trust on first use for vCenter certificates.
//!
//! The first successful connection to a host records the SHA-256 thumbprint of the certificate
//! it presented; every later connection pins it. A changed certificate is refused (hypervisor
//! `ERROR`, the message names both thumbprints) until the operator re-trusts the host with
//! `bgw-agent vcenter retrust`, which forgets the recorded thumbprint so the next connection
//! records the new one.

use std::collections::BTreeMap;

use vsphere_client::{Thumbprint, Trust};

use crate::state::Store;

/// Store key of the recorded thumbprints (`host` → thumbprint).
pub const TRUST_KEY: &str = "vcenter_trusted_thumbprints";

/// The thumbprints recorded so far, keyed by the hypervisor host as configured.
#[derive(Clone)]
pub struct TrustStore {
    store: Store,
}

impl TrustStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    fn all(&self) -> BTreeMap<String, String> {
        self.store
            .value::<BTreeMap<String, String>>(TRUST_KEY)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// The thumbprint pinned for `host`, if one was recorded.
    pub fn pinned(&self, host: &str) -> Option<Thumbprint> {
        self.all().get(&key(host)).and_then(|t| t.parse().ok())
    }

    /// How to trust `host` now: its pin, or trust on first use when none is recorded.
    pub fn trust_for(&self, host: &str) -> Trust {
        match self.pinned(host) {
            Some(pin) => Trust::Thumbprint(pin),
            None => Trust::TrustOnFirstUse,
        }
    }

    /// Records the thumbprint seen on a first connection.
    pub fn record(&self, host: &str, thumbprint: Thumbprint) -> crate::Result<()> {
        let mut all = self.all();
        all.insert(key(host), thumbprint.to_string());
        self.store.set_value(TRUST_KEY, Some(&all))
    }

    /// Forgets the thumbprints of `host` (or of every host with `None`): the next connection
    /// trusts what it sees and records it.
    pub fn forget(&self, host: Option<&str>) -> crate::Result<Vec<String>> {
        let mut all = self.all();
        let removed: Vec<String> = match host {
            Some(h) => all.remove(&key(h)).map(|_| key(h)).into_iter().collect(),
            None => std::mem::take(&mut all).into_keys().collect(),
        };
        self.store.set_value(TRUST_KEY, Some(&all))?;
        Ok(removed)
    }
}

/// Host names are case-insensitive; `vc` and `vc:443` are the same endpoint.
fn key(host: &str) -> String {
    let h = host.trim().to_ascii_lowercase();
    h.strip_suffix(":443").map(str::to_string).unwrap_or(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_pins_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let trust = TrustStore::new(store);
        assert!(matches!(trust.trust_for("vc"), Trust::TrustOnFirstUse));
        let t = Thumbprint::of_der(b"certificate");
        trust.record("VC:443", t).unwrap();
        assert_eq!(trust.pinned("vc"), Some(t));
        assert!(matches!(trust.trust_for("vc"), Trust::Thumbprint(p) if p == t));
        assert_eq!(trust.pinned("vc:8443"), None);
        assert_eq!(trust.forget(Some("vc")).unwrap(), vec!["vc".to_string()]);
        assert_eq!(trust.pinned("vc"), None);
    }
}
