//! The seam between the API and the gateways themselves.
//!
//! Some operations ask a gateway to do something (test a hypervisor's credentials, sync VM
//! metadata, update its software). The API records the request in the store and tells the
//! [`GatewayLink`]; the gateway protocol plugs in its own implementation to deliver it.
//! [`RecordOnly`] delivers nothing: the request stays recorded until a gateway picks it up.

use futures::future::BoxFuture;

use crate::api::error::ApiError;
use crate::secret::Secret;

/// A hypervisor connection test for a gateway to run.
#[derive(Debug, Clone)]
pub struct HypervisorTest {
    pub gateway_arn: String,
    pub host: String,
    pub username: Option<Secret>,
    pub password: Option<Secret>,
}

pub trait GatewayLink: Send + Sync + 'static {
    /// Asks the gateway to connect to a hypervisor. An error is answered to the API caller.
    fn test_hypervisor(&self, test: HypervisorTest) -> BoxFuture<'static, Result<(), ApiError>>;

    /// A metadata sync of `hypervisor_arn` was requested (status is already `CREATED`).
    fn metadata_sync_requested(&self, gateway_arn: Option<&str>, hypervisor_arn: &str);

    /// A software update of `gateway_arn` was requested.
    fn software_update_requested(&self, gateway_arn: &str);

    /// Something a gateway's configuration is built from changed (schedule, maintenance
    /// time, association, hypervisor): gateways waiting for commands should look again.
    fn configuration_changed(&self) {}

    /// The gateway protocol's hub, when this link is one: its routes are then served too.
    fn gateway_hub(&self) -> Option<crate::gateway::GatewayHub> {
        None
    }
}

/// A link that only logs: requests stay recorded in the store.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecordOnly;

impl GatewayLink for RecordOnly {
    fn test_hypervisor(&self, test: HypervisorTest) -> BoxFuture<'static, Result<(), ApiError>> {
        tracing::info!(gateway = %test.gateway_arn, host = %test.host, "hypervisor test recorded; no gateway connection to run it");
        Box::pin(async { Ok(()) })
    }

    fn metadata_sync_requested(&self, gateway_arn: Option<&str>, hypervisor_arn: &str) {
        tracing::info!(gateway = ?gateway_arn, hypervisor = %hypervisor_arn, "metadata sync recorded");
    }

    fn software_update_requested(&self, gateway_arn: &str) {
        tracing::info!(gateway = %gateway_arn, "software update recorded");
    }
}
