//! Durable consumer cursors: `<log>/cursors/<name>` holds the last seq the
//! consumer has finished, as a fixed-width decimal line.
//!
//! Two ways to move one:
//! - [`Cursors::store`]: written to a temporary file, fdatasync'd, renamed
//!   over the old one and the directory fsync'd: a crash leaves the old or
//!   the new value, never a torn one.
//! - [`Cursors::advance`]: the same 21 bytes overwritten in place with one
//!   `pwrite`, no sync: the page cache holds it, so a process crash
//!   (`kill -9`) loses nothing; the writer thread fdatasyncs dirty cursors
//!   every `check_interval`, so power loss can only move a cursor back by
//!   that much (a consumer then redelivers, never skips). One write within
//!   one sector of an unchanged-size file: old or new value, never torn.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::LogError;
use crate::log::lock;

/// A cursor's on-disk directory.
pub(crate) struct Cursors {
    dir: PathBuf,
    /// Cursors advanced in place since their last fdatasync.
    dirty: Mutex<BTreeSet<String>>,
}

/// The on-disk form: fixed width, so an in-place overwrite never changes
/// the file's size.
fn line(seq: u64) -> String {
    format!("{seq:020}\n")
}

/// Cursors of sinks are named `sink.<name>`.
pub const SINK_PREFIX: &str = "sink.";

/// A consumer as an operator knows it: "sink 'x'" or "consumer 'y'".
pub fn describe(cursor: &str) -> String {
    match cursor.strip_prefix(SINK_PREFIX) {
        Some(sink) => format!("sink '{sink}' (see `sensorctl sink list`)"),
        None => format!("consumer '{cursor}'"),
    }
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
        Ok((
            Cursors {
                dir,
                dirty: Mutex::new(BTreeSet::new()),
            },
            all,
        ))
    }

    /// Move a cursor durably (fdatasync + rename + directory fsync).
    pub fn store(&self, name: &str, seq: u64) -> Result<(), LogError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let io = |e| LogError::io(&path, e);
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(line(seq).as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        lock(&self.dirty).remove(name);
        sync_dir(&self.dir)
    }

    /// Move an existing cursor in place without a sync (see the module
    /// docs); a cursor without a file yet is stored durably.
    pub fn advance(&self, name: &str, seq: u64) -> Result<(), LogError> {
        let path = self.dir.join(name);
        let f = match OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.store(name, seq),
            Err(e) => return Err(LogError::io(&path, e)),
        };
        f.write_all_at(line(seq).as_bytes(), 0)
            .map_err(|e| LogError::io(&path, e))?;
        lock(&self.dirty).insert(name.to_string());
        Ok(())
    }

    /// fdatasync every cursor advanced in place since its last sync.
    pub fn sync_dirty(&self) -> Result<(), LogError> {
        let names = std::mem::take(&mut *lock(&self.dirty));
        for name in names {
            let path = self.dir.join(&name);
            match File::open(&path).and_then(|f| f.sync_data()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    lock(&self.dirty).insert(name);
                    return Err(LogError::io(&path, e));
                }
            }
        }
        Ok(())
    }

    pub fn remove(&self, name: &str) -> Result<(), LogError> {
        let path = self.dir.join(name);
        lock(&self.dirty).remove(name);
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
