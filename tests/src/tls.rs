//! Test certificates: a throw-away CA and a server certificate it signs, the way a vCenter
//! with VMCA-issued certificates looks to a client.

use std::net::{IpAddr, Ipv4Addr};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use sha2::{Digest, Sha256};

use crate::error::Result;

/// A CA and one server certificate for `127.0.0.1` and `localhost`, all PEM encoded.
#[derive(Clone)]
pub struct TestPki {
    /// PEM of the CA certificate: what a client trusts.
    pub ca_pem: String,
    /// PEM of the server certificate.
    pub cert_pem: String,
    /// PEM (PKCS#8) of the server's private key.
    pub key_pem: String,
    /// DER of the server certificate (what the thumbprint is computed over).
    pub cert_der: Vec<u8>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("thumbprint_sha256", &sha256_thumbprint(&self.cert_der))
            .field("key_pem", &"***")
            .finish()
    }
}

impl TestPki {
    /// Generates a fresh ECDSA P-256 CA and server certificate named `common_name`.
    pub fn generate(common_name: &str) -> Result<Self> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = name(&format!("{common_name} test CA"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;

        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.distinguished_name = name(common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca_cert, &ca_key)?;

        Ok(TestPki {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        })
    }

    /// SHA-256 thumbprint of the server certificate, as vSphere shows it (`AB:CD:…`).
    pub fn thumbprint_sha256(&self) -> String {
        sha256_thumbprint(&self.cert_der)
    }

    /// An HTTP client that trusts this CA (and nothing else).
    pub fn http_client(&self) -> Result<reqwest::Client, reqwest::Error> {
        http_client_trusting(&self.ca_pem)
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "backup gateway tests");
    dn
}

/// SHA-256 over DER, upper-case hex bytes joined by colons (`AB:CD:…`, 95 characters).
pub fn sha256_thumbprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An HTTP client (rustls) trusting only the CA certificates in `ca_pem`.
pub fn http_client_trusting(ca_pem: &str) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .timeout(std::time::Duration::from_secs(60));
    for cert in reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())? {
        builder = builder.add_root_certificate(cert);
    }
    builder.build()
}
