//! ARNs of the resources this control plane owns, in AWS form:
//! `arn:aws:backup-gateway:REGION:ACCOUNT:gateway/bgw-<hex>` (also `hypervisor/hype-<hex>`,
//! `vm/vm-<hex>`).

use rand::RngCore;

/// Mints ARNs for one region and account.
#[derive(Debug, Clone)]
pub struct ArnFactory {
    pub region: String,
    pub account_id: String,
}

/// Kinds of resources with ARNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Gateway,
    Hypervisor,
    VirtualMachine,
}

impl ResourceKind {
    fn path_and_prefix(self) -> (&'static str, &'static str) {
        match self {
            ResourceKind::Gateway => ("gateway", "bgw"),
            ResourceKind::Hypervisor => ("hypervisor", "hype"),
            ResourceKind::VirtualMachine => ("vm", "vm"),
        }
    }
}

impl ArnFactory {
    pub fn new(region: impl Into<String>, account_id: impl Into<String>) -> Self {
        ArnFactory {
            region: region.into(),
            account_id: account_id.into(),
        }
    }

    /// A new, random ARN of `kind`.
    pub fn mint(&self, kind: ResourceKind, rng: &mut impl RngCore) -> String {
        let mut id = [0u8; 8];
        rng.fill_bytes(&mut id);
        let (path, prefix) = kind.path_and_prefix();
        format!(
            "arn:aws:backup-gateway:{}:{}:{path}/{prefix}-{}",
            self.region,
            self.account_id,
            hex::encode_upper(id)
        )
    }
}

/// The resource id at the end of an ARN (`bgw-...`, `hype-...`, `vm-...`).
pub fn resource_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_arns_match_the_model_pattern() {
        let f = ArnFactory::new("us-east-1", "123456789012");
        let re = regex::Regex::new(
            r"^arn:(aws|aws-cn|aws-us-gov):backup-gateway(:[a-zA-Z-0-9]+){3}/[a-zA-Z-0-9]+$",
        )
        .unwrap();
        let mut rng = rand::thread_rng();
        for kind in [
            ResourceKind::Gateway,
            ResourceKind::Hypervisor,
            ResourceKind::VirtualMachine,
        ] {
            let arn = f.mint(kind, &mut rng);
            assert!(re.is_match(&arn), "{arn}");
            assert!(arn.len() >= 50, "{arn}");
        }
        assert!(resource_id(&f.mint(ResourceKind::Gateway, &mut rng)).starts_with("bgw-"));
    }
}
