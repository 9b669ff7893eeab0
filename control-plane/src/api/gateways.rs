//! Gateway operations: activation, details, maintenance, bandwidth, hypervisor association.

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::pagination::{decode_token, encode_token, page_size};
use super::semantics::{self, TagInput};
use super::{compact, epoch, ApiContext};
use crate::arn::ResourceKind;
use crate::link::HypervisorTest;
use crate::secret::Secret;
use crate::store::{BandwidthInterval, GatewayRecord, MaintenanceTime};

/// The maintenance window a new gateway gets until the operator sets one: Sundays 02:00
/// gateway time (weekly, like the AWS default of one window a week).
pub const DEFAULT_MAINTENANCE: MaintenanceTime = MaintenanceTime {
    hour_of_day: 2,
    minute_of_hour: 0,
    day_of_week: Some(0),
    day_of_month: None,
};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInput {
    activation_key: String,
    gateway_display_name: String,
    gateway_type: String,
    #[serde(default)]
    tags: Vec<TagInput>,
}

pub async fn create(ctx: &ApiContext, input: CreateInput) -> Result<Value, ApiError> {
    let tags = semantics::tags("Tags", &input.tags)?;
    let now = ctx.now();
    let arn = ctx
        .arns
        .mint(ResourceKind::Gateway, &mut rand::thread_rng());
    let record = GatewayRecord {
        arn: arn.clone(),
        display_name: input.gateway_display_name,
        gateway_type: input.gateway_type,
        created: now,
        hypervisor_arn: None,
        // Activation is the gateway's first contact.
        last_seen: Some(now),
        maintenance_start_time: Some(DEFAULT_MAINTENANCE),
        next_update_availability: None,
        software_version: None,
        timezone: None,
        update_requested: None,
        reported: Default::default(),
    };
    ctx.store
        .create_gateway(&input.activation_key, now, &record, &tags)?;
    tracing::info!(gateway = %arn, "gateway activated");
    Ok(json!({ "GatewayArn": arn }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayArnInput {
    gateway_arn: String,
}

pub async fn delete(ctx: &ApiContext, input: GatewayArnInput) -> Result<Value, ApiError> {
    ctx.store.delete_gateway(&input.gateway_arn)?;
    tracing::info!(gateway = %input.gateway_arn, "gateway deleted");
    Ok(json!({ "GatewayArn": input.gateway_arn }))
}

fn maintenance_value(m: &MaintenanceTime) -> Value {
    compact(json!({
        "HourOfDay": m.hour_of_day,
        "MinuteOfHour": m.minute_of_hour,
        "DayOfWeek": m.day_of_week,
        "DayOfMonth": m.day_of_month,
    }))
}

pub async fn get(ctx: &ApiContext, input: GatewayArnInput) -> Result<Value, ApiError> {
    let gw = ctx.store.get_gateway(&input.gateway_arn)?;
    Ok(compact(json!({
        "Gateway": {
            "GatewayArn": gw.arn,
            "GatewayDisplayName": gw.display_name,
            "GatewayType": gw.gateway_type,
            "HypervisorId": gw.hypervisor_arn,
            "LastSeenTime": gw.last_seen.map(epoch),
            "MaintenanceStartTime": gw.maintenance_start_time.as_ref().map(maintenance_value),
            "NextUpdateAvailabilityTime": gw.next_update_availability.map(epoch),
            "SoftwareVersion": gw.software_version,
        }
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn list(ctx: &ApiContext, input: ListInput) -> Result<Value, ApiError> {
    let after = decode_token("gateways", input.next_token.as_deref())?;
    let (items, last) = ctx
        .store
        .list_gateways(after.as_deref(), page_size(input.max_results))?;
    let gateways: Vec<Value> = items
        .into_iter()
        .map(|gw| {
            compact(json!({
                "GatewayArn": gw.arn,
                "GatewayDisplayName": gw.display_name,
                "GatewayType": gw.gateway_type,
                "HypervisorId": gw.hypervisor_arn,
                "LastSeenTime": gw.last_seen.map(epoch),
            }))
        })
        .collect();
    Ok(compact(json!({
        "Gateways": gateways,
        "NextToken": last.map(|a| encode_token("gateways", &a)),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateInformationInput {
    gateway_arn: String,
    gateway_display_name: Option<String>,
}

pub async fn update_information(
    ctx: &ApiContext,
    input: UpdateInformationInput,
) -> Result<Value, ApiError> {
    ctx.store.update_gateway(&input.gateway_arn, |gw| {
        if let Some(name) = &input.gateway_display_name {
            gw.display_name = name.clone();
        }
        Ok(())
    })?;
    Ok(json!({ "GatewayArn": input.gateway_arn }))
}

pub async fn update_software_now(
    ctx: &ApiContext,
    input: GatewayArnInput,
) -> Result<Value, ApiError> {
    let now = ctx.now();
    ctx.store.update_gateway(&input.gateway_arn, |gw| {
        gw.update_requested = Some(now);
        Ok(())
    })?;
    ctx.link.software_update_requested(&input.gateway_arn);
    Ok(json!({ "GatewayArn": input.gateway_arn }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MaintenanceInput {
    gateway_arn: String,
    hour_of_day: i64,
    minute_of_hour: i64,
    day_of_week: Option<i64>,
    day_of_month: Option<i64>,
}

pub async fn put_maintenance_start_time(
    ctx: &ApiContext,
    input: MaintenanceInput,
) -> Result<Value, ApiError> {
    let start = semantics::maintenance(
        input.hour_of_day,
        input.minute_of_hour,
        input.day_of_week,
        input.day_of_month,
    )?;
    ctx.store.update_gateway(&input.gateway_arn, |gw| {
        gw.maintenance_start_time = Some(start.clone());
        Ok(())
    })?;
    Ok(json!({ "GatewayArn": input.gateway_arn }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssociateInput {
    gateway_arn: String,
    server_arn: String,
}

pub async fn associate(ctx: &ApiContext, input: AssociateInput) -> Result<Value, ApiError> {
    ctx.store.associate(&input.gateway_arn, &input.server_arn)?;
    tracing::info!(gateway = %input.gateway_arn, hypervisor = %input.server_arn, "gateway associated");
    Ok(json!({ "GatewayArn": input.gateway_arn }))
}

pub async fn disassociate(ctx: &ApiContext, input: GatewayArnInput) -> Result<Value, ApiError> {
    ctx.store.disassociate(&input.gateway_arn)?;
    Ok(json!({ "GatewayArn": input.gateway_arn }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IntervalInput {
    average_upload_rate_limit_in_bits_per_sec: Option<u64>,
    start_hour_of_day: u8,
    end_hour_of_day: u8,
    start_minute_of_hour: u8,
    end_minute_of_hour: u8,
    days_of_week: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutBandwidthInput {
    gateway_arn: String,
    bandwidth_rate_limit_intervals: Vec<IntervalInput>,
}

pub async fn put_bandwidth(ctx: &ApiContext, input: PutBandwidthInput) -> Result<Value, ApiError> {
    let intervals: Vec<BandwidthInterval> = input
        .bandwidth_rate_limit_intervals
        .into_iter()
        .map(|i| BandwidthInterval {
            average_upload_rate_limit_bits_per_sec: i.average_upload_rate_limit_in_bits_per_sec,
            start_hour_of_day: i.start_hour_of_day,
            start_minute_of_hour: i.start_minute_of_hour,
            end_hour_of_day: i.end_hour_of_day,
            end_minute_of_hour: i.end_minute_of_hour,
            days_of_week: i.days_of_week,
        })
        .collect();
    semantics::bandwidth(&intervals)?;
    ctx.store
        .put_bandwidth_schedule(&input.gateway_arn, &intervals)?;
    Ok(json!({ "GatewayArn": input.gateway_arn }))
}

pub async fn get_bandwidth(ctx: &ApiContext, input: GatewayArnInput) -> Result<Value, ApiError> {
    let intervals = ctx.store.get_bandwidth_schedule(&input.gateway_arn)?;
    let list: Vec<Value> = intervals
        .iter()
        .map(|i| {
            compact(json!({
                "AverageUploadRateLimitInBitsPerSec": i.average_upload_rate_limit_bits_per_sec,
                "StartHourOfDay": i.start_hour_of_day,
                "StartMinuteOfHour": i.start_minute_of_hour,
                "EndHourOfDay": i.end_hour_of_day,
                "EndMinuteOfHour": i.end_minute_of_hour,
                "DaysOfWeek": i.days_of_week,
            }))
        })
        .collect();
    Ok(json!({
        "GatewayArn": input.gateway_arn,
        "BandwidthRateLimitIntervals": list,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TestHypervisorInput {
    gateway_arn: String,
    host: String,
    username: Option<String>,
    password: Option<String>,
}

pub async fn test_hypervisor(
    ctx: &ApiContext,
    input: TestHypervisorInput,
) -> Result<Value, ApiError> {
    ctx.store.get_gateway(&input.gateway_arn)?;
    ctx.link
        .test_hypervisor(HypervisorTest {
            gateway_arn: input.gateway_arn,
            host: input.host,
            username: input.username.map(Secret::new),
            password: input.password.map(Secret::new),
        })
        .await?;
    Ok(json!({}))
}
