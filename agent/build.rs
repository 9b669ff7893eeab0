//! Bakes the version into the agent: `BGW_VERSION=1.2.3 cargo build` makes an agent that
//! reports 1.2.3; without it, the crate version. `BGW_BUILD_FAULT` builds a deliberately
//! broken agent for the update tests (`exit`: the daemon exits at once; `silent`: it never
//! reaches the cloud). Release builds leave it unset.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BGW_VERSION");
    println!("cargo:rerun-if-env-changed=BGW_BUILD_FAULT");
    let version = std::env::var("BGW_VERSION")
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| std::env::var("CARGO_PKG_VERSION").expect("cargo sets it"));
    println!("cargo:rustc-env=BGW_AGENT_VERSION={version}");
    let fault = std::env::var("BGW_BUILD_FAULT").unwrap_or_default();
    println!("cargo:rustc-env=BGW_AGENT_BUILD_FAULT={fault}");
}
