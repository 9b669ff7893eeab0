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
