//! Release signing keys: an ed25519 pair on disk, and the set of public keys an agent trusts.
//!
//! Both files hold one line of base64: the 32-byte secret seed (`release.key`, mode 0600) and
//! the 32-byte public key (`release.pub`).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::UpdateError;

/// A publisher's key pair. Its `Debug` never shows the secret.
pub struct KeyPair(SigningKey);

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", self.public().id())
    }
}

impl KeyPair {
    pub fn generate(rng: &mut (impl rand::RngCore + rand::CryptoRng)) -> Self {
        KeyPair(SigningKey::generate(rng))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.0.sign(message)
    }

    /// Reads a secret key file written by [`KeyPair::write`].
    pub fn read(path: &Path) -> Result<Self, UpdateError> {
        let bytes = read_key(path)?;
        Ok(KeyPair(SigningKey::from_bytes(&bytes)))
    }

    /// Writes `DIR/release.key` (0600) and `DIR/release.pub`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), UpdateError> {
        std::fs::create_dir_all(dir).map_err(|source| UpdateError::KeyWrite {
            path: dir.to_owned(),
            source,
        })?;
        let secret = dir.join("release.key");
        let public = dir.join("release.pub");
        let write = |path: &Path, mode: u32, text: String| -> Result<(), UpdateError> {
            use std::os::unix::fs::OpenOptionsExt;
            let err = |source| UpdateError::KeyWrite {
                path: path.to_owned(),
                source,
            };
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(path)
                .map_err(err)?;
            f.write_all(text.as_bytes()).map_err(err)?;
            f.sync_all().map_err(err)
        };
        write(
            &secret,
            0o600,
            format!("{}\n", B64.encode(self.0.to_bytes())),
        )?;
        write(&public, 0o644, format!("{}\n", self.public().to_base64()))?;
        Ok((secret, public))
    }
}

/// A public key releases are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads a public key file (one line of base64).
    pub fn read(path: &Path) -> Result<Self, UpdateError> {
        let bytes = read_key(path)?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| UpdateError::KeyFormat {
                path: path.to_owned(),
            })
    }

    /// Parses one line of base64, as in a public key file.
    pub fn from_base64(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = B64.decode(text.trim()).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok().map(PublicKey)
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0.to_bytes())
    }

    /// Short name of the key in manifests and messages: the first 8 bytes in hex.
    pub fn id(&self) -> String {
        hex::encode(&self.0.to_bytes()[..8])
    }

    pub(crate) fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        self.0.verify(message, signature).is_ok()
    }
}

fn read_key(path: &Path) -> Result<[u8; 32], UpdateError> {
    let text = std::fs::read_to_string(path).map_err(|source| UpdateError::KeyRead {
        path: path.to_owned(),
        source,
    })?;
    B64.decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| UpdateError::KeyFormat {
            path: path.to_owned(),
        })
}

/// The keys an agent accepts releases from.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys(Vec<PublicKey>);

impl TrustedKeys {
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        TrustedKeys(keys.into_iter().collect())
    }

    pub fn add(&mut self, key: PublicKey) {
        if !self.0.contains(&key) {
            self.0.push(key);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn find(&self, id: &str) -> Option<&PublicKey> {
        self.0.iter().find(|k| k.id() == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_written_pair_reads_back_and_the_secret_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let pair = KeyPair::generate(&mut rand::thread_rng());
        let (secret, public) = pair.write(dir.path()).unwrap();
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(KeyPair::read(&secret).unwrap().public(), pair.public());
        assert_eq!(PublicKey::read(&public).unwrap(), pair.public());
        assert!(!format!("{pair:?}").contains(&B64.encode(pair.0.to_bytes())));
        // A second keygen into the same directory does not overwrite the first pair.
        assert!(pair.write(dir.path()).is_err());
    }
}
