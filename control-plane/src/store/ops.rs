//! Record operations of the store: the narrow API the handlers and the gateway side use.

use chrono::{DateTime, Utc};

use super::records::*;
use super::{abort, decode, encode, page, tx_get, tx_put, Store, StoreError, Tx, TxResult};

/// Which tree a resource ARN belongs to, from its resource type (`gateway/`, `hypervisor/`, `vm/`).
fn resource_kind(arn: &str) -> Option<&'static str> {
    let resource = arn.rsplit(':').next()?;
    match resource.split('/').next()? {
        "gateway" => Some("gateway"),
        "hypervisor" => Some("hypervisor"),
        "vm" => Some("virtual machine"),
        _ => None,
    }
}

pub(crate) fn vm_index_key(hypervisor_arn: &str, instance_uuid: &str) -> String {
    format!("{hypervisor_arn}\0{instance_uuid}")
}

impl Store {
    // ---- activation keys -------------------------------------------------------------

    pub fn insert_activation_key(&self, record: &ActivationKeyRecord) -> Result<(), StoreError> {
        self.keys.insert(record.key.as_bytes(), encode(record))?;
        Ok(())
    }

    pub fn get_activation_key(&self, key: &str) -> Result<Option<ActivationKeyRecord>, StoreError> {
        self.keys
            .get(key.as_bytes())?
            .map(|v| decode(key.as_bytes(), &v))
            .transpose()
    }

    // ---- gateways --------------------------------------------------------------------

    /// Creates a gateway, consuming `activation_key` in the same transaction.
    ///
    /// An unknown or expired key is `StoreError::Invalid` (`ValidationException`); a key that
    /// already activated a gateway is `StoreError::Conflict` (`ConflictException`, HTTP 409). The
    /// model declares no conflict for `CreateGateway`, but the SDKs parse any modelled-elsewhere
    /// error code into their generic client error, and a reused key is a conflict with state.
    pub fn create_gateway(
        &self,
        activation_key: &str,
        now: DateTime<Utc>,
        gateway: &GatewayRecord,
        tags: &Tags,
    ) -> Result<(), StoreError> {
        self.tx(|tx| {
            let Some(mut key) = tx_get::<ActivationKeyRecord>(tx.keys, activation_key)? else {
                return abort(StoreError::Invalid(format!(
                    "activation key {activation_key} is not valid: get a new key from the gateway"
                )));
            };
            if let KeyState::Consumed { gateway_arn } = &key.state {
                return abort(StoreError::Conflict(format!(
                    "activation key {activation_key} was already used to activate {gateway_arn}; \
                     a key activates one gateway once"
                )));
            }
            if key.expires <= now {
                return abort(StoreError::Invalid(format!(
                    "activation key {activation_key} expired at {}; get a new key from the gateway",
                    key.expires.to_rfc3339()
                )));
            }
            key.state = KeyState::Consumed {
                gateway_arn: gateway.arn.clone(),
            };
            tx_put(tx.keys, activation_key, &key)?;
            tx_put(tx.gateways, &gateway.arn, gateway)?;
            if !tags.is_empty() {
                tx_put(tx.tags, &gateway.arn, tags)?;
            }
            Ok(())
        })
    }

    pub fn get_gateway(&self, arn: &str) -> Result<GatewayRecord, StoreError> {
        match self.gateways.get(arn.as_bytes())? {
            Some(v) => decode(arn.as_bytes(), &v),
            None => Err(StoreError::not_found("gateway", arn)),
        }
    }

    /// Changes a gateway in place; `change` may refuse with an error.
    pub fn update_gateway(
        &self,
        arn: &str,
        change: impl Fn(&mut GatewayRecord) -> Result<(), StoreError>,
    ) -> Result<GatewayRecord, StoreError> {
        self.tx(|tx| {
            let mut gw = require_gateway(tx, arn)?;
            if let Err(e) = change(&mut gw) {
                return abort(e);
            }
            tx_put(tx.gateways, arn, &gw)?;
            Ok(gw.clone())
        })
    }

