//! The catalogue of gateways, hypervisors and VMs, as the gateway protocol reads and changes it.

use crate::store::{
    BandwidthInterval, GatewayRecord, HypervisorRecord, Store, StoreError, Tags, VmRecord,
};

/// Gateways, hypervisors, VMs and their tags. Each method is one atomic change; `change`
/// closures may run more than once and may refuse with an error, which changes nothing.
pub trait Catalogue: Send + Sync {
    /// The gateway; [`StoreError::NotFound`] if there is none.
    fn get_gateway(&self, arn: &str) -> Result<GatewayRecord, StoreError>;

    fn update_gateway(
        &self,
        arn: &str,
        change: &dyn Fn(&mut GatewayRecord) -> Result<(), StoreError>,
    ) -> Result<GatewayRecord, StoreError>;

    /// The gateway's bandwidth schedule (empty if none); not found if the gateway is not.
    fn get_bandwidth_schedule(
        &self,
        gateway_arn: &str,
    ) -> Result<Vec<BandwidthInterval>, StoreError>;

    fn get_hypervisor(&self, arn: &str) -> Result<HypervisorRecord, StoreError>;

    fn update_hypervisor(
        &self,
        arn: &str,
        change: &dyn Fn(&mut HypervisorRecord) -> Result<(), StoreError>,
    ) -> Result<HypervisorRecord, StoreError>;

    /// Inserts or updates the VM with this instance UUID under an existing hypervisor;
    /// `new_arn` names it only if it is new. Returns the stored record.
    fn upsert_vm(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        new_arn: &str,
        change: &dyn Fn(&mut VmRecord),
    ) -> Result<VmRecord, StoreError>;

    /// Removes the VM with this instance UUID and its tags; absent is fine.
    fn delete_vm_by_uuid(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
    ) -> Result<(), StoreError>;

    /// Instance UUIDs of every VM under a hypervisor.
    fn vm_uuids(&self, hypervisor_arn: &str) -> Result<Vec<String>, StoreError>;

    /// Adds or overwrites tags of an existing resource; it may then hold at most `max_tags`.
    fn tag_resource(&self, arn: &str, add: &Tags, max_tags: usize) -> Result<(), StoreError>;

    fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), StoreError>;
}

impl Catalogue for Store {
    fn get_gateway(&self, arn: &str) -> Result<GatewayRecord, StoreError> {
        Store::get_gateway(self, arn)
    }

    fn update_gateway(
        &self,
        arn: &str,
        change: &dyn Fn(&mut GatewayRecord) -> Result<(), StoreError>,
    ) -> Result<GatewayRecord, StoreError> {
        Store::update_gateway(self, arn, change)
    }

    fn get_bandwidth_schedule(
        &self,
        gateway_arn: &str,
    ) -> Result<Vec<BandwidthInterval>, StoreError> {
        Store::get_bandwidth_schedule(self, gateway_arn)
    }

    fn get_hypervisor(&self, arn: &str) -> Result<HypervisorRecord, StoreError> {
        Store::get_hypervisor(self, arn)
    }

    fn update_hypervisor(
        &self,
        arn: &str,
        change: &dyn Fn(&mut HypervisorRecord) -> Result<(), StoreError>,
    ) -> Result<HypervisorRecord, StoreError> {
        Store::update_hypervisor(self, arn, change)
    }

    fn upsert_vm(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        new_arn: &str,
        change: &dyn Fn(&mut VmRecord),
    ) -> Result<VmRecord, StoreError> {
        Store::upsert_vm(self, hypervisor_arn, instance_uuid, new_arn, change)
    }

    fn delete_vm_by_uuid(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
    ) -> Result<(), StoreError> {
        Store::delete_vm_by_uuid(self, hypervisor_arn, instance_uuid)
    }

    fn vm_uuids(&self, hypervisor_arn: &str) -> Result<Vec<String>, StoreError> {
        Store::vm_uuids(self, hypervisor_arn)
    }

    fn tag_resource(&self, arn: &str, add: &Tags, max_tags: usize) -> Result<(), StoreError> {
        Store::tag_resource(self, arn, add, max_tags)
    }

    fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), StoreError> {
        Store::untag_resource(self, arn, keys)
    }
}
