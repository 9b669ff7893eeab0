//! The release manifest, its signature, and the checks an artifact must pass.

use std::io::Read;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{KeyPair, TrustedKeys};
use crate::Version;

/// What a release is: the signed facts about its artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: Version,
    /// SHA-256 of the artifact, lower-case hex.
    pub sha256: String,
    /// Size of the artifact in bytes.
    pub size: u64,
    /// The oldest running version this release upgrades from; `None` = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<Version>,
    /// Apply at the next opportunity instead of waiting for the maintenance window.
    #[serde(default)]
    pub urgent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
}

/// A manifest as published: the exact JSON text that was signed, the key and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedManifest {
    pub manifest: String,
    #[serde(default)]
    pub key_id: String,
    /// Base64 ed25519 signature of `manifest`; empty = unsigned.
    #[serde(default)]
    pub signature: String,
}

/// Why an agent refuses a release. Reported to the cloud as `code: detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("UNSIGNED: the release carries no signature")]
    Unsigned,
    #[error("UNTRUSTED_KEY: signed with key {key_id}, which this gateway does not trust")]
    UntrustedKey { key_id: String },
    #[error("BAD_SIGNATURE: the signature does not match the manifest")]
    BadSignature,
    #[error("MALFORMED: {0}")]
    Malformed(String),
    #[error("TRUNCATED: the artifact has {got} bytes, the manifest says {expected}")]
    Truncated { expected: u64, got: u64 },
    #[error("TAMPERED: the artifact's SHA-256 is {got}, the manifest says {expected}")]
    Tampered { expected: String, got: String },
    #[error("DOWNGRADE: version {offered} is not newer than the running {running}")]
    Downgrade { running: Version, offered: Version },
    #[error(
        "TOO_OLD: version {offered} upgrades from {min} or later; this gateway runs {running}"
    )]
    TooOld {
        running: Version,
        offered: Version,
        min: Version,
    },
    #[error("REJECTED: version {0} failed its trial on this gateway before")]
    FailedBefore(Version),
}

impl Manifest {
    /// The manifest of `artifact` (in memory) at `version`.
    pub fn new(version: Version, artifact: &[u8]) -> Self {
        Manifest {
            version,
            sha256: hex::encode(Sha256::digest(artifact)),
            size: artifact.len() as u64,
            min_version: None,
            urgent: false,
            published_at: None,
        }
    }

    /// The manifest of the artifact file at `path`.
    pub fn for_file(version: Version, path: &Path) -> std::io::Result<Self> {
        let (sha256, size) = digest_file(path)?;
        Ok(Manifest {
            sha256,
            size,
            ..Manifest::new(version, b"")
        })
    }

    pub fn sign(&self, key: &KeyPair) -> SignedManifest {
        let manifest = serde_json::to_string(self).expect("a manifest serialises");
        let signature = key.sign(manifest.as_bytes());
        SignedManifest {
            manifest,
            key_id: key.public().id(),
            signature: B64.encode(signature.to_bytes()),
        }
    }

    /// May a gateway running `running` install this release?
    pub fn check_upgrade(&self, running: Version) -> Result<(), Refusal> {
        if self.version <= running {
            return Err(Refusal::Downgrade {
                running,
                offered: self.version,
            });
        }
        match self.min_version {
            Some(min) if running < min => Err(Refusal::TooOld {
                running,
                offered: self.version,
                min,
            }),
            _ => Ok(()),
        }
    }

    /// Is the file at `path` the artifact this manifest describes?
    pub fn check_file(&self, path: &Path) -> Result<(), Refusal> {
        let (sha256, size) =
            digest_file(path).map_err(|e| Refusal::Malformed(format!("cannot read: {e}")))?;
        if size != self.size {
            return Err(Refusal::Truncated {
                expected: self.size,
                got: size,
            });
        }
        if sha256 != self.sha256 {
            return Err(Refusal::Tampered {
                expected: self.sha256.clone(),
                got: sha256,
            });
        }
        Ok(())
    }
}

impl SignedManifest {
    /// The manifest's facts, unchecked (for showing a release, never for installing it).
    pub fn unverified(&self) -> Result<Manifest, crate::UpdateError> {
        serde_json::from_str(&self.manifest).map_err(crate::UpdateError::Manifest)
    }
}

impl TrustedKeys {
    /// The manifest, if a trusted key signed exactly this text.
    pub fn verify(&self, signed: &SignedManifest) -> Result<Manifest, Refusal> {
        if signed.signature.is_empty() {
            return Err(Refusal::Unsigned);
        }
        let key = self
            .find(&signed.key_id)
            .ok_or_else(|| Refusal::UntrustedKey {
                key_id: signed.key_id.clone(),
            })?;
        let bytes: [u8; 64] = B64
            .decode(&signed.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(Refusal::BadSignature)?;
        if !key.verifies(signed.manifest.as_bytes(), &Signature::from_bytes(&bytes)) {
            return Err(Refusal::BadSignature);
        }
        serde_json::from_str(&signed.manifest).map_err(|e| Refusal::Malformed(e.to_string()))
    }
}

/// SHA-256 (hex) and size of a file, read in pieces.
pub fn digest_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn only_a_trusted_untouched_signature_verifies() {
        let rng = &mut rand::thread_rng();
        let (pair, other) = (KeyPair::generate(rng), KeyPair::generate(rng));
        let signed = Manifest::new(v("1.0.0"), b"abc").sign(&pair);
        let trusted = TrustedKeys::new([pair.public()]);
        assert!(trusted.verify(&signed).is_ok());

        let unsigned = SignedManifest {
            signature: String::new(),
            ..signed.clone()
        };
        assert_eq!(trusted.verify(&unsigned), Err(Refusal::Unsigned));
        let foreign = Manifest::new(v("1.0.0"), b"abc").sign(&other);
        assert!(matches!(
            trusted.verify(&foreign),
            Err(Refusal::UntrustedKey { .. })
        ));
        let edited = SignedManifest {
            manifest: signed.manifest.replace("1.0.0", "9.0.0"),
            ..signed.clone()
        };
        assert_eq!(trusted.verify(&edited), Err(Refusal::BadSignature));
        // Another key's signature under the trusted key's id.
        let forged = SignedManifest {
            key_id: signed.key_id.clone(),
            ..foreign
        };
        assert_eq!(trusted.verify(&forged), Err(Refusal::BadSignature));
    }

    #[test]
    fn versions_and_files_are_checked() {
        let mut m = Manifest::new(v("1.2.0"), b"the artifact");
        m.min_version = Some(v("1.0.0"));
        assert!(m.check_upgrade(v("1.1.0")).is_ok());
        assert!(matches!(
            m.check_upgrade(v("1.2.0")),
            Err(Refusal::Downgrade { .. })
        ));
        assert!(matches!(
            m.check_upgrade(v("1.3.0")),
            Err(Refusal::Downgrade { .. })
        ));
        assert!(matches!(
            m.check_upgrade(v("0.9.0")),
            Err(Refusal::TooOld { .. })
        ));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, b"the artifact").unwrap();
        assert!(m.check_file(&path).is_ok());
        std::fs::write(&path, b"the artif").unwrap();
        assert!(matches!(
            m.check_file(&path),
            Err(Refusal::Truncated { .. })
        ));
        std::fs::write(&path, b"the artifacT").unwrap();
        assert!(matches!(m.check_file(&path), Err(Refusal::Tampered { .. })));
    }
}