    /// Deletes a gateway, its tags and schedule, and releases its hypervisor.
    pub fn delete_gateway(&self, arn: &str) -> Result<(), StoreError> {
        self.tx(|tx| {
            let gw = require_gateway(tx, arn)?;
            if let Some(hv_arn) = &gw.hypervisor_arn {
                if let Some(mut hv) = tx_get::<HypervisorRecord>(tx.hypervisors, hv_arn)? {
                    hv.gateway_arn = None;
                    hv.state = HypervisorState::Pending;
                    tx_put(tx.hypervisors, hv_arn, &hv)?;
                }
            }
            tx.gateways.remove(arn.as_bytes())?;
            tx.tags.remove(arn.as_bytes())?;
            tx.schedules.remove(arn.as_bytes())?;
            Ok(())
        })
    }

    pub fn list_gateways(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<GatewayRecord>, Option<String>), StoreError> {
        page(&self.gateways, after, limit, |_: &GatewayRecord| true)
    }

    /// Associates a gateway with a hypervisor. Either one already associated is a conflict.
    pub fn associate(&self, gateway_arn: &str, hypervisor_arn: &str) -> Result<(), StoreError> {
        self.tx(|tx| {
            let mut gw = require_gateway(tx, gateway_arn)?;
            let mut hv = require_hypervisor(tx, hypervisor_arn)?;
            if let Some(current) = &gw.hypervisor_arn {
                return abort(StoreError::Conflict(format!(
                    "gateway {gateway_arn} is already associated with hypervisor {current}; \
                     disassociate it first"
                )));
            }
            if let Some(other) = &hv.gateway_arn {
                return abort(StoreError::Conflict(format!(
                    "hypervisor {hypervisor_arn} is already in use by gateway {other}"
                )));
            }
            gw.hypervisor_arn = Some(hypervisor_arn.to_owned());
            hv.gateway_arn = Some(gateway_arn.to_owned());
            tx_put(tx.gateways, gateway_arn, &gw)?;
            tx_put(tx.hypervisors, hypervisor_arn, &hv)?;
            Ok(())
        })
    }

    pub fn disassociate(&self, gateway_arn: &str) -> Result<(), StoreError> {
        self.tx(|tx| {
            let mut gw = require_gateway(tx, gateway_arn)?;
            let Some(hv_arn) = gw.hypervisor_arn.take() else {
                return abort(StoreError::Conflict(format!(
                    "gateway {gateway_arn} is not associated with a hypervisor"
                )));
            };
            if let Some(mut hv) = tx_get::<HypervisorRecord>(tx.hypervisors, &hv_arn)? {
                hv.gateway_arn = None;
                hv.state = HypervisorState::Pending;
                tx_put(tx.hypervisors, &hv_arn, &hv)?;
            }
            tx_put(tx.gateways, gateway_arn, &gw)?;
            Ok(())
        })
    }

    // ---- bandwidth schedules ---------------------------------------------------------

    pub fn get_bandwidth_schedule(
        &self,
        gateway_arn: &str,
    ) -> Result<Vec<BandwidthInterval>, StoreError> {
        self.get_gateway(gateway_arn)?;
        match self.schedules.get(gateway_arn.as_bytes())? {
            Some(v) => decode(gateway_arn.as_bytes(), &v),
            None => Ok(Vec::new()),
        }
    }

    /// Replaces the whole schedule of a gateway.
    pub fn put_bandwidth_schedule(
        &self,
        gateway_arn: &str,
        intervals: &[BandwidthInterval],
    ) -> Result<(), StoreError> {
        self.tx(|tx| {
            require_gateway(tx, gateway_arn)?;
            tx_put(tx.schedules, gateway_arn, &intervals)?;
            Ok(())
        })
    }

    // ---- hypervisors -----------------------------------------------------------------

