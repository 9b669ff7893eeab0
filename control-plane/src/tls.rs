//! The server's TLS certificate: operator-supplied, or self-signed on first start.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;

/// Where the certificate and key live.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The self-signed pair under the data directory: `DIR/tls/cert.pem`, `DIR/tls/key.pem`.
    pub fn in_data_dir(data: &Path) -> TlsFiles {
        TlsFiles {
            cert: data.join("tls").join("cert.pem"),
            key: data.join("tls").join("key.pem"),
        }
    }
}

/// Creates a self-signed certificate for `localhost`, `127.0.0.1`, `::1` and `listen_host`
/// unless both files already exist. The key is written 0600.
pub fn ensure_self_signed(files: &TlsFiles, listen_host: &str) -> Result<(), Error> {
    if files.cert.exists() && files.key.exists() {
        return Ok(());
    }
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let host = listen_host.trim_start_matches('[').trim_end_matches(']');
    let unspecified = host == "0.0.0.0" || host == "::" || host.is_empty();
    if !unspecified && !names.iter().any(|n| n == host) {
        names.push(host.to_owned());
    }
    if unspecified {
        if let Some(h) = system_hostname() {
            names.push(h);
        }
    }
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| Error::Tls {
        what: "cannot generate a self-signed certificate".into(),
        source: e.into(),
    })?;
    if let Some(dir) = files.cert.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            action: "create",
            path: dir.to_owned(),
            source,
        })?;
    }
    write_file(
        &files.key,
        certified.key_pair.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_file(&files.cert, certified.cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

fn system_hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let io = |action: &'static str| {
        move |source| Error::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io("create"))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io("write"))
}

/// Builds a rustls server configuration (ring provider) from PEM files.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| Error::Tls {
            what: format!("cannot read certificates from {}", files.cert.display()),
            source: e.into(),
        })?;
    if certs.is_empty() {
        return Err(Error::Tls {
            what: format!("cannot read certificates from {}", files.cert.display()),
            source: "the file holds no certificate".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| Error::Tls {
        what: format!("cannot read the private key {}", files.key.display()),
        source: e.into(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            what: "no usable TLS protocol version".into(),
            source: e.into(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls {
            what: "certificate and key do not form a usable pair".into(),
            source: e.into(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn self_signed_pair_is_created_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles::in_data_dir(dir.path());
        ensure_self_signed(&files, "127.0.0.1").unwrap();
        let first = std::fs::read(&files.cert).unwrap();
        ensure_self_signed(&files, "127.0.0.1").unwrap();
        assert_eq!(first, std::fs::read(&files.cert).unwrap());
        let mode = std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        server_config(&files).unwrap();
    }

    #[test]
    fn an_unreadable_certificate_keeps_its_cause() {
        use std::error::Error as _;
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("missing.pem"),
            key: dir.path().join("missing.key"),
        };
        let err = server_config(&files).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        assert!(err.source().is_some(), "{err:?}");
    }
}
