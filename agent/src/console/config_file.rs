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
///
/// Where the directory takes no new file but the file itself may be written (on the appliance:
/// `/etc/systemd/timesyncd.conf`, whose directory holds systemd's own configuration), the file
/// is rewritten in place instead: the administrator is granted that one file, not its directory.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match replace_by_rename(path, bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && path.is_file() => {
            rewrite_in_place(path, bytes).map_err(|_| e)
        }
        other => other,
    }
}

fn replace_by_rename(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

/// Truncates and rewrites `path`, keeping its inode, owner and mode. Not atomic: used only for
/// files whose directory the console may not write.
pub fn rewrite_in_place(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_rewritten_in_place_keeps_its_inode_and_mode_and_loses_its_old_tail() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timesyncd.conf");
        std::fs::write(
            &path,
            "[Time]\nNTP=a-long-server-name.example other.example\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        let before = std::fs::metadata(&path).unwrap();
        rewrite_in_place(&path, b"[Time]\nNTP=ntp.example\n").unwrap();
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[Time]\nNTP=ntp.example\n"
        );
        assert_eq!(after.ino(), before.ino());
        assert_eq!(after.mode() & 0o7777, 0o664);
    }

    #[test]
    fn a_replaced_file_keeps_its_mode_and_leaves_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        replace(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
