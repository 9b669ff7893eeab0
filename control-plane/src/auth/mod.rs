//! Who may call the API: access keys, their secrets and roles, and SigV4 verification.

pub mod credentials;
pub mod sigv4;

use std::collections::HashMap;
use std::sync::RwLock;

use crate::secret::Secret;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The operator: the whole API plus the `/admin/` paths.
    Admin,
    /// An ordinary API user: the AWS Backup Gateway API only.
    User,
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub access_key: String,
    pub role: Role,
}

/// Access keys the server accepts, with their secrets.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: RwLock<HashMap<String, (Secret, Role)>>,
}

impl KeyRing {
    pub fn insert(&self, access_key: &str, secret: Secret, role: Role) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(access_key.to_owned(), (secret, role));
    }

    pub fn lookup(&self, access_key: &str) -> Option<(Secret, Role)> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(access_key)
            .cloned()
    }
}
