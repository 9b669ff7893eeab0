//! Gateway access keys: minted at first collection, rotated on request, the previous key
//! retired when the gateway first signs with the new one.

use bgw_protocol::activation::GatewayCredentials;
use bgw_protocol::ErrorCode;
use chrono::{DateTime, Utc};
use rand::Rng;

use super::Refusal;
use crate::secret::Secret;
use crate::store::domain::GatewayAgents;
use crate::store::{GatewayAgent, GatewayCredential};

/// Gateway credentials are rotated after this long.
pub const CREDENTIAL_LIFETIME: chrono::Duration = chrono::Duration::days(30);

/// A new access key id (`BGWG` + 16 base-32 characters) and secret.
pub fn mint() -> (String, Secret) {
    let mut rng = rand::thread_rng();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let id: String = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    let mut secret = [0u8; 30];
    rng.fill(&mut secret[..]);
    (
        format!("BGWG{id}"),
        Secret::new(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            secret,
        )),
    )
}

fn wire(access_key_id: String, secret: &Secret) -> GatewayCredentials {
    GatewayCredentials {
        access_key_id,
        secret_access_key: bgw_protocol::Secret::new(secret.expose()),
    }
}

/// The gateway's credentials for the agent that activated it: created on first collection,
/// the same ones afterwards. Another agent is refused.
pub fn collect(
    agents: &dyn GatewayAgents,
    gateway_arn: &str,
    agent_id: &str,
    now: DateTime<Utc>,
) -> Result<GatewayCredentials, Refusal> {
    loop {
        if let Some(agent) = agents.gateway_agent(gateway_arn)? {
            if agent.agent_id != agent_id {
                return Err(Refusal::new(
                    ErrorCode::InvalidActivationKey,
                    "the gateway belongs to another agent",
                ));
            }
            if let Some(c) = agents.gateway_credential(&agent.access_key_id)? {
                return Ok(wire(agent.access_key_id, &c.secret_access_key));
            }
        }
        let (akid, secret) = mint();
        agents.put_gateway_credential(
            &akid,
            &GatewayCredential {
                gateway_arn: gateway_arn.to_string(),
                secret_access_key: secret.clone(),
                created: now,
            },
        )?;
        let stored = agents.create_gateway_agent(&GatewayAgent {
            gateway_arn: gateway_arn.to_string(),
            agent_id: agent_id.to_string(),
            access_key_id: akid.clone(),
            previous_access_key_id: None,
            config_version: 0,
            config_hash: String::new(),
            heartbeat_interval_secs: 60,
        })?;
        if stored.access_key_id == akid {
            agents.flush()?;
            return Ok(wire(akid, &secret));
        }
        // Another collection of the same key got there first: hand out its credentials.
        agents.delete_gateway_credential(&akid)?;
    }
}

/// A new key for the gateway. The key it signs with today stays valid until it first uses the
/// new one; a key from an earlier rotation that was never used is dropped.
pub fn rotate(
    agents: &dyn GatewayAgents,
    gateway_arn: &str,
    now: DateTime<Utc>,
) -> Result<GatewayCredentials, Refusal> {
    let (akid, secret) = mint();
    agents.put_gateway_credential(
        &akid,
        &GatewayCredential {
            gateway_arn: gateway_arn.to_string(),
            secret_access_key: secret.clone(),
            created: now,
        },
    )?;
    let mut unused = None;
    agents.update_gateway_agent(gateway_arn, &mut |a| {
        unused = None;
        if a.previous_access_key_id.is_none() {
            a.previous_access_key_id = Some(a.access_key_id.clone());
        } else {
            unused = Some(a.access_key_id.clone());
        }
        a.access_key_id = akid.clone();
    })?;
    if let Some(unused) = unused {
        agents.delete_gateway_credential(&unused)?;
    }
    agents.flush()?;
    tracing::info!(gateway = %gateway_arn, "gateway credentials rotated");
    Ok(wire(akid, &secret))
}

