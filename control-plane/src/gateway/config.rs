//! The configuration a gateway pulls, built from the API's records, and its version.
//!
//! The version grows whenever the content changes: the cloud keeps a hash of the last
//! configuration it numbered, so no API handler has to remember to bump anything.

use bgw_protocol::config::{
    BandwidthInterval, GatewayConfig, HypervisorConfig, MaintenanceStartTime, PropertyMapping,
};
use sha2::Digest;

use crate::store::domain::{Catalogue, GatewayAgents};
use crate::store::{ConfigVersion, StoreError};

/// The current configuration of a gateway, without its version.
pub fn build(store: &dyn Catalogue, gateway_arn: &str) -> Result<GatewayConfig, StoreError> {
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

/// The current configuration with its version, numbering it if the content changed.
///
/// The version is read before the content is built and replaced by compare-and-swap; if
/// another request numbered a configuration in between, the content is built again. So a
/// version is strictly increasing and stands for exactly one content.
pub fn current(
    catalogue: &dyn Catalogue,
    agents: &dyn GatewayAgents,
    gateway_arn: &str,
) -> Result<GatewayConfig, StoreError> {
    loop {
        let seen = agents.config_version(gateway_arn)?;
        let mut config = build(catalogue, gateway_arn)?;
        let hash = content_hash(&config);
        let known = seen.as_ref().map_or(0, |s| s.version);
        if seen.as_ref().is_some_and(|s| s.hash == hash) {
            config.version = known;
            return Ok(config);
        }
        let next = ConfigVersion {
            version: known + 1,
            hash,
        };
        if agents.swap_config_version(gateway_arn, seen.as_ref(), &next)? {
            tracing::debug!(gateway = %gateway_arn, version = next.version, "configuration numbered");
            config.version = next.version;
            return Ok(config);
        }
    }
}

/// The version last numbered, without looking at the content.
pub fn numbered(agents: &dyn GatewayAgents, gateway_arn: &str) -> Result<u64, StoreError> {
    Ok(agents.config_version(gateway_arn)?.map_or(0, |v| v.version))
}

fn content_hash(config: &GatewayConfig) -> String {
    hex::encode(sha2::Sha256::digest(
        serde_json::to_vec(config).expect("configuration serialises"),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::store::{
        ActivationKeyRecord, BandwidthInterval, GatewayAgent, GatewayRecord, KeyState,
        MaintenanceTime, Store, Tags,
    };

    const ARN: &str = "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-00000001";

    fn store_with_gateway(dir: &std::path::Path, legacy_version: u64) -> Store {
        let store = Store::open(dir).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        store
            .insert_activation_key(&ActivationKeyRecord {
                key: "K".into(),
                created: now,
                expires: now + chrono::Duration::hours(1),
                state: KeyState::Available,
            })
            .unwrap();
        let gateway = GatewayRecord {
            arn: ARN.into(),
            display_name: "gw".into(),
            gateway_type: "BACKUP_VM".into(),
            created: now,
            hypervisor_arn: None,
            last_seen: None,
            maintenance_start_time: None,
            next_update_availability: None,
            software_version: None,
            timezone: None,
            update_requested: None,
            reported: Default::default(),
        };
        store
            .create_gateway("K", now, &gateway, &Tags::new())
            .unwrap();
        store
            .create_gateway_agent(&GatewayAgent {
                gateway_arn: ARN.into(),
                agent_id: "agent".into(),
                access_key_id: "AK".into(),
                previous_access_key_id: None,
                config_version: legacy_version,
                config_hash: "an older content".into(),
                heartbeat_interval_secs: 60,
            })
            .unwrap();
        store
    }

    #[test]
    fn a_version_stands_for_one_content_and_only_grows_under_concurrent_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_gateway(dir.path(), 7);
        let writers = 3;
        let readers = 4;
        let changes = 60u32;
        let seen: Vec<Vec<(u64, String)>> = std::thread::scope(|s| {
            for w in 0..writers {
                let store = store.clone();
                s.spawn(move || {
                    for i in 0..changes {
                        if w == 0 {
                            store
                                .put_bandwidth_schedule(
                                    ARN,
                                    &[BandwidthInterval {
                                        average_upload_rate_limit_bits_per_sec: Some(
                                            100_000 + u64::from(i),
                                        ),
                                        start_hour_of_day: 0,
                                        start_minute_of_hour: 0,
                                        end_hour_of_day: 23,
                                        end_minute_of_hour: 59,
                                        days_of_week: vec![0, 1, 2, 3, 4, 5, 6],
                                    }],
                                )
                                .unwrap();
                        } else {
                            store
                                .update_gateway(ARN, |gw| {
                                    gw.maintenance_start_time = Some(MaintenanceTime {
                                        hour_of_day: (i % 24) as u8,
                                        minute_of_hour: (i % 60) as u8,
                                        day_of_week: Some(w as u8),
                                        day_of_month: None,
                                    });
                                    Ok(())
                                })
                                .unwrap();
                        }
                    }
                });
            }
            let handles: Vec<_> = (0..readers)
                .map(|_| {
                    let store = store.clone();
                    s.spawn(move || {
                        let mut seen = Vec::new();
                        for _ in 0..changes * 2 {
                            let config = current(&store, &store, ARN).unwrap();
                            let version = config.version;
                            let mut content = config;
                            content.version = 0;
                            seen.push((version, serde_json::to_string(&content).unwrap()));
                        }
                        seen
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut content_of: HashMap<u64, String> = HashMap::new();
        for reader in &seen {
            assert!(
                reader.windows(2).all(|w| w[0].0 <= w[1].0),
                "versions went backwards for one reader"
            );
            for (version, content) in reader {
                assert!(
                    *version > 7,
                    "the older release's version {version} is kept"
                );
                let first = content_of
                    .entry(*version)
                    .or_insert_with(|| content.clone());
                assert_eq!(first, content, "version {version} stands for two contents");
            }
        }
        // After the writers stopped, the version names the latest content, and stays.
        let last = current(&store, &store, ARN).unwrap();
        assert_eq!(current(&store, &store, ARN).unwrap().version, last.version);
        let mut latest = build(&store, ARN).unwrap();
        latest.version = last.version;
        assert_eq!(last, latest);
        if let Some(content) = content_of.get(&last.version) {
            let mut plain = last.clone();
            plain.version = 0;
            assert_eq!(content, &serde_json::to_string(&plain).unwrap());
        }
    }

    #[test]
    fn an_unchanged_content_keeps_its_version_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let version = {
            let store = store_with_gateway(dir.path(), 0);
            let v = current(&store, &store, ARN).unwrap().version;
            assert_eq!(current(&store, &store, ARN).unwrap().version, v);
            store.flush().unwrap();
            v
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(current(&store, &store, ARN).unwrap().version, version);
        store
            .update_gateway_agent(ARN, &mut |a| a.heartbeat_interval_secs = 2)
            .unwrap();
        assert_eq!(current(&store, &store, ARN).unwrap().version, version);
    }
}
