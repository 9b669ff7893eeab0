//! The gateway protocol's logic, callable without HTTP: the routes in [`super::routes`] parse
//! a request, call one of these and answer with its result or its [`Refusal`].
//!
//! Each service works on the narrow store interface it needs ([`crate::store::domain`]), so
//! its tests run on the in-memory stores.

pub mod activation;
pub mod credentials;
pub mod heartbeat;
pub mod metadata;
pub mod updates;

use bgw_protocol::{ErrorBody, ErrorCode};

use crate::store::StoreError;

/// A request the protocol refuses, answered as [`ErrorBody`].
#[derive(Debug)]
pub struct Refusal(pub ErrorBody);

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal(ErrorBody::new(code, message))
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => Refusal::new(ErrorCode::NotFound, e.to_string()),
            StoreError::Invalid(m) | StoreError::Conflict(m) => {
                Refusal::new(ErrorCode::InvalidRequest, m)
            }
            other => {
                tracing::error!(error = %other, "store failure in the gateway protocol");
                Refusal::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}

/// Records the service tests start from.
#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::{DateTime, TimeZone, Utc};

    use crate::store::memory::MemoryCatalogue;
    use crate::store::{GatewayRecord, HypervisorRecord, HypervisorState};

    pub const GW: &str = "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-00000001";
    pub const HV: &str = "arn:aws:backup-gateway:us-east-1:123456789012:hypervisor/hv-00000001";

    pub fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    pub fn gateway(hypervisor: Option<&str>) -> GatewayRecord {
        GatewayRecord {
            arn: GW.into(),
            display_name: "gw".into(),
            gateway_type: "BACKUP_VM".into(),
            created: now(),
            hypervisor_arn: hypervisor.map(str::to_string),
            last_seen: None,
            maintenance_start_time: None,
            next_update_availability: None,
            software_version: None,
            timezone: None,
            update_requested: None,
            reported: Default::default(),
        }
    }

    /// A catalogue with the gateway associated with the hypervisor.
    pub fn associated() -> MemoryCatalogue {
        let catalogue = MemoryCatalogue::default();
        catalogue.put_gateway(gateway(Some(HV)));
        catalogue.put_hypervisor(HypervisorRecord {
            arn: HV.into(),
            name: "vcenter".into(),
            host: "vcenter.example.com".into(),
            username: None,
            password: None,
            kms_key_arn: None,
            log_group_arn: None,
            state: HypervisorState::Pending,
            sync_status: None,
            sync_message: None,
            last_successful_sync: None,
            property_mappings: Vec::new(),
            iam_role_arn: None,
            gateway_arn: Some(GW.into()),
        });
        catalogue
    }
}