/// After a request signed with `access_key` verified: the gateway's record, with the previous
/// key retired if this is the first use of rotated credentials.
pub fn signed_with(
    agents: &dyn GatewayAgents,
    agent: GatewayAgent,
    access_key: &str,
) -> Result<GatewayAgent, Refusal> {
    if agent.access_key_id != access_key || agent.previous_access_key_id.is_none() {
        return Ok(agent);
    }
    let mut retired = None;
    let updated = agents.update_gateway_agent(&agent.gateway_arn, &mut |a| {
        retired = None;
        if a.access_key_id == access_key {
            retired = a.previous_access_key_id.take();
        }
    })?;
    if let Some(old) = retired {
        agents.delete_gateway_credential(&old)?;
    }
    updated.ok_or_else(|| Refusal::new(ErrorCode::AccessDenied, "unknown gateway"))
}

/// Whether the gateway's current key is old enough to rotate.
pub fn due(
    agents: &dyn GatewayAgents,
    agent: &GatewayAgent,
    now: DateTime<Utc>,
) -> Result<bool, Refusal> {
    Ok(agents
        .gateway_credential(&agent.access_key_id)?
        .is_some_and(|c| now - c.created > CREDENTIAL_LIFETIME))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::store::memory::MemoryAgents;

    const GW: &str = "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-00000001";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn collecting_twice_hands_out_the_same_key_and_refuses_another_agent() {
        let agents = MemoryAgents::default();
        let first = collect(&agents, GW, "agent-1", now()).unwrap();
        let again = collect(&agents, GW, "agent-1", now()).unwrap();
        assert_eq!(first.access_key_id, again.access_key_id);
        assert_eq!(agents.credential_ids().len(), 1);
        let other = collect(&agents, GW, "agent-2", now()).unwrap_err();
        assert_eq!(other.code(), ErrorCode::InvalidActivationKey);
    }

    #[test]
    fn the_previous_key_works_until_the_new_one_is_first_used() {
        let agents = MemoryAgents::default();
        let old = collect(&agents, GW, "agent", now()).unwrap().access_key_id;
        let new = rotate(&agents, GW, now()).unwrap().access_key_id;
        let agent = agents.gateway_agent(GW).unwrap().unwrap();
        assert_eq!(agent.previous_access_key_id.as_deref(), Some(old.as_str()));
        // Signing with the old key changes nothing.
        let agent = signed_with(&agents, agent, &old).unwrap();
        assert!(agents.gateway_credential(&old).unwrap().is_some());
        // The first request with the new key retires the old one.
        let agent = signed_with(&agents, agent, &new).unwrap();
        assert_eq!(agent.previous_access_key_id, None);
        assert!(agents.gateway_credential(&old).unwrap().is_none());
        assert!(agents.gateway_credential(&new).unwrap().is_some());
    }

    #[test]
    fn a_rotation_never_used_is_dropped_by_the_next_and_the_signing_key_kept() {
        let agents = MemoryAgents::default();
        let old = collect(&agents, GW, "agent", now()).unwrap().access_key_id;
        let unused = rotate(&agents, GW, now()).unwrap().access_key_id;
        let newest = rotate(&agents, GW, now()).unwrap().access_key_id;
        let mut ids = agents.credential_ids();
        ids.sort();
        let mut want = vec![old.clone(), newest.clone()];
        want.sort();
        assert_eq!(ids, want, "{unused} dropped");
        let agent = agents.gateway_agent(GW).unwrap().unwrap();
        assert_eq!(agent.previous_access_key_id.as_deref(), Some(old.as_str()));
        assert_eq!(agent.access_key_id, newest);
    }

    #[test]
    fn keys_are_due_for_rotation_after_their_lifetime() {
        let agents = MemoryAgents::default();
        collect(&agents, GW, "agent", now()).unwrap();
        let agent = agents.gateway_agent(GW).unwrap().unwrap();
        assert!(!due(&agents, &agent, now() + CREDENTIAL_LIFETIME).unwrap());
        assert!(due(
            &agents,
            &agent,
            now() + CREDENTIAL_LIFETIME + chrono::Duration::seconds(1)
        )
        .unwrap());
    }
}
