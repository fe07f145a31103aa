//! Opening a log directory: find the segments, trust a closed segment's
//! index file when it matches, scan the rest, cut a torn tail.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::LogError;
use crate::record::MAGIC;
use crate::segment::{self, Segment};

/// Find and recover the segment files of `dir`, oldest first.
pub(crate) fn recover(dir: &Path) -> Result<Vec<Arc<Segment>>, LogError> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(base) = stem.parse::<u64>() {
                bases.push(base);
            }
        } else if name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    bases.sort_unstable();
    let mut out: Vec<Arc<Segment>> = Vec::new();
    let n = bases.len();
    for (i, base) in bases.into_iter().enumerate() {
        let path = dir.join(Segment::file_name(base));
        let is_last = i + 1 == n;
        let file_len = std::fs::metadata(&path)
            .map_err(|e| LogError::io(&path, e))?
            .len();
        if !is_last {
            if let Some(st) = segment::read_index(&path, file_len) {
                out.push(Arc::new(Segment::new(base, path, st)));
                continue;
            }
        } else {
            let _ = std::fs::remove_file(path.with_extension("idx"));
        }
        let scanned = match segment::scan(&path, base, is_last) {
            Ok(s) => s,
            Err(e @ LogError::Corrupt { .. }) => {
                let aside = path.with_extension("log.corrupt");
                tracing::error!(
                    "trigger-instance log: {e}; moved it aside to {}",
                    aside.display()
                );
                std::fs::rename(&path, &aside).map_err(|e| LogError::io(&path, e))?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut st = scanned.state;
        if let Some((at, bytes)) = scanned.truncated {
            tracing::warn!(
                "trigger-instance log: torn tail in segment {}: dropped {bytes} bytes at offset {at} (after the last good record, seq {})",
                path.display(),
                st.last_seq
            );
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| LogError::io(&path, e))?;
            if at < MAGIC.len() as u64 {
                f.set_len(0).map_err(|e| LogError::io(&path, e))?;
                f.write_all_at(MAGIC, 0)
                    .map_err(|e| LogError::io(&path, e))?;
                st.len = MAGIC.len() as u64;
            } else {
                f.set_len(at).map_err(|e| LogError::io(&path, e))?;
            }
            f.sync_all().map_err(|e| LogError::io(&path, e))?;
        }
        st.closed = !is_last;
        if let Some(prev) = out.last() {
            let prev_last = prev.state().last_seq;
            if base != prev_last + 1 {
                tracing::warn!(
                    "trigger-instance log: records {}..{} are missing before segment {}",
                    prev_last + 1,
                    base.saturating_sub(1),
                    path.display()
                );
            }
        }
        let seg = Segment::new(base, path, st);
        if !is_last {
            // Next open reads the index instead of scanning again.
            if let Err(e) = segment::write_index(&seg) {
                tracing::warn!("trigger-instance log: could not write an index: {e}");
            }
        }
        out.push(Arc::new(seg));
    }
    // Whatever segment ended up last is the active one, even if a later
    // one was moved aside: never closed, so retention cannot delete it,
    // and without an index file, since it will grow.
    if let Some(last) = out.last() {
        last.state_mut().closed = false;
        let _ = std::fs::remove_file(last.idx_path());
    }
    Ok(out)
}
