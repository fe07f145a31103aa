//! Retention: delete whole closed segments, oldest first, by age and total
//! size, never past a consumer's durable cursor unless `on_full:
//! drop_oldest` says so; decide whether appends are refused.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::cursor::sync_dir;
use crate::log::{lock, Inner};
use crate::options::OnFull;

impl Inner {
    /// Delete what retention allows; decide whether appends are refused.
    pub(crate) fn retention(&self, now: u64) {
        let _one = lock(&self.retention_lock);
        let r = &self.opts.retention;
        let segs = self.segments();
        let mut total: u64 = segs.iter().map(|s| s.state().len).sum();
        let cursors = lock(&self.cursors).clone();
        let mut refusing = None;
        let mut doomed = Vec::new();
        for seg in segs.iter() {
            let st = seg.state().clone();
            if !st.closed {
                break;
            }
            let too_old = st.records > 0
                && now.saturating_sub(st.last_ts) > r.max_age.as_millis() as u64
                || st.records == 0;
            let too_big = total > r.max_bytes;
            if !too_old && !too_big {
                break;
            }
            let lagging = cursors
                .iter()
                .filter(|(_, &c)| c < st.last_seq)
                .min_by_key(|(_, &c)| c);
            if let Some((name, &c)) = lagging {
                if !too_big {
                    break; // old, but a consumer still needs it
                }
                if r.on_full == OnFull::Reject {
                    refusing = Some(format!(
                        "the trigger-instance log is full (log.retention.max_bytes = {} bytes) and {} has not read past seq {c} in its oldest segment ({} records behind); fix or remove that consumer, raise log.retention.max_bytes, or set log.retention.on_full: drop_oldest",
                        r.max_bytes,
                        crate::cursor::describe(name),
                        self.progress.borrow().durable_seq.saturating_sub(c)
                    ));
                    break;
                }
                let unread = st.last_seq - c.max(seg.base.saturating_sub(1));
                self.counters
                    .dropped_records
                    .fetch_add(unread, Ordering::Relaxed);
                tracing::error!(
                    "trigger-instance log full (log.retention.max_bytes = {}): deleted segment {} with {unread} records {} had not read (on_full: drop_oldest)",
                    r.max_bytes,
                    seg.path.display(),
                    crate::cursor::describe(name)
                );
            }
            total -= st.len;
            doomed.push(seg.clone());
        }
        if refusing.is_none() && total > r.max_bytes {
            // Only the active segment is left over the limit: roll it so the
            // next pass can delete it.
            if segs.last().is_some_and(|s| s.state().records > 0) {
                self.roll_requested.store(true, Ordering::Relaxed);
            }
        }
        if !doomed.is_empty() {
            {
                let mut list = self.segments.write().unwrap_or_else(|p| p.into_inner());
                list.retain(|s| !doomed.iter().any(|d| Arc::ptr_eq(d, s)));
            }
            for seg in &doomed {
                let _ = std::fs::remove_file(seg.idx_path());
                match std::fs::remove_file(&seg.path) {
                    Ok(()) => {
                        self.counters
                            .deleted_segments
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            "trigger-instance log: retention deleted segment {} (seqs {}..={})",
                            seg.path.display(),
                            seg.base,
                            seg.state().last_seq
                        );
                    }
                    Err(e) => tracing::error!(
                        "trigger-instance log: could not delete {}: {e}",
                        seg.path.display()
                    ),
                }
            }
            let _ = sync_dir(&self.dir);
        }
        let mut full = lock(&self.full);
        if full.is_some() != refusing.is_some() {
            match &refusing {
                Some(why) => tracing::error!("{why}"),
                None => tracing::info!("trigger-instance log accepts appends again"),
            }
        }
        *full = refusing;
    }
}
