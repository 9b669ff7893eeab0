//! Credential rotation.
//!
//! `POST credentials/rotate` (signed with the current key) returns a new key pair. The old key
//! stays valid until the cloud sees the first request signed with the new one, so an agent that
//! crashes before storing the new pair can still rotate again with the old one.

use serde::{Deserialize, Serialize};

use crate::activation::GatewayCredentials;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotatedCredentials {
    pub credentials: GatewayCredentials,
}
