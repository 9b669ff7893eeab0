//! A string that must never reach a log line: `Debug` and `Display` print `***`.

use serde::{Deserialize, Serialize};

/// A secret value (a password, a secret access key, an agent secret, a session token).
///
/// Serialises as the plain string (`#[serde(transparent)]`: it travels only over TLS and is
/// stored 0600), but formats as `***` so it cannot leak through `tracing` or error messages.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for putting on the wire or into a signature; never for logging.
    /// Call sites are easy to audit with a grep.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn serialises_as_the_plain_string() {
        let s = Secret::new("hunter2");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"hunter2\"");
        let back: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(back, s);

        #[derive(Serialize, Deserialize)]
        struct Stored {
            password: Secret,
        }
        let t = toml::to_string(&Stored {
            password: s.clone(),
        })
        .unwrap();
        assert_eq!(t.trim(), "password = \"hunter2\"");
        let back: Stored = toml::from_str(&t).unwrap();
        assert_eq!(back.password, s);
    }
}
