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
