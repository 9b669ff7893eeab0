//! Where things are: the repository, the Cargo target directory and the workspace binaries.

use std::path::{Path, PathBuf};

use crate::error::{HarnessError, Result};

/// Root of the repository (the Cargo workspace).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The profile directory the running test executable was built into (`target/debug`).
///
/// Test executables live in `<target>/<profile>/deps/`; workspace binaries next to `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    if dir.as_os_str().is_empty() {
        return repo_root().join("target").join("debug");
    }
    dir
}

/// The Cargo target directory (`CARGO_TARGET_DIR` or `<repo>/target`), derived from the test executable.
pub fn target_dir() -> PathBuf {
    let profile = profile_dir();
    profile
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// A binary of this workspace, e.g. `bgw-cloud`: `$<env_var>` if set, else `<profile dir>/<name>`.
pub fn workspace_binary(name: &str, env_var: &str) -> Result<PathBuf> {
    let path = match std::env::var_os(env_var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => profile_dir().join(name),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::BinaryMissing {
            path,
            env_var: env_var.to_string(),
        })
    }
}
