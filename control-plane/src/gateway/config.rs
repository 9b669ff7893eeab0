//! The configuration a gateway pulls, built from the API's records, and its version.
//!
//! The version grows whenever the content changes: the cloud keeps a hash of the last
//! configuration it numbered, so no API handler has to remember to bump anything.

use bgw_protocol::config::{
    BandwidthInterval, GatewayConfig, HypervisorConfig, MaintenanceStartTime, PropertyMapping,
};
use sha2::Digest;

use crate::store::{GatewayAgent, Store, StoreError};

/// The current configuration of a gateway, without its version.
pub fn build(store: &Store, gateway_arn: &str) -> Result<GatewayConfig, StoreError> {
    let gw = store.get_gateway(gateway_arn)?;
    let hypervisor = match &gw.hypervisor_arn {
        Some(arn) => {
            let hv = store.get_hypervisor(arn)?;
            Some(HypervisorConfig {
                hypervisor_arn: hv.arn.clone(),
                host: hv.host.clone(),
                username: hv.username.as_ref().map(|u| u.expose().to_string()),
                password: hv.password.clone(),
                property_mappings: hv
                    .property_mappings
                    .iter()
                    .map(|m| PropertyMapping {
                        vmware_category: m.vmware_category.clone(),
                        vmware_tag_name: m.vmware_tag_name.clone(),
                        aws_tag_key: m.aws_tag_key.clone(),
                        aws_tag_value: m.aws_tag_value.clone(),
                    })
                    .collect(),
            })
        }
        None => None,
    };
    let bandwidth_schedule = store
        .get_bandwidth_schedule(gateway_arn)?
        .into_iter()
        .map(|i| BandwidthInterval {
            average_upload_rate_limit_bits_per_sec: i.average_upload_rate_limit_bits_per_sec,
            days_of_week: i.days_of_week,
            start_hour_of_day: i.start_hour_of_day,
            start_minute_of_hour: i.start_minute_of_hour,
            end_hour_of_day: i.end_hour_of_day,
            end_minute_of_hour: i.end_minute_of_hour,
        })
        .collect();
    Ok(GatewayConfig {
        version: 0,
        hypervisor,
        bandwidth_schedule,
        maintenance_start_time: gw.maintenance_start_time.map(|m| MaintenanceStartTime {
            hour_of_day: m.hour_of_day,
            minute_of_hour: m.minute_of_hour,
            day_of_week: m.day_of_week,
            day_of_month: m.day_of_month,
        }),
    })
}

/// The current configuration with its version, bumping the version if the content changed.
pub fn current(store: &Store, agent: &mut GatewayAgent) -> Result<GatewayConfig, StoreError> {
    let mut config = build(store, &agent.gateway_arn)?;
    let hash = hex::encode(sha2::Sha256::digest(
        serde_json::to_vec(&config).expect("configuration serialises"),
    ));
    if hash != agent.config_hash {
        agent.config_hash = hash;
        agent.config_version += 1;
        store.put_gateway_agent(agent)?;
    }
    config.version = agent.config_version;
    Ok(config)
}
