//! `type: file`: JSON Lines appended with one `write` + `fdatasync` per
//! batch, rotated by size (`path` → `path.1` → … → `path.<keep>`).
//!
//! A crash between the write and the cursor move repeats the batch: the
//! file may hold a line twice, never miss one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::destination::{Failure, Item};
use crate::spec::FileSpec;
use crate::SinkError;

/// The file sink.
pub struct FileSink {
    spec: FileSpec,
    file: Option<(File, u64)>,
    buf: Vec<u8>,
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl FileSink {
    /// A sink writing `spec.path` (its directory must exist).
    pub fn new(spec: FileSpec) -> Result<FileSink, SinkError> {
        let dir = spec
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(SinkError::Config(format!(
                "path: directory {} of {} does not exist",
                dir.display(),
                spec.path.display()
            )));
        }
        Ok(FileSink {
            spec,
            file: None,
            buf: Vec::new(),
        })
    }

    fn open(&mut self) -> std::io::Result<&mut (File, u64)> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.spec.path)?;
            let len = f.metadata()?.len();
            self.file = Some((f, len));
        }
        // Set just above.
        Ok(self.file.as_mut().expect("file is open"))
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let path = &self.spec.path;
        if self.spec.keep == 0 {
            return std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(rotated(path, self.spec.keep));
        for n in (1..self.spec.keep).rev() {
            let from = rotated(path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(path, n + 1))?;
            }
        }
        std::fs::rename(path, rotated(path, 1))
    }

    fn write(&mut self, items: &[Item]) -> std::io::Result<()> {
        self.buf.clear();
        for it in items {
            self.buf.extend_from_slice(&it.json);
            self.buf.push(b'\n');
        }
        let add = self.buf.len() as u64;
        let len = self.open()?.1;
        if len > 0 && len + add > self.spec.max_bytes {
            self.rotate()?;
        }
        let buf = std::mem::take(&mut self.buf);
        let res = (|| {
            let (f, len) = self.open()?;
            f.write_all(&buf)?;
            f.sync_data()?;
            *len += add;
            Ok(())
        })();
        self.buf = buf;
        if res.is_err() {
            // Reopen next time: the length we track may be off now.
            self.file = None;
        }
        res
    }

    /// Append the batch and fdatasync.
    pub async fn deliver(&mut self, items: &[Item]) -> Result<(), Failure> {
        // A local write + fdatasync of one batch: short, and it must
        // finish before the cursor moves, so it runs in place (block_in_place
        // keeps other tasks of this worker moving).
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let res = if multi {
            tokio::task::block_in_place(|| self.write(items))
        } else {
            self.write(items)
        };
        res.map_err(|e| {
            Failure::retry(
                items.len(),
                format!("cannot write {}: {e}", self.spec.path.display()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u64) -> Item {
        let mut i = eventlog::TriggerInstance::new(
            "p.t".into(),
            "p.t".into(),
            serde_json::json!({"n": n, "pad": "x".repeat(100)}),
            None,
        );
        i.seq = n;
        Item::new(&i, 0)
    }

    #[tokio::test]
    async fn appends_lines_and_rotates_keeping_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut sink = FileSink::new(FileSpec {
            path: path.clone(),
            max_bytes: 1000,
            keep: 2,
        })
        .unwrap();
        for n in 0..30 {
            sink.deliver(&[item(2 * n), item(2 * n + 1)]).await.unwrap();
        }
        let lines = |p: &Path| -> Vec<u64> {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                        .as_u64()
                        .unwrap()
                })
                .collect()
        };
        let cur = lines(&path);
        let one = lines(&rotated(&path, 1));
        let two = lines(&rotated(&path, 2));
        assert!(!rotated(&path, 3).exists(), "keep: 2");
        assert!(std::fs::metadata(&path).unwrap().len() <= 1000);
        assert_eq!(*cur.last().unwrap(), 59);
        assert_eq!(
            *one.last().unwrap() + 1,
            cur[0],
            "path.1 holds what came just before"
        );
        assert_eq!(*two.last().unwrap() + 1, one[0]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(FileSink::new(FileSpec {
            path: dir.path().join("missing/x.jsonl"),
            max_bytes: 1,
            keep: 1
        })
        .is_err());
    }
}
