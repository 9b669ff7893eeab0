//! The `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` header.

use crate::error::Error;
use crate::ALGORITHM;

/// The parts of a SigV4 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// The credential scope's date, `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case header names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    pub fn parse(value: &str) -> Result<Self, Error> {
        let bad = |why: String| Error::MalformedAuthorization(why);
        let rest = value
            .strip_prefix(ALGORITHM)
            .filter(|r| r.starts_with(' '))
            .ok_or_else(|| bad(format!("only {ALGORITHM} signatures are accepted")))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let incomplete = || bad("it needs Credential, SignedHeaders and Signature".into());
        let credential = credential.ok_or_else(incomplete)?;
        let signed = signed.ok_or_else(incomplete)?;
        let signature = signature.ok_or_else(incomplete)?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, "aws4_request"] = scope[..] else {
            return Err(bad(format!(
                "credential scope {credential:?} is not ACCESS_KEY/DATE/REGION/SERVICE/aws4_request"
            )));
        };
        if access_key_id.is_empty() || signed.is_empty() || signature.is_empty() {
            return Err(incomplete());
        }
        Ok(Self {
            access_key_id: access_key_id.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers: signed
                .split(';')
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            signature: signature.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_header_and_refuses_garbage() {
        let a = Authorization::parse(
            "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/backup-gateway/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(a.access_key_id, "AK");
        assert_eq!(a.date, "20240101");
        assert_eq!(a.service, "backup-gateway");
        assert_eq!(a.signed_headers, vec!["host", "x-amz-date"]);
        for bad in [
            "Bearer x",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256X Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=0",
            "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_requestX, SignedHeaders=host, Signature=0",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Signature=0",
            "Basic Zm9vOmJhcg==",
        ] {
            assert!(
                matches!(
                    Authorization::parse(bad),
                    Err(Error::MalformedAuthorization(_))
                ),
                "{bad}"
            );
        }
    }
}