    pub fn insert_hypervisor(&self, hv: &HypervisorRecord, tags: &Tags) -> Result<(), StoreError> {
        self.tx(|tx| {
            tx_put(tx.hypervisors, &hv.arn, hv)?;
            if !tags.is_empty() {
                tx_put(tx.tags, &hv.arn, tags)?;
            }
            Ok(())
        })
    }

    pub fn get_hypervisor(&self, arn: &str) -> Result<HypervisorRecord, StoreError> {
        match self.hypervisors.get(arn.as_bytes())? {
            Some(v) => decode(arn.as_bytes(), &v),
            None => Err(StoreError::not_found("hypervisor", arn)),
        }
    }

    pub fn update_hypervisor(
        &self,
        arn: &str,
        change: impl Fn(&mut HypervisorRecord) -> Result<(), StoreError>,
    ) -> Result<HypervisorRecord, StoreError> {
        self.tx(|tx| update_hypervisor_in(tx, arn, &change))
    }

    /// Deletes a hypervisor with its VMs and tags. A hypervisor a gateway uses is a conflict.
    pub fn delete_hypervisor(&self, arn: &str) -> Result<(), StoreError> {
        let prefix = vm_index_key(arn, "");
        let vm_entries: Vec<(Vec<u8>, Vec<u8>)> = self
            .vm_index
            .scan_prefix(prefix.as_bytes())
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()?;
        self.tx(|tx| {
            let hv = require_hypervisor(tx, arn)?;
            if let Some(gw) = &hv.gateway_arn {
                return abort(StoreError::Conflict(format!(
                    "hypervisor {arn} is in use by gateway {gw}; disassociate the gateway first"
                )));
            }
            for (index_key, vm_arn) in &vm_entries {
                tx.vm_index.remove(index_key.as_slice())?;
                tx.vms.remove(vm_arn.as_slice())?;
                tx.tags.remove(vm_arn.as_slice())?;
            }
            tx.hypervisors.remove(arn.as_bytes())?;
            tx.tags.remove(arn.as_bytes())?;
            Ok(())
        })
    }

    pub fn list_hypervisors(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<HypervisorRecord>, Option<String>), StoreError> {
        page(&self.hypervisors, after, limit, |_: &HypervisorRecord| true)
    }

    // ---- virtual machines ------------------------------------------------------------

    /// Inserts or updates the VM with this vCenter instance UUID under a hypervisor.
    /// `new_arn` is used only when the VM is new. Returns the stored record.
    pub fn upsert_vm(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        new_arn: &str,
        change: impl Fn(&mut VmRecord),
    ) -> Result<VmRecord, StoreError> {
        self.tx(|tx| upsert_vm_in(tx, hypervisor_arn, instance_uuid, new_arn, &change))
    }

    pub fn get_vm(&self, arn: &str) -> Result<VmRecord, StoreError> {
        match self.vms.get(arn.as_bytes())? {
            Some(v) => decode(arn.as_bytes(), &v),
            None => Err(StoreError::not_found("virtual machine", arn)),
        }
    }

    pub fn list_vms(
        &self,
        hypervisor_arn: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<VmRecord>, Option<String>), StoreError> {
        page(&self.vms, after, limit, |vm: &VmRecord| {
            hypervisor_arn.is_none_or(|h| vm.hypervisor_arn == h)
        })
    }

    // ---- tags ------------------------------------------------------------------------

    /// Tags of an existing resource (gateway, hypervisor or VM).
    pub fn get_tags(&self, arn: &str) -> Result<Tags, StoreError> {
        self.tx(|tx| {
            require_resource(tx, arn)?;
            Ok(tx_get::<Tags>(tx.tags, arn)?.unwrap_or_default())
        })
    }

    /// Adds or overwrites tags; the result may hold at most `max_tags`.
    pub fn tag_resource(&self, arn: &str, add: &Tags, max_tags: usize) -> Result<(), StoreError> {
        self.tx(|tx| tag_resource_in(tx, arn, add, max_tags))
    }

