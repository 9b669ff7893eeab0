//! [`MetadataStore`] on the sled store: one sled transaction over the catalogue's trees and
//! the sync bookkeeping's.
//!
//! sled transactions cannot scan a tree (and a plain read of a tree inside one would wait for
//! the transaction itself), and the final batch of a sync needs two scans: the VMs under the
//! hypervisor and the VMs the sync mentioned in its earlier batches. Those are read from the
//! committed trees just before the transaction. That is enough: a gateway sends the batches
//! of one sync one after the other, so every earlier batch has committed; and a VM another
//! writer adds in between was not in the sync's view of vCenter, so keeping it is right.

use std::cell::RefCell;
use std::collections::BTreeSet;

use super::metadata::{MetadataScope, MetadataStore, MetadataTx, TxStep};
use crate::store::gateway_ops::{
    complete_sync_in, delete_vm_by_uuid_in, sync_completed_in, sync_seen_in, sync_seen_key,
};
use crate::store::ops::{
    require_gateway, tag_resource_in, untag_resource_in, update_hypervisor_in, upsert_vm_in,
};
use crate::store::{
    GatewayRecord, HypervisorRecord, Store, StoreError, Tags, Tx, TxError, VmRecord,
};

/// What the final batch of a sync reads before its transaction.
struct Scanned {
    vm_uuids: Vec<String>,
    seen_keys: Vec<sled::IVec>,
}

struct SledMetadataTx<'a, 't> {
    scope: MetadataScope<'a>,
    scanned: Option<&'a Scanned>,
    tx: &'a Tx<'t>,
    /// VMs this transaction recorded as seen, per sync.
    seen: RefCell<Vec<(String, String)>>,
}

impl SledMetadataTx<'_, '_> {
    /// What was scanned for the scope, if `asked` is the scope's `own`.
    fn scanned_for(&self, asked: &str, own: &str) -> Result<&Scanned, StoreError> {
        match self.scanned {
            Some(scanned) if asked == own => Ok(scanned),
            _ => Err(StoreError::Invalid(format!(
                "{asked}: only the final batch of a sync lists its VMs, for its own sync and \
                 hypervisor"
            ))),
        }
    }
}

impl MetadataTx for SledMetadataTx<'_, '_> {
    fn gateway(&self, arn: &str) -> TxStep<GatewayRecord> {
        Ok(require_gateway(self.tx, arn)?)
    }

    fn upsert_vm(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        new_arn: &str,
        change: &dyn Fn(&mut VmRecord),
    ) -> TxStep<VmRecord> {
        Ok(upsert_vm_in(
            self.tx,
            hypervisor_arn,
            instance_uuid,
            new_arn,
            change,
        )?)
    }

    fn delete_vm_by_uuid(&self, hypervisor_arn: &str, instance_uuid: &str) -> TxStep<()> {
        Ok(delete_vm_by_uuid_in(
            self.tx,
            hypervisor_arn,
            instance_uuid,
        )?)
    }

    fn vm_uuids(&self, hypervisor_arn: &str) -> TxStep<Vec<String>> {
        Ok(self
            .scanned_for(hypervisor_arn, self.scope.hypervisor_arn)?
            .vm_uuids
            .clone())
    }

    fn tag_resource(&self, arn: &str, add: &Tags, max_tags: usize) -> TxStep<()> {
        Ok(tag_resource_in(self.tx, arn, add, max_tags)?)
    }

    fn untag_resource(&self, arn: &str, keys: &[String]) -> TxStep<()> {
        Ok(untag_resource_in(self.tx, arn, keys)?)
    }

    fn update_hypervisor(
        &self,
        arn: &str,
        change: &dyn Fn(&mut HypervisorRecord) -> Result<(), StoreError>,
    ) -> TxStep<HypervisorRecord> {
        Ok(update_hypervisor_in(self.tx, arn, change)?)
    }

    fn sync_seen(&self, sync_id: &str, uuids: &[String]) -> TxStep<()> {
        sync_seen_in(self.tx, sync_id, uuids)?;
        self.seen
            .borrow_mut()
            .extend(uuids.iter().map(|u| (sync_id.to_string(), u.clone())));
        Ok(())
    }

    fn take_sync_seen(&self, sync_id: &str) -> TxStep<BTreeSet<String>> {
        let prefix_len = sync_seen_key(sync_id, "").len();
        let mut out = BTreeSet::new();
        for key in &self.scanned_for(sync_id, self.scope.sync_id)?.seen_keys {
            self.tx.sync_seen.remove(key)?;
            out.insert(String::from_utf8_lossy(&key[prefix_len..]).into_owned());
        }
        for (sync, uuid) in self.seen.borrow().iter() {
            if sync == sync_id {
                self.tx
                    .sync_seen
                    .remove(sync_seen_key(sync, uuid).as_bytes())?;
                out.insert(uuid.clone());
            }
        }
        Ok(out)
    }

    fn complete_sync(&self, sync_id: &str) -> TxStep<bool> {
        Ok(complete_sync_in(self.tx, sync_id)?)
    }

    fn sync_completed(&self, sync_id: &str) -> TxStep<bool> {
        Ok(sync_completed_in(self.tx, sync_id)?)
    }
}

impl MetadataStore for Store {
    fn metadata_transaction(
        &self,
        scope: MetadataScope<'_>,
        batch: &dyn Fn(&dyn MetadataTx) -> TxStep<()>,
    ) -> Result<(), StoreError> {
        let scanned = if scope.completes {
            Some(Scanned {
                vm_uuids: self.vm_uuids(scope.hypervisor_arn)?,
                seen_keys: self.sync_seen_keys(scope.sync_id)?,
            })
        } else {
            None
        };
        self.tx(|tx| {
            let view = SledMetadataTx {
                scope,
                scanned: scanned.as_ref(),
                tx,
                seen: RefCell::new(Vec::new()),
            };
            batch(&view).map_err(Into::into)
        })
    }
}

impl From<sled::transaction::UnabortableTransactionError> for TxError {
    fn from(e: sled::transaction::UnabortableTransactionError) -> Self {
        match e {
            sled::transaction::UnabortableTransactionError::Conflict => TxError::Retry,
            sled::transaction::UnabortableTransactionError::Storage(e) => {
                TxError::Abort(StoreError::Engine(e))
            }
        }
    }
}
