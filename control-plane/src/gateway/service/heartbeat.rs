//! Heartbeats: what the gateway reports about itself is recorded, and the answer tells it the
//! configuration version to hold and whether to rotate its credentials.

use bgw_protocol::heartbeat::{Heartbeat, HeartbeatAck, HypervisorState as WireState};
use chrono::{DateTime, Utc};

use super::{credentials, Refusal};
use crate::store::domain::{Catalogue, GatewayAgents};
use crate::store::{GatewayAgent, HypervisorState};

/// Records heartbeat `hb` of the gateway `agent` is the protocol state of.
pub fn record(
    catalogue: &dyn Catalogue,
    agents: &dyn GatewayAgents,
    agent: &GatewayAgent,
    hb: &Heartbeat,
    now: DateTime<Utc>,
) -> Result<HeartbeatAck, Refusal> {
    let arn = agent.gateway_arn.as_str();
    let gw = catalogue.update_gateway(arn, &|gw| {
        gw.last_seen = Some(now);
        gw.software_version = Some(hb.agent_version.clone());
        gw.timezone = Some(hb.timezone.clone());
        gw.reported.insert("hostname".into(), hb.hostname.clone());
        gw.reported
            .insert("ip_addresses".into(), hb.ip_addresses.join(","));
        gw.reported
            .insert("mac_addresses".into(), hb.mac_addresses.join(","));
        gw.reported
            .insert("uptime_seconds".into(), hb.uptime_seconds.to_string());
        gw.reported.insert(
            "resource_check".into(),
            format!(
                "ok={} warning={} fail={}",
                hb.resources.ok, hb.resources.warning, hb.resources.fail
            ),
        );
        gw.reported.insert(
            "bandwidth_limit_bps".into(),
            hb.bandwidth_limit_bps
                .map_or("unlimited".into(), |b| b.to_string()),
        );
        gw.reported
            .insert("update_state".into(), hb.update.state.to_string());
        Ok(())
    })?;
    if let (Some(hv_arn), Some(reported)) = (&gw.hypervisor_arn, &hb.hypervisor.hypervisor_arn) {
        if hv_arn == reported {
            let wanted = wire_state(hb.hypervisor.state);
            let hv = catalogue.get_hypervisor(hv_arn)?;
            if hv.state != wanted {
                catalogue.update_hypervisor(hv_arn, &|hv| {
                    hv.state = wanted;
                    Ok(())
                })?;
            }
        }
    }
    if agent.heartbeat_interval_secs != hb.interval_seconds {
        agents.update_gateway_agent(arn, &mut |a| {
            a.heartbeat_interval_secs = hb.interval_seconds
        })?;
    }
    let config = crate::gateway::config::current(catalogue, agents, arn)?;
    Ok(HeartbeatAck {
        server_time: now,
        config_version: config.version,
        rotate_credentials: credentials::due(agents, agent, now)?,
        update: None,
    })
}

fn wire_state(s: WireState) -> HypervisorState {
    match s {
        WireState::Pending => HypervisorState::Pending,
        WireState::Online => HypervisorState::Online,
        WireState::Offline => HypervisorState::Offline,
        WireState::Error => HypervisorState::Error,
    }
}

#[cfg(test)]
mod tests {
    use bgw_protocol::heartbeat::HypervisorStatus;

    use super::*;
    use crate::gateway::service::credentials::{collect, CREDENTIAL_LIFETIME};
    use crate::gateway::service::fixtures::{associated, now, GW, HV};
    use crate::store::domain::Catalogue;
    use crate::store::memory::MemoryAgents;

    fn heartbeat(state: WireState, hypervisor: &str, interval: u64) -> Heartbeat {
        Heartbeat {
            agent_version: "1.2.3".into(),
            hostname: "bgw-1".into(),
            ip_addresses: vec!["10.0.0.5".into()],
            mac_addresses: vec!["02:00:00:00:00:01".into()],
            timezone: "Europe/Berlin".into(),
            uptime_seconds: 42,
            interval_seconds: interval,
            resources: Default::default(),
            hypervisor: HypervisorStatus {
                hypervisor_arn: Some(hypervisor.into()),
                state,
                message: None,
            },
            bandwidth_limit_bps: None,
            update: Default::default(),
            config_version: 0,
        }
    }

    #[test]
    fn a_heartbeat_records_the_gateway_and_its_hypervisor_state() {
        let catalogue = associated();
        let agents = MemoryAgents::default();
        collect(&agents, GW, "agent", now()).unwrap();
        let agent = agents.gateway_agent(GW).unwrap().unwrap();
        let ack = record(
            &catalogue,
            &agents,
            &agent,
            &heartbeat(WireState::Online, HV, 2),
            now(),
        )
        .unwrap();
        assert_eq!(ack.server_time, now());
        assert!(ack.config_version > 0, "the configuration is numbered");
        assert!(!ack.rotate_credentials);
        let gw = catalogue.get_gateway(GW).unwrap();
        assert_eq!(gw.last_seen, Some(now()));
        assert_eq!(gw.software_version.as_deref(), Some("1.2.3"));
        assert_eq!(gw.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(gw.reported["hostname"], "bgw-1");
        assert_eq!(gw.reported["bandwidth_limit_bps"], "unlimited");
        assert_eq!(
            catalogue.get_hypervisor(HV).unwrap().state,
            HypervisorState::Online
        );
        let stored = agents.gateway_agent(GW).unwrap().unwrap();
        assert_eq!(stored.heartbeat_interval_secs, 2);
        // The same content keeps its version; old credentials are due for rotation.
        let later = now() + CREDENTIAL_LIFETIME + chrono::Duration::seconds(1);
        let again = record(
            &catalogue,
            &agents,
            &stored,
            &heartbeat(WireState::Online, HV, 2),
            later,
        )
        .unwrap();
        assert_eq!(again.config_version, ack.config_version);
        assert!(again.rotate_credentials);
    }

    #[test]
    fn a_state_reported_for_another_hypervisor_is_ignored() {
        let catalogue = associated();
        let agents = MemoryAgents::default();
        collect(&agents, GW, "agent", now()).unwrap();
        let agent = agents.gateway_agent(GW).unwrap().unwrap();
        let other = "arn:aws:backup-gateway:us-east-1:123456789012:hypervisor/hv-00000002";
        record(
            &catalogue,
            &agents,
            &agent,
            &heartbeat(WireState::Offline, other, 60),
            now(),
        )
        .unwrap();
        assert_eq!(
            catalogue.get_hypervisor(HV).unwrap().state,
            HypervisorState::Pending
        );
    }
}
