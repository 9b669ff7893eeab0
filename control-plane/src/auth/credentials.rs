//! The admin credentials file: AWS shared-credentials format, profile `default`, mode 0600.
//!
//! Created on first start so that `AWS_SHARED_CREDENTIALS_FILE=DIR/admin-credentials aws ...`
//! works as is; later starts read it back.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::distributions::Alphanumeric;
use rand::{Rng, RngCore};

use crate::error::Error;
use crate::secret::Secret;

/// An access key and its secret.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

impl AccessKey {
    /// A new random key pair in AWS's shapes (20-char `AKIA...` id, 40-char secret).
    pub fn generate(rng: &mut impl RngCore) -> AccessKey {
        let id: String = (0..16)
            .map(|_| {
                let c = rng.gen_range(0..36u8);
                (if c < 10 { b'0' + c } else { b'A' + c - 10 }) as char
            })
            .collect();
        let secret: String = rng
            .sample_iter(&Alphanumeric)
            .take(40)
            .map(char::from)
            .collect();
        AccessKey {
            access_key_id: format!("AKIA{id}"),
            secret_access_key: Secret::new(secret),
        }
    }
}

/// Reads the admin credentials at `path`, creating them (0600) if the file does not exist.
pub fn load_or_create(path: &Path, rng: &mut impl RngCore) -> Result<AccessKey, Error> {
    if path.exists() {
        return read(path);
    }
    let key = AccessKey::generate(rng);
    let text = format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id,
        key.secret_access_key.expose()
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| Error::Io {
            action: "create",
            path: path.to_owned(),
            source,
        })?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|source| Error::Io {
            action: "write",
            path: path.to_owned(),
            source,
        })?;
    Ok(key)
}

fn read(path: &Path) -> Result<AccessKey, Error> {
    let bad = |message: String| Error::Credentials {
        path: path.to_owned(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(bad(format!(
            "mode is {:o}; it holds a secret and must be readable by its owner only (chmod 600)",
            meta.permissions().mode() & 0o777
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    let (mut id, mut secret, mut in_default) = (None, None, false);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_default = line == "[default]";
            continue;
        }
        if !in_default {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_owned()),
                "aws_secret_access_key" => secret = Some(Secret::new(v.trim())),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(AccessKey {
            access_key_id,
            secret_access_key,
        }),
        _ => Err(bad(
            "profile [default] needs aws_access_key_id and aws_secret_access_key".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-credentials");
        let created = load_or_create(&path, &mut rand::thread_rng()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create(&path, &mut rand::thread_rng()).unwrap();
        assert_eq!(created.access_key_id, again.access_key_id);
        assert_eq!(created.secret_access_key, again.secret_access_key);
        assert_eq!(created.access_key_id.len(), 20);
        assert!(!format!("{created:?}").contains(created.secret_access_key.expose()));
    }

    #[test]
    fn group_readable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-credentials");
        load_or_create(&path, &mut rand::thread_rng()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read(&path), Err(Error::Credentials { .. })));
    }
}
