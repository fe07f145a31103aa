//! The data directory is private: created 0700 with files 0600 (the
//! binaries set umask 077), and an existing one is tightened on open with
//! a WARNING, since every stored payload and datastore value is in it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Subtrees holding stored data (not the runtime or virtualenvs: those
/// hold programs).
const PRIVATE_TREES: &[&str] = &["db", "log"];

fn tighten(path: &Path, is_dir: bool, fixed: &mut usize) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode() & 0o7777;
    // Directories may stay traversable (0711: `run_as` sensors reach the
    // runtime through the data dir); nothing may be readable or writable.
    let exposed = if is_dir { mode & 0o066 } else { mode & 0o077 };
    if exposed == 0 {
        return;
    }
    let wanted = if is_dir { 0o700 } else { mode & 0o700 };
    if std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted)).is_ok() {
        *fixed += 1;
    }
}

fn walk(dir: &Path, fixed: &mut usize) {
    tighten(dir, true, fixed);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&e.path(), fixed);
        } else if ft.is_file() {
            tighten(&e.path(), false, fixed);
        }
    }
}

/// Make `data_dir` 0700 and everything under its data trees owner-only;
/// returns how many entries were changed (and warns when any were).
pub fn secure_data_dir(data_dir: &Path) -> usize {
    let mut fixed = 0;
    tighten(data_dir, true, &mut fixed);
    for t in PRIVATE_TREES {
        let p = data_dir.join(t);
        if p.is_dir() {
            walk(&p, &mut fixed);
        }
    }
    if fixed > 0 {
        tracing::warn!(
            "{} was readable by other users: made {fixed} file(s) and director(ies) owner-only (0600/0700)",
            data_dir.display()
        );
    }
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_data_dir_is_made_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("db/blobs")).unwrap();
        std::fs::write(data.join("db/db"), b"x").unwrap();
        let runtime = data.join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        for p in [&data, &data.join("db"), &data.join("db/blobs"), &runtime] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(data.join("db/db"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        assert_eq!(secure_data_dir(&data), 4);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("db/db")), 0o600);
        assert_eq!(mode(&data.join("db/blobs")), 0o700);
        assert_eq!(mode(&runtime), 0o755, "programs are left alone");
        assert_eq!(secure_data_dir(&data), 0);
    }
}
