//! Activation: the only unsigned exchange of the protocol.
//!
//! 1. `POST activation/request` with [`ActivationRequest`] → [`ActivationKeyIssued`].
//! 2. The operator passes the key to `CreateGateway`.
//! 3. Meanwhile the agent long-polls `POST activation/wait` with [`ActivationWait`]; once the
//!    key is consumed the answer is [`ActivationStatus::Activated`] carrying the gateway ARN and
//!    its credentials. The answer is repeatable (same agent, same secret) until the agent's first
//!    signed request, so a crash between receipt and storage loses nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Public information the agent sends when it asks for a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationRequest {
    /// Random identifier generated once per installation (UUID).
    pub agent_id: String,
    /// Hex SHA-256 of the agent secret. Only the agent knows the secret itself, and it must
    /// present it to collect the credentials: a leaked key alone does not hand them out.
    pub agent_secret_sha256: String,
    pub agent_version: String,
    pub hostname: String,
    /// The region the operator asked for; the cloud refuses a region it does not serve.
    pub region: String,
    pub gateway_type: GatewayType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationKeyIssued {
    pub activation_key: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationWait {
    pub agent_id: String,
    pub agent_secret: Secret,
    pub activation_key: String,
    /// How long the cloud may hold the request open (capped by the cloud, 0 = answer at once).
    pub wait_seconds: u32,
}

/// Credentials of one gateway, used to SigV4-sign every request after activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivationStatus {
    /// The key has not been consumed yet; poll again.
    #[serde(rename_all = "camelCase")]
    Pending { expires_at: DateTime<Utc> },
    /// `CreateGateway` consumed the key.
    #[serde(rename_all = "camelCase")]
    Activated {
        gateway_arn: String,
        region: String,
        credentials: GatewayCredentials,
    },
}

wire_enum! {
    /// The kind of gateway. Open: a cloud refuses a type it does not serve with its own clear
    /// error rather than a parse failure.
    pub enum GatewayType: open {
        /// A gateway that backs up VMware VMs (the only kind today).
        BackupVm = "BACKUP_VM",
    }
}
