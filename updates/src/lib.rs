//! Signed releases of the gateway software, shared by the cloud that publishes them and the
//! agent that installs them.
//!
//! A release is an artifact (a tarball of what the update installs) and a [`Manifest`] that
//! names its version, SHA-256, size and the oldest version it upgrades from. The publisher signs
//! the manifest with an ed25519 key; the agent accepts it only under a key it trusts, and only
//! when the artifact matches it byte for byte.
//!
//! ```
//! use bgw_update::{keys::KeyPair, Manifest, TrustedKeys, Version};
//! let pair = KeyPair::generate(&mut rand::thread_rng());
//! let manifest = Manifest::new(Version::parse("1.2.3").unwrap(), b"artifact bytes");
//! let signed = manifest.sign(&pair);
//! let trusted = TrustedKeys::new([pair.public()]);
//! assert_eq!(trusted.verify(&signed).unwrap().version.to_string(), "1.2.3");
//! ```

pub mod error;
pub mod keys;
mod manifest;
mod version;

pub use error::UpdateError;
pub use keys::TrustedKeys;
pub use manifest::{Manifest, Refusal, SignedManifest};
pub use version::Version;
