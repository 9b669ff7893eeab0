//! One metadata batch from a gateway, applied as one transaction.

use std::collections::BTreeSet;

use crate::store::{GatewayRecord, HypervisorRecord, StoreError, Tags, TxError, VmRecord};

/// What one step of a transaction returns.
pub type TxStep<T> = Result<T, TxError>;

/// The reads and writes of a metadata batch, inside its transaction. Nothing is visible to
/// others until the transaction commits, and nothing is kept if it is abandoned.
pub trait MetadataTx {
    /// The gateway; not found if there is none.
    fn gateway(&self, arn: &str) -> TxStep<GatewayRecord>;

    /// Inserts or updates the VM with this instance UUID under an existing hypervisor;
    /// `new_arn` names it only if it is new. Returns the stored record.
    fn upsert_vm(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        new_arn: &str,
        change: &dyn Fn(&mut VmRecord),
    ) -> TxStep<VmRecord>;

    /// Removes the VM with this instance UUID and its tags; absent is fine.
    fn delete_vm_by_uuid(&self, hypervisor_arn: &str, instance_uuid: &str) -> TxStep<()>;

    /// Instance UUIDs of the VMs under the scope's hypervisor. VMs this transaction added
    /// may be left out.
    fn vm_uuids(&self, hypervisor_arn: &str) -> TxStep<Vec<String>>;

    /// Adds or overwrites tags of an existing resource; it may then hold at most `max_tags`.
    fn tag_resource(&self, arn: &str, add: &Tags, max_tags: usize) -> TxStep<()>;

    fn untag_resource(&self, arn: &str, keys: &[String]) -> TxStep<()>;

    fn update_hypervisor(
        &self,
        arn: &str,
        change: &dyn Fn(&mut HypervisorRecord) -> Result<(), StoreError>,
    ) -> TxStep<HypervisorRecord>;

    /// Records that a sync mentioned these VMs.
    fn sync_seen(&self, sync_id: &str, uuids: &[String]) -> TxStep<()>;

    /// The VMs the scope's sync mentioned (in this transaction too), and forgets them.
    fn take_sync_seen(&self, sync_id: &str) -> TxStep<BTreeSet<String>>;

    /// Marks a sync completed; false if it already was.
    fn complete_sync(&self, sync_id: &str) -> TxStep<bool>;

    fn sync_completed(&self, sync_id: &str) -> TxStep<bool>;
}

/// What a metadata transaction is about.
#[derive(Debug, Clone, Copy)]
pub struct MetadataScope<'a> {
    pub hypervisor_arn: &'a str,
    pub sync_id: &'a str,
    /// The batch completes the sync: it lists the hypervisor's VMs
    /// ([`MetadataTx::vm_uuids`]) and takes the VMs the sync mentioned
    /// ([`MetadataTx::take_sync_seen`]). Only such a transaction may do that.
    pub completes: bool,
}

/// Runs a metadata batch as one transaction.
pub trait MetadataStore: Send + Sync {
    /// Runs `batch` on one transaction over the catalogue and the sync bookkeeping: every
    /// change it makes is kept, or (when it returns an error) none. `batch` may run more than
    /// once (after a conflict with another writer).
    fn metadata_transaction(
        &self,
        scope: MetadataScope<'_>,
        batch: &dyn Fn(&dyn MetadataTx) -> TxStep<()>,
    ) -> Result<(), StoreError>;
}
