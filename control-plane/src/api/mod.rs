//! The AWS Backup Gateway API: operation dispatch and the handlers behind it.
//!
//! A request has already been authenticated and decoded when it gets here; [`dispatch`]
//! validates it against the model, reads it into the operation's typed input, runs the
//! handler and returns the output as a `Value` for the wire encoder.

pub mod error;
mod gateways;
mod hypervisors;
pub mod pagination;
mod semantics;
mod tags;
pub mod validate;
mod vms;
pub mod wire;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::arn::ArnFactory;
use crate::clock::Clock;
use crate::link::GatewayLink;
use crate::store::Store;
use error::{ApiError, ErrorKind};

/// Everything a handler needs.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub arns: ArnFactory,
    pub clock: Arc<dyn Clock>,
    pub link: Arc<dyn GatewayLink>,
}

impl ApiContext {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// Runs operation `op` with the decoded `input`.
pub async fn dispatch(ctx: &ApiContext, op: &str, input: Value) -> Result<Value, ApiError> {
    let operation = crate::model::model().operations.get(op).ok_or_else(|| {
        ApiError::new(
            ErrorKind::UnknownOperation,
            format!("operation {op:?} is not part of the AWS Backup Gateway API"),
        )
    })?;
    if let Some(shape) = &operation.input {
        validate::validate_input(shape, &input)?;
    }
    let answer = run(ctx, op, input).await;
    if answer.is_ok() && changes_configuration(op) {
        ctx.link.configuration_changed();
    }
    answer
}

/// Operations that change what a gateway's configuration is built from.
fn changes_configuration(op: &str) -> bool {
    matches!(
        op,
        "PutMaintenanceStartTime"
            | "AssociateGatewayToServer"
            | "DisassociateGatewayFromServer"
            | "PutBandwidthRateLimitSchedule"
            | "UpdateHypervisor"
            | "DeleteHypervisor"
            | "PutHypervisorPropertyMappings"
    )
}

async fn run(ctx: &ApiContext, op: &str, input: Value) -> Result<Value, ApiError> {
    match op {
        "CreateGateway" => gateways::create(ctx, parse(input)?).await,
        "DeleteGateway" => gateways::delete(ctx, parse(input)?).await,
        "GetGateway" => gateways::get(ctx, parse(input)?).await,
        "ListGateways" => gateways::list(ctx, parse(input)?).await,
        "UpdateGatewayInformation" => gateways::update_information(ctx, parse(input)?).await,
        "UpdateGatewaySoftwareNow" => gateways::update_software_now(ctx, parse(input)?).await,
        "PutMaintenanceStartTime" => gateways::put_maintenance_start_time(ctx, parse(input)?).await,
        "AssociateGatewayToServer" => gateways::associate(ctx, parse(input)?).await,
        "DisassociateGatewayFromServer" => gateways::disassociate(ctx, parse(input)?).await,
        "GetBandwidthRateLimitSchedule" => gateways::get_bandwidth(ctx, parse(input)?).await,
        "PutBandwidthRateLimitSchedule" => gateways::put_bandwidth(ctx, parse(input)?).await,
        "TestHypervisorConfiguration" => gateways::test_hypervisor(ctx, parse(input)?).await,
        "ImportHypervisorConfiguration" => hypervisors::import(ctx, parse(input)?).await,
        "GetHypervisor" => hypervisors::get(ctx, parse(input)?).await,
        "ListHypervisors" => hypervisors::list(ctx, parse(input)?).await,
        "UpdateHypervisor" => hypervisors::update(ctx, parse(input)?).await,
        "DeleteHypervisor" => hypervisors::delete(ctx, parse(input)?).await,
        "GetHypervisorPropertyMappings" => hypervisors::get_mappings(ctx, parse(input)?).await,
        "PutHypervisorPropertyMappings" => hypervisors::put_mappings(ctx, parse(input)?).await,
        "StartVirtualMachinesMetadataSync" => hypervisors::start_sync(ctx, parse(input)?).await,
        "GetVirtualMachine" => vms::get(ctx, parse(input)?).await,
        "ListVirtualMachines" => vms::list(ctx, parse(input)?).await,
        "TagResource" => tags::tag(ctx, parse(input)?).await,
        "UntagResource" => tags::untag(ctx, parse(input)?).await,
        "ListTagsForResource" => tags::list(ctx, parse(input)?).await,
        other => Err(ApiError::new(
            ErrorKind::UnknownOperation,
            format!("operation {other:?} is not implemented"),
        )),
    }
}

/// Reads a validated input into its typed form.
fn parse<T: DeserializeOwned>(input: Value) -> Result<T, ApiError> {
    serde_json::from_value(input)
        .map_err(|e| ApiError::serialization(format!("cannot read the request: {e}")))
}

/// A timestamp as both protocols carry it: epoch seconds (fractional when needed).
pub(crate) fn epoch(t: DateTime<Utc>) -> Value {
    let millis = t.timestamp_millis();
    if millis % 1000 == 0 {
        Value::from(millis / 1000)
    } else {
        Value::from(millis as f64 / 1000.0)
    }
}

/// Drops `null` members so that absent optional fields are not sent.
pub(crate) fn compact(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.retain(|_, v| !v.is_null());
        for v in map.values_mut() {
            *v = compact(std::mem::take(v));
        }
    } else if let Value::Array(items) = &mut v {
        for v in items.iter_mut() {
            *v = compact(std::mem::take(v));
        }
    }
    v
}