    pub fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), StoreError> {
        self.tx(|tx| untag_resource_in(tx, arn, keys))
    }
}

// ---- steps inside a transaction ----------------------------------------------------------

pub(crate) fn update_hypervisor_in(
    tx: &Tx<'_>,
    arn: &str,
    change: &dyn Fn(&mut HypervisorRecord) -> Result<(), StoreError>,
) -> TxResult<HypervisorRecord> {
    let mut hv = require_hypervisor(tx, arn)?;
    if let Err(e) = change(&mut hv) {
        return abort(e);
    }
    tx_put(tx.hypervisors, arn, &hv)?;
    Ok(hv)
}

pub(crate) fn upsert_vm_in(
    tx: &Tx<'_>,
    hypervisor_arn: &str,
    instance_uuid: &str,
    new_arn: &str,
    change: &dyn Fn(&mut VmRecord),
) -> TxResult<VmRecord> {
    let index_key = vm_index_key(hypervisor_arn, instance_uuid);
    require_hypervisor(tx, hypervisor_arn)?;
    let existing = match tx.vm_index.get(index_key.as_bytes())? {
        Some(arn) => tx_get::<VmRecord>(tx.vms, &String::from_utf8_lossy(&arn))?,
        None => None,
    };
    let mut vm = existing.unwrap_or_else(|| VmRecord {
        arn: new_arn.to_owned(),
        hypervisor_arn: hypervisor_arn.to_owned(),
        instance_uuid: instance_uuid.to_owned(),
        name: String::new(),
        path: None,
        host_name: None,
        last_backup: None,
        vmware_tags: Vec::new(),
        mapped_tag_keys: Vec::new(),
    });
    change(&mut vm);
    tx.vm_index
        .insert(index_key.as_bytes(), vm.arn.as_bytes())?;
    tx_put(tx.vms, &vm.arn, &vm)?;
    Ok(vm)
}

pub(crate) fn tag_resource_in(tx: &Tx<'_>, arn: &str, add: &Tags, max_tags: usize) -> TxResult<()> {
    require_resource(tx, arn)?;
    let mut tags = tx_get::<Tags>(tx.tags, arn)?.unwrap_or_default();
    tags.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
    if tags.len() > max_tags {
        return abort(StoreError::Invalid(format!(
            "a resource can have at most {max_tags} tags; {arn} would have {}",
            tags.len()
        )));
    }
    tx_put(tx.tags, arn, &tags)?;
    Ok(())
}

pub(crate) fn untag_resource_in(tx: &Tx<'_>, arn: &str, keys: &[String]) -> TxResult<()> {
    require_resource(tx, arn)?;
    let mut tags = tx_get::<Tags>(tx.tags, arn)?.unwrap_or_default();
    for k in keys {
        tags.remove(k);
    }
    tx_put(tx.tags, arn, &tags)?;
    Ok(())
}

pub(crate) fn require_gateway(tx: &Tx<'_>, arn: &str) -> TxResult<GatewayRecord> {
    match tx_get(tx.gateways, arn)? {
        Some(gw) => Ok(gw),
        None => abort(StoreError::not_found("gateway", arn)),
    }
}

fn require_hypervisor(tx: &Tx<'_>, arn: &str) -> TxResult<HypervisorRecord> {
    match tx_get(tx.hypervisors, arn)? {
        Some(hv) => Ok(hv),
        None => abort(StoreError::not_found("hypervisor", arn)),
    }
}

fn require_resource(tx: &Tx<'_>, arn: &str) -> TxResult<()> {
    let (tree, kind) = match resource_kind(arn) {
        Some("gateway") => (tx.gateways, "gateway"),
        Some("hypervisor") => (tx.hypervisors, "hypervisor"),
        Some(_) => (tx.vms, "virtual machine"),
        None => return abort(StoreError::not_found("resource", arn)),
    };
    if tree.get(arn.as_bytes())?.is_none() {
        return abort(StoreError::not_found(kind, arn));
    }
    Ok(())
}
