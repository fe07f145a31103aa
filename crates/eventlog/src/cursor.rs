//! Durable consumer cursors: `<log>/cursors/<name>` holds the last seq the
//! consumer has finished. Written to a temporary file, fdatasync'd, renamed
//! over the old one and the directory fsync'd: a crash leaves the old or
//! the new value, never a torn one.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::LogError;

/// A cursor's on-disk directory.
pub(crate) struct Cursors {
    dir: PathBuf,
}

/// Cursor names become file names: keep them plain.
pub fn check_name(name: &str) -> Result<(), LogError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(LogError::Invalid(format!(
            "cursor name {name:?} must be 1-128 characters of A-Z a-z 0-9 - _ . (not starting with a dot)"
        )))
    }
}

impl Cursors {
    pub fn open(dir: PathBuf) -> Result<(Cursors, BTreeMap<String, u64>), LogError> {
        std::fs::create_dir_all(&dir).map_err(|e| LogError::io(&dir, e))?;
        let mut all = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| LogError::io(&dir, e))? {
            let entry = entry.map_err(|e| LogError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            if check_name(&name).is_err() {
                continue;
            }
            let text = std::fs::read_to_string(entry.path())
                .map_err(|e| LogError::io(&entry.path(), e))?;
            match text.trim().parse::<u64>() {
                Ok(seq) => {
                    all.insert(name, seq);
                }
                Err(_) => tracing::warn!(
                    "trigger-instance log: cursor file {} does not hold a sequence number; ignored",
                    entry.path().display()
                ),
            }
        }
        Ok((Cursors { dir }, all))
    }

    pub fn store(&self, name: &str, seq: u64) -> Result<(), LogError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let io = |e| LogError::io(&path, e);
        let mut f = File::create(&tmp).map_err(io)?;
        writeln!(f, "{seq}").map_err(io)?;
        f.sync_data().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        sync_dir(&self.dir)
    }

    pub fn remove(&self, name: &str) -> Result<(), LogError> {
        let path = self.dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LogError::io(&path, e)),
        }
    }
}

/// fsync a directory so a create, rename or unlink in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}
