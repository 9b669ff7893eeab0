//! What the build baked in: the version and, in test builds only, a deliberate fault.
//!
//! The binary (`main.rs`) reads `BGW_VERSION` and `BGW_BUILD_FAULT` at compile time and hands
//! them to the library once at start with [`init`], so a build of another version recompiles
//! only `main.rs`, not the library. Without `BGW_VERSION` the crate version is used.

use std::sync::OnceLock;

static BUILD: OnceLock<(&'static str, BuildFault)> = OnceLock::new();

/// A deliberately broken build for the update tests. Release builds have [`BuildFault::None`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildFault {
    None,
    /// `BGW_BUILD_FAULT=exit-at-start`: `bgw-agent run` exits with an error at once.
    ExitAtStart,
    /// `BGW_BUILD_FAULT=no-heartbeat`: the daemon runs but never sends a heartbeat.
    NoHeartbeat,
}

impl BuildFault {
    fn parse(text: &str) -> Self {
        match text.trim() {
            "exit-at-start" => BuildFault::ExitAtStart,
            "no-heartbeat" => BuildFault::NoHeartbeat,
            _ => BuildFault::None,
        }
    }
}

/// Records the version and fault the binary was built with. Later calls change nothing.
pub fn init(version: Option<&'static str>, fault: Option<&'static str>) {
    let version = version
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(env!("CARGO_PKG_VERSION"));
    let _ = BUILD.set((version, BuildFault::parse(fault.unwrap_or_default())));
}

/// The version of this build (`BGW_VERSION` at build time, else the crate version).
pub fn version() -> &'static str {
    BUILD.get().map_or(env!("CARGO_PKG_VERSION"), |b| b.0)
}

/// The fault baked into a test build; [`BuildFault::None`] in real builds.
pub fn build_fault() -> BuildFault {
    BUILD.get().map_or(BuildFault::None, |b| b.1)
}
