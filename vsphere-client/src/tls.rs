//! Certificate trust: system roots, a CA file, a pinned SHA-256 thumbprint, or
//! trust on first use. There is deliberately no "accept anything" mode: trust on
//! first use still records the thumbprint it saw so the caller can pin it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A SHA-256 certificate thumbprint.
///
/// Parsed from the colon-separated hex form vSphere shows (`AB:CD:...`), in any
/// case, or from bare hex; displayed in the colon-separated upper-case form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Thumbprint([u8; 32]);

impl Thumbprint {
    /// The thumbprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Thumbprint(Sha256::digest(der).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for Thumbprint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let hex_only: String = s
            .trim()
            .chars()
            .filter(|c| *c != ':' && *c != '-' && !c.is_whitespace())
            .collect();
        let bytes = hex::decode(&hex_only)
            .map_err(|_| Error::invalid(format!("thumbprint {s:?} is not hexadecimal")))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            Error::invalid(format!(
                "thumbprint {s:?} has {} bytes; a SHA-256 thumbprint has 32",
                b.len()
            ))
        })?;
        Ok(Thumbprint(arr))
    }
}

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({self})")
    }
}

/// How the server certificate is trusted.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The operating system's root certificates.
    SystemRoots,
    /// The CA certificates in a PEM file (e.g. the vCenter VMCA root).
    CaFile(PathBuf),
    /// Exactly the certificate with this SHA-256 thumbprint; anything else is refused.
    Thumbprint(Thumbprint),
    /// Accept the certificate presented now and report its thumbprint in
    /// [`ConnectInfo::seen_thumbprint`](crate::ConnectInfo) so it can be pinned.
    TrustOnFirstUse,
}

/// What the verifier saw, shared with the client to explain failures.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    pub seen: Option<Thumbprint>,
    /// Why the last certificate was refused; cleared when one is accepted.
    pub refused: Option<String>,
}

#[derive(Debug)]
enum Mode {
    WebPki(Arc<WebPkiServerVerifier>),
    Pin(Thumbprint),
    FirstUse,
}

#[derive(Debug)]
pub(crate) struct Verifier {
    mode: Mode,
    provider: Arc<CryptoProvider>,
    observed: Arc<Mutex<Observed>>,
}

impl Verifier {
    pub(crate) fn pinned(&self) -> Option<Thumbprint> {
        match self.mode {
            Mode::Pin(t) => Some(t),
            _ => None,
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let seen = Thumbprint::of_der(end_entity);
        let verdict = match &self.mode {
            Mode::WebPki(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Mode::Pin(expected) if *expected == seen => Ok(ServerCertVerified::assertion()),
            Mode::Pin(_) => Err(rustls::Error::General(
                "certificate does not match the pinned thumbprint".into(),
            )),
            Mode::FirstUse => Ok(ServerCertVerified::assertion()),
        };
        if let Ok(mut o) = self.observed.lock() {
            o.seen = Some(seen);
            o.refused = verdict.as_ref().err().map(|e| e.to_string());
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Builds the rustls configuration for a trust mode, plus the shared record of
/// the certificate the server presented.
pub(crate) fn client_config(
    trust: &Trust,
) -> Result<(rustls::ClientConfig, Arc<Verifier>, Arc<Mutex<Observed>>)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mode = match trust {
        Trust::SystemRoots => {
            let mut roots = RootCertStore::empty();
            let loaded = rustls_native_certs::load_native_certs();
            for cert in loaded.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(Error::invalid(
                    "no system root certificates found; use a CA file or a thumbprint",
                ));
            }
            Mode::WebPki(webpki(roots, &provider)?)
        }
        Trust::CaFile(path) => {
            use rustls::pki_types::pem::PemObject;
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                Error::invalid(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    Error::invalid(format!("bad certificate in {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    Error::invalid(format!("bad certificate in {}: {e}", path.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(Error::invalid(format!(
                    "no certificates in CA file {}",
                    path.display()
                )));
            }
            Mode::WebPki(webpki(roots, &provider)?)
        }
        Trust::Thumbprint(t) => Mode::Pin(*t),
        Trust::TrustOnFirstUse => Mode::FirstUse,
    };
    let observed = Arc::new(Mutex::new(Observed::default()));
    let verifier = Arc::new(Verifier {
        mode,
        provider: provider.clone(),
        observed: observed.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    Ok((config, verifier, observed))
}

fn webpki(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::invalid(format!("TLS setup: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_parses_vsphere_and_bare_forms() {
        let colon = "AB:cd:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD";
        let t: Thumbprint = colon.parse().unwrap();
        let bare: Thumbprint = colon.replace(':', "").parse().unwrap();
        assert_eq!(t, bare);
        assert_eq!(t.to_string(), colon.to_uppercase());
    }

    #[test]
    fn thumbprint_rejects_wrong_length_and_non_hex() {
        assert!("AB:CD".parse::<Thumbprint>().is_err());
        assert!("zz".repeat(32).parse::<Thumbprint>().is_err());
        // A SHA-1 thumbprint (20 bytes) is refused with a helpful message.
        let err = "ab".repeat(20).parse::<Thumbprint>().unwrap_err();
        assert!(err.to_string().contains("32"), "{err}");
    }
}
