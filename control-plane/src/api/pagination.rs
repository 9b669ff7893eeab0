//! `MaxResults` / `NextToken` handling.
//!
//! A token is opaque to clients: base64url of `v1|<list>|<last ARN returned>`. Lists resume
//! strictly after that ARN, so records created or deleted between pages never shift or repeat
//! the ones already returned.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::error::ApiError;

/// Page size when the client gives no `MaxResults`.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page returned, whatever `MaxResults` asks for (more pages follow).
pub const MAX_PAGE_SIZE: usize = 1000;

/// Effective page size for a `MaxResults` (already validated as >= 1).
pub fn page_size(max_results: Option<i64>) -> usize {
    match max_results {
        Some(n) if n > 0 => (n as usize).min(MAX_PAGE_SIZE),
        _ => DEFAULT_PAGE_SIZE,
    }
}

/// Token for the page after `last_arn` in list `list`.
pub fn encode_token(list: &str, last_arn: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1|{list}|{last_arn}"))
}

/// The ARN to resume after, or a `ValidationException` for a token this list did not issue.
pub fn decode_token(list: &str, token: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::validation(format!(
            "NextToken is not valid for this list: pass the NextToken of the previous {list} page unchanged"
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '|');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(l), Some(arn)) if l == list && arn.starts_with("arn:") => {
            Ok(Some(arn.to_owned()))
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let arn = "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-1";
        let t = encode_token("gateways", arn);
        assert_eq!(
            decode_token("gateways", Some(&t)).unwrap().as_deref(),
            Some(arn)
        );
        assert!(decode_token("hypervisors", Some(&t)).is_err());
        assert!(decode_token("gateways", Some("not a token")).is_err());
        assert!(decode_token("gateways", Some(&URL_SAFE_NO_PAD.encode("v1|gateways|x"))).is_err());
        assert_eq!(decode_token("gateways", None).unwrap(), None);
        assert_eq!(page_size(None), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some(3)), 3);
        assert_eq!(page_size(Some(1_000_000)), MAX_PAGE_SIZE);
    }
}
