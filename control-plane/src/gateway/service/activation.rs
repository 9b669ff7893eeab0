//! Activation: a gateway asks for a one-time key bound to its agent, shows the key to its
//! operator, and waits until `CreateGateway` consumes it; then it collects its credentials.

use bgw_protocol::activation::{
    ActivationKeyIssued, ActivationRequest, ActivationStatus, ActivationWait, GatewayType,
};
use bgw_protocol::ErrorCode;
use chrono::{DateTime, Utc};
use sha2::Digest;

use super::{credentials, Refusal};
use crate::store::domain::{ActivationKeys, Catalogue, GatewayAgents};
use crate::store::{ActivationKeyRecord, KeyBinding, KeyState};

/// Keys that were never used are kept this long past their expiry, so that `CreateGateway`
/// can still say "expired" rather than "not valid", then forgotten.
pub const EXPIRED_KEY_GRACE: chrono::Duration = chrono::Duration::days(1);

/// Issues `key` to the agent that asked in `req`, valid for `ttl` from `now`, and forgets
/// keys that expired unused more than [`EXPIRED_KEY_GRACE`] ago.
pub fn issue(
    keys: &dyn ActivationKeys,
    region: &str,
    req: &ActivationRequest,
    key: String,
    ttl: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<ActivationKeyIssued, Refusal> {
    if req.region != region {
        return Err(Refusal::new(
            ErrorCode::InvalidRequest,
            format!(
                "region {:?} is not served here; valid regions: {region}",
                req.region
            ),
        ));
    }
    if req.gateway_type != GatewayType::BackupVm {
        return Err(Refusal::new(
            ErrorCode::InvalidRequest,
            "gatewayType must be BACKUP_VM",
        ));
    }
    if req.agent_id.is_empty() || req.agent_secret_sha256.len() != 64 {
        return Err(Refusal::new(
            ErrorCode::InvalidRequest,
            "agentId and agentSecretSha256 are required",
        ));
    }
    let expires = now + ttl;
    // The binding first: a key is never available without the agent it belongs to.
    keys.bind_activation_key(
        &key,
        &KeyBinding {
            agent_id: req.agent_id.clone(),
            agent_secret_sha256: req.agent_secret_sha256.clone(),
            hostname: req.hostname.clone(),
            agent_version: req.agent_version.clone(),
        },
    )?;
    keys.insert_activation_key(&ActivationKeyRecord {
        key: key.clone(),
        created: now,
        expires,
        state: KeyState::Available,
    })?;
    tracing::info!(agent = %req.agent_id, hostname = %req.hostname, %expires, "activation key issued to a gateway");
    match keys.prune_expired_activation_keys(now, EXPIRED_KEY_GRACE) {
        Ok(0) => {}
        Ok(n) => tracing::info!(keys = n, "expired activation keys forgotten"),
        Err(e) => tracing::warn!(error = %e, "cannot prune expired activation keys"),
    }
    Ok(ActivationKeyIssued {
        activation_key: key,
        expires_at: expires,
    })
}

/// Where the key `wait` asks about stands at `now`: still `Pending`, or `Activated` with the
/// gateway's credentials (minted on first collection). Refused if the key is unknown, bound
/// to another agent, expired, or its gateway was deleted.
pub fn state(
    keys: &dyn ActivationKeys,
    catalogue: &dyn Catalogue,
    agents: &dyn GatewayAgents,
    region: &str,
    wait: &ActivationWait,
    now: DateTime<Utc>,
) -> Result<ActivationStatus, Refusal> {
    let invalid = || {
        Refusal::new(
            ErrorCode::InvalidActivationKey,
            "unknown activation key, or issued to another gateway",
        )
    };
    let binding = keys
        .activation_key_binding(&wait.activation_key)?
        .ok_or_else(invalid)?;
    let secret_hash = hex::encode(sha2::Sha256::digest(wait.agent_secret.expose().as_bytes()));
    if binding.agent_id != wait.agent_id || binding.agent_secret_sha256 != secret_hash {
        return Err(invalid());
    }
    let record = keys
        .get_activation_key(&wait.activation_key)?
        .ok_or_else(invalid)?;
    match record.state {
        KeyState::Consumed { gateway_arn } => {
            if catalogue.get_gateway(&gateway_arn).is_err() {
                return Err(Refusal::new(
                    ErrorCode::GatewayDeleted,
                    format!("gateway {gateway_arn} was deleted"),
                ));
            }
            let credentials = credentials::collect(agents, &gateway_arn, &binding.agent_id, now)?;
            tracing::info!(gateway = %gateway_arn, agent = %binding.agent_id, "gateway collected its credentials");
            Ok(ActivationStatus::Activated {
                gateway_arn,
                region: region.to_string(),
                credentials,
            })
        }
        KeyState::Available if record.expires <= now => Err(Refusal::new(
            ErrorCode::ActivationKeyExpired,
            format!("activation key expired at {}", record.expires.to_rfc3339()),
        )),
        KeyState::Available => Ok(ActivationStatus::Pending {
            expires_at: record.expires,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::service::fixtures::{associated, now, GW};
    use crate::store::memory::{MemoryAgents, MemoryCatalogue, MemoryKeys};

    const REGION: &str = "us-east-1";
    const SECRET: &str = "the agent's secret";

    fn request() -> ActivationRequest {
        ActivationRequest {
            region: REGION.into(),
            gateway_type: GatewayType::BackupVm,
            agent_id: "agent-1".into(),
            agent_secret_sha256: hex::encode(sha2::Sha256::digest(SECRET.as_bytes())),
            hostname: "bgw-1".into(),
            agent_version: "1.2.3".into(),
        }
    }

    fn wait(agent: &str, secret: &str) -> ActivationWait {
        ActivationWait {
            agent_id: agent.into(),
            agent_secret: bgw_protocol::Secret::new(secret),
            activation_key: "KEY".into(),
            wait_seconds: 0,
        }
    }

    fn ttl() -> chrono::Duration {
        chrono::Duration::minutes(30)
    }

    #[test]
    fn a_key_is_pending_until_consumed_then_hands_out_the_credentials_once_minted() {
        let (keys, catalogue, agents) =
            (MemoryKeys::default(), associated(), MemoryAgents::default());
        let issued = issue(&keys, REGION, &request(), "KEY".into(), ttl(), now()).unwrap();
        assert_eq!(issued.expires_at, now() + ttl());
        let status = state(
            &keys,
            &catalogue,
            &agents,
            REGION,
            &wait("agent-1", SECRET),
            now(),
        )
        .unwrap();
        assert_eq!(
            status,
            ActivationStatus::Pending {
                expires_at: now() + ttl()
            }
        );
        keys.consume("KEY", GW);
        let first = state(
            &keys,
            &catalogue,
            &agents,
            REGION,
            &wait("agent-1", SECRET),
            now(),
        )
        .unwrap();
        let again = state(
            &keys,
            &catalogue,
            &agents,
            REGION,
            &wait("agent-1", SECRET),
            now(),
        )
        .unwrap();
        let ActivationStatus::Activated {
            gateway_arn,
            region,
            credentials,
        } = first
        else {
            panic!("not activated: {first:?}");
        };
        assert_eq!((gateway_arn.as_str(), region.as_str()), (GW, REGION));
        assert_eq!(
            again,
            ActivationStatus::Activated {
                gateway_arn,
                region,
                credentials
            }
        );
        assert_eq!(agents.credential_ids().len(), 1);
    }

    #[test]
    fn another_agent_or_secret_an_expired_key_and_a_deleted_gateway_are_refused() {
        let (keys, catalogue, agents) =
            (MemoryKeys::default(), associated(), MemoryAgents::default());
        issue(&keys, REGION, &request(), "KEY".into(), ttl(), now()).unwrap();
        let code = |w: &ActivationWait, at, c: &MemoryCatalogue| {
            state(&keys, c, &agents, REGION, w, at).unwrap_err().code()
        };
        assert_eq!(
            code(&wait("agent-2", SECRET), now(), &catalogue),
            ErrorCode::InvalidActivationKey
        );
        assert_eq!(
            code(&wait("agent-1", "guessed"), now(), &catalogue),
            ErrorCode::InvalidActivationKey
        );
        assert_eq!(
            code(&wait("agent-1", SECRET), now() + ttl(), &catalogue),
            ErrorCode::ActivationKeyExpired
        );
        keys.consume("KEY", GW);
        assert_eq!(
            code(&wait("agent-1", SECRET), now(), &MemoryCatalogue::default()),
            ErrorCode::GatewayDeleted
        );
        assert!(
            agents.credential_ids().is_empty(),
            "nothing minted for a refused wait"
        );
    }

    #[test]
    fn bad_requests_are_refused_and_keys_expired_a_day_ago_forgotten() {
        let keys = MemoryKeys::default();
        let mut wrong_region = request();
        wrong_region.region = "eu-west-1".into();
        let mut no_agent = request();
        no_agent.agent_id.clear();
        for bad in [wrong_region, no_agent] {
            let refused = issue(&keys, REGION, &bad, "BAD".into(), ttl(), now()).unwrap_err();
            assert_eq!(refused.code(), ErrorCode::InvalidRequest);
        }
        assert!(keys.keys().is_empty() && keys.bound_keys().is_empty());
        issue(&keys, REGION, &request(), "OLD".into(), ttl(), now()).unwrap();
        issue(&keys, REGION, &request(), "USED".into(), ttl(), now()).unwrap();
        keys.consume("USED", GW);
        // Expired, but within the grace: kept so CreateGateway can say "expired".
        let later = now() + ttl() + EXPIRED_KEY_GRACE - chrono::Duration::seconds(1);
        issue(&keys, REGION, &request(), "NEW".into(), ttl(), later).unwrap();
        assert_eq!(keys.keys(), ["NEW", "OLD", "USED"]);
        let much_later = now() + ttl() + EXPIRED_KEY_GRACE;
        issue(&keys, REGION, &request(), "NEWER".into(), ttl(), much_later).unwrap();
        assert_eq!(
            keys.keys(),
            ["NEW", "NEWER", "USED"],
            "the unused expired key is forgotten"
        );
        let mut bound = keys.bound_keys();
        bound.sort();
        assert_eq!(bound, ["NEW", "NEWER", "USED"]);
    }
}
