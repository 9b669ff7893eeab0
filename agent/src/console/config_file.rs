//! Changes to the agent's configuration file made from the console (the cloud proxy, the time
//! zone): one key at a time, keeping the administrator's comments and layout, checked with the
//! agent's own validation before the file is replaced, so a mistake never leaves a file the
//! agent refuses to start with.

use std::path::Path;

use crate::config::Config;

/// What to do when a system file cannot be written.
pub const AS_ROOT: &str = " (log in as root to change it, or edit the file by hand)";

/// Sets `[table] key = value`, or removes the key with `None`.
pub fn set_key(path: &Path, table: &str, key: &str, value: Option<&str>) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let edited = edit(&text, table, key, value)
        .map_err(|e| format!("{} is not valid TOML: {e}", path.display()))?;
    Config::parse(&edited, path).map_err(|e| e.to_string())?;
    replace(path, edited.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}{AS_ROOT}", path.display()))
}

/// The text with `[table] key` set to the string `value` (or removed).
pub fn edit(
    text: &str,
    table: &str,
    key: &str,
    value: Option<&str>,
) -> Result<String, toml_edit::TomlError> {
    let mut doc: toml_edit::DocumentMut = text.parse()?;
    match value {
        Some(v) => {
            if !doc.contains_table(table) {
                doc[table] = toml_edit::table();
            }
            doc[table][key] = toml_edit::value(v);
        }
        None => {
            if let Some(t) = doc.get_mut(table).and_then(|t| t.as_table_mut()) {
                t.remove(key);
            }
        }
    }
    Ok(doc.to_string())
}

/// Writes `bytes` beside `path` and renames it over, keeping the file's mode.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.console-new"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
