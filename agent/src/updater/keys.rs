//! The release keys built into the agent.
//!
//! A build trusts the ed25519 public keys listed in `BGW_RELEASE_KEYS` when it was compiled
//! (base64, as in a `release.pub` file, separated by commas); `[updates] trusted_keys` in the
//! configuration adds more. A gateway that trusts no key refuses every release.

use bgw_update::keys::PublicKey;
use bgw_update::TrustedKeys;

/// The keys baked in at build time.
pub fn built_in() -> TrustedKeys {
    parse(option_env!("BGW_RELEASE_KEYS").unwrap_or_default())
}

fn parse(list: &str) -> TrustedKeys {
    let mut keys = TrustedKeys::default();
    for text in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match PublicKey::from_base64(text) {
            Some(key) => keys.add(key),
            None => tracing::error!(
                key = text,
                "a built-in release key is not a base64 ed25519 key"
            ),
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use bgw_update::keys::KeyPair;

    #[test]
    fn a_list_of_keys_parses_and_garbage_is_left_out() {
        let a = KeyPair::generate(&mut rand::thread_rng()).public();
        let b = KeyPair::generate(&mut rand::thread_rng()).public();
        let keys = super::parse(&format!(
            " {}, {} ,not-a-key,",
            a.to_base64(),
            b.to_base64()
        ));
        assert_eq!(format!("{keys:?}").matches("PublicKey").count(), 2);
        assert!(super::parse("").is_empty());
    }
}
