//! [`Log`]: the segment-file implementation of [`crate::EventLog`].
//!
//! One writer thread owns the active segment. Appenders queue batches
//! ([`Log::append`]); the writer takes everything queued, frames it, writes
//! it with one `pwrite` and makes it durable with one `fdatasync` (group
//! commit), then completes every batch it covered. Readers open segment
//! files themselves and never look past a segment's durable length.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::cursor::{check_name, sync_dir, Cursors};
use crate::error::LogError;
use crate::instance::{ms_rfc3339, now_ms, uuid_v7_ms};
use crate::options::{LogOptions, OnFull};
use crate::record::{encode, StoredRecord, HEADER, MAGIC};
use crate::segment::{self, IndexEntry, SegState, Segment, INDEX_INTERVAL};

/// How far a record's append time may trail its id's time (the id is made
/// when the dispatch is validated, the time when it is written): how far
/// past the id's millisecond [`Log::find_id`] looks.
const ID_SLACK_MS: u64 = 60_000;
/// Largest write the writer builds at once.
const MAX_WRITE: usize = 16 * 1024 * 1024;

/// Records to append together: bodies back to back in one buffer.
#[derive(Debug, Default, Clone)]
pub struct RecordBatch {
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// Append time to record (clamped so time never goes back); `None` is
    /// now. Used when migrating old instances.
    pub ts_ms: Option<u64>,
}

impl RecordBatch {
    /// An empty batch.
    pub fn new() -> RecordBatch {
        RecordBatch::default()
    }

    /// Add one record whose body `write` appends to the buffer it is given.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.buf);
        self.ends.push(self.buf.len());
    }

    /// Add one record.
    pub fn push(&mut self, body: &[u8]) {
        self.push_with(|b| b.extend_from_slice(body));
    }

    /// Records in it.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when it has no record.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of bodies in it.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    fn bodies(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let b = &self.buf[start..end];
            start = end;
            b
        })
    }
}

const PENDING: u8 = 0;
const DONE: u8 = 1;
const FAILED: u8 = 2;

#[derive(Debug, Default)]
struct Slot {
    state: AtomicU8,
    first_seq: AtomicU64,
    error: OnceLock<LogError>,
}

/// A queued batch's promise: [`Completion::wait`] returns the seq of its
/// first record once the batch is durable, or why it is not.
#[derive(Clone)]
pub struct Completion {
    slot: Arc<Slot>,
    progress: watch::Receiver<Progress>,
}

impl Completion {
    fn result(&self) -> Option<Result<u64, LogError>> {
        match self.slot.state.load(Ordering::Acquire) {
            DONE => Some(Ok(self.slot.first_seq.load(Ordering::Relaxed))),
            FAILED => Some(Err(self
                .slot
                .error
                .get()
                .cloned()
                .unwrap_or(LogError::Closed))),
            _ => None,
        }
    }

    /// Already durable (or failed)?
    pub fn is_done(&self) -> bool {
        self.slot.state.load(Ordering::Acquire) != PENDING
    }

    /// Wait until durable; the seq of the batch's first record.
    pub async fn wait(&self) -> Result<u64, LogError> {
        if let Some(r) = self.result() {
            return r;
        }
        let mut rx = self.progress.clone();
        let _ = rx.wait_for(|_| self.is_done()).await;
        self.result().unwrap_or(Err(LogError::Closed))
    }

    /// Blocking variant for threads outside the runtime.
    pub fn wait_blocking(&self) -> Result<u64, LogError> {
        loop {
            if let Some(r) = self.result() {
                return r;
            }
            if self.progress.has_changed().is_err() {
                return self.result().unwrap_or(Err(LogError::Closed));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// What the writer has done, for waiters and tails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every record up to this seq is durable.
    pub durable_seq: u64,
    /// Bumped by every commit attempt (success or failure).
    pub generation: u64,
}

struct Pending {
    batch: RecordBatch,
    slot: Arc<Slot>,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Pending>,
    stop: bool,
}

/// Counters shown by [`Log::stats`].
#[derive(Debug, Default)]
struct Counters {
    appended: AtomicU64,
    commits: AtomicU64,
    failed_commits: AtomicU64,
    rejected: AtomicU64,
    dropped_records: AtomicU64,
    deleted_segments: AtomicU64,
}

pub(crate) struct Inner {
    dir: PathBuf,
    opts: LogOptions,
    segments: RwLock<Vec<Arc<Segment>>>,
    queue: Mutex<Queue>,
    wake: Condvar,
    queued_bytes: AtomicU64,
    progress: watch::Sender<Progress>,
    cursor_files: Cursors,
    cursors: Mutex<BTreeMap<String, u64>>,
    /// Why appends are refused (`on_full: reject`), when they are.
    full: Mutex<Option<String>>,
    /// One retention pass at a time (the writer, `enforce_retention`).
    retention_lock: Mutex<()>,
    /// The active segment should be rolled at the next chance.
    roll_requested: std::sync::atomic::AtomicBool,
    counters: Counters,
    _lock: File,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data are plain values that stay consistent on panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The segment-file log in one directory.
pub struct Log {
    inner: Arc<Inner>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Log {
    /// Open (or create) the log in `dir`: recover the segments, start the
    /// writer. A torn tail is cut off with a WARNING; the log always opens
    /// unless the directory itself is unusable or locked.
    pub fn open(dir: &Path, opts: LogOptions) -> Result<Log, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| LogError::io(&lock_path, e))?;
        if lock_file.try_lock().is_err() {
            return Err(LogError::Locked { path: lock_path });
        }
        let (cursor_files, cursors) = Cursors::open(dir.join("cursors"))?;
        let segments = recover(dir)?;
        let durable = segments.last().map(|s| s.state().last_seq).unwrap_or(0);
        let (progress, _) = watch::channel(Progress {
            durable_seq: durable,
            generation: 0,
        });
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            opts,
            segments: RwLock::new(segments),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            queued_bytes: AtomicU64::new(0),
            progress,
            cursor_files,
            cursors: Mutex::new(cursors),
            full: Mutex::new(None),
            retention_lock: Mutex::new(()),
            roll_requested: false.into(),
            counters: Counters::default(),
            _lock: lock_file,
        });
        let active = Active::open(&inner)?;
        inner.retention(now_ms());
        let worker = inner.clone();
        let writer = std::thread::Builder::new()
            .name("eventlog-writer".into())
            .spawn(move || writer_loop(worker, active))
            .map_err(|e| LogError::io(dir, e))?;
        Ok(Log {
            inner,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Where the log lives.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Queue a batch for the next group commit. Never blocks; a log that
    /// refuses appends (full) fails the returned completion.
    pub fn append(&self, batch: RecordBatch) -> Completion {
        let slot = Arc::new(Slot::default());
        let completion = Completion {
            slot: slot.clone(),
            progress: self.inner.progress.subscribe(),
        };
        if batch.is_empty() {
            slot.first_seq.store(
                self.inner.progress.borrow().durable_seq + 1,
                Ordering::Relaxed,
            );
            slot.state.store(DONE, Ordering::Release);
            return completion;
        }
        self.inner
            .queued_bytes
            .fetch_add(batch.bytes() as u64, Ordering::Relaxed);
        let mut q = lock(&self.inner.queue);
        if q.stop {
            let _ = slot.error.set(LogError::Closed);
            slot.state.store(FAILED, Ordering::Release);
            return completion;
        }
        q.items.push_back(Pending { batch, slot });
        if q.items.len() == 1 {
            self.inner.wake.notify_one();
        }
        completion
    }

    /// Wait (up to `deadline`) while more than `max_queued_bytes` wait for
    /// the writer: the backpressure for sources that can be slowed down.
    /// False if the deadline passed first.
    pub async fn wait_for_room(&self, deadline: Duration) -> bool {
        let max = self.inner.opts.max_queued_bytes;
        if self.inner.queued_bytes.load(Ordering::Relaxed) <= max {
            return true;
        }
        let mut rx = self.inner.progress.subscribe();
        let room = async {
            let _ = rx
                .wait_for(|_| self.inner.queued_bytes.load(Ordering::Relaxed) <= max)
                .await;
        };
        tokio::time::timeout(deadline, room).await.is_ok()
    }

    /// Changes whenever records become durable (or a commit fails).
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.inner.progress.subscribe()
    }

    /// Seq of the newest durable record (0 when none was ever written).
    pub fn last_seq(&self) -> u64 {
        self.inner.progress.borrow().durable_seq
    }

    /// Seq of the oldest record still kept (`last_seq + 1` when empty).
    pub fn first_seq(&self) -> u64 {
        let segs = self.inner.segments();
        segs.iter()
            .find(|s| s.state().records > 0)
            .map(|s| {
                let st = s.state();
                st.index.first().map(|e| e.seq).unwrap_or(s.base)
            })
            .unwrap_or_else(|| self.last_seq() + 1)
    }

    /// Up to `max` records with seq ≥ `from`, in order. Records deleted by
    /// retention are simply not there: the first one returned may be later
    /// than `from`.
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<StoredRecord>, LogError> {
        let mut out = Vec::new();
        let durable = self.last_seq();
        if from > durable || max == 0 {
            return Ok(out);
        }
        for seg in self.inner.segments().iter() {
            let (last, closed) = {
                let st = seg.state();
                (st.last_seq, st.closed)
            };
            if last < from && closed {
                continue;
            }
            let (offset, end) = seg.seek_seq(from);
            let skips = seg.state().skips.clone();
            let file = match File::open(&seg.path) {
                Ok(f) => f,
                // Deleted by retention since the snapshot: its records are gone.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(LogError::io(&seg.path, e)),
            };
            let mut pos = offset;
            while pos < end && out.len() < max {
                let mut block = Vec::new();
                let stop = (pos + 4 * INDEX_INTERVAL).min(end);
                pos = read_span(&file, &seg.path, pos, stop, end, &skips, &mut block)?;
                out.extend(
                    block
                        .into_iter()
                        .filter(|r| r.seq >= from && r.seq <= durable)
                        .take(max - out.len()),
                );
            }
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// Up to `max` records with seq < `before`, newest first.
    pub fn read_back(&self, before: u64, max: usize) -> Result<Vec<StoredRecord>, LogError> {
        let mut out = Vec::new();
        let before = before.min(self.last_seq() + 1);
        for seg in self.inner.segments().iter().rev() {
            if out.len() >= max {
                break;
            }
            if seg.base >= before {
                continue;
            }
            let (index, len, skips) = {
                let st = seg.state();
                (st.index.clone(), st.len, st.skips.clone())
            };
            let file = match File::open(&seg.path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(LogError::io(&seg.path, e)),
            };
            // Blocks between index entries, last block first.
            let mut bounds: Vec<u64> = index.iter().map(|e| e.offset).collect();
            if bounds.first() != Some(&(MAGIC.len() as u64)) {
                bounds.insert(0, MAGIC.len() as u64);
            }
            bounds.push(len);
            // Block b starts at index entry b: blocks 0..top hold seqs < before.
            let top = index
                .partition_point(|e| e.seq < before)
                .min(bounds.len() - 1);
            for b in (0..top).rev() {
                let (from, to) = (bounds[b], bounds[b + 1]);
                if from >= to {
                    continue;
                }
                let mut block = Vec::new();
                segment::read_block(&file, &seg.path, from, to, &skips, usize::MAX, &mut block)?;
                for r in block.into_iter().rev() {
                    if r.seq < before && out.len() < max {
                        out.push(r);
                    }
                }
                if out.len() >= max {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The record with this seq, if kept.
    pub fn get_seq(&self, seq: u64) -> Result<Option<StoredRecord>, LogError> {
        Ok(self.read(seq, 1)?.into_iter().find(|r| r.seq == seq))
    }

    /// The first kept seq whose append time is at or after `ms`
    /// (`last_seq + 1` when none is).
    pub fn seq_at_time(&self, ms: u64) -> Result<u64, LogError> {
        for seg in self.inner.segments().iter() {
            let st = seg.state().clone();
            if st.records == 0 || st.last_ts < ms {
                continue;
            }
            let mut from = seg.base;
            let at = st.index.partition_point(|e| e.ts_ms < ms);
            if at > 0 {
                from = st.index[at - 1].seq;
            }
            loop {
                let recs = self.read(from, 1024)?;
                if recs.is_empty() {
                    break;
                }
                if let Some(r) = recs.iter().find(|r| r.ts_ms >= ms) {
                    return Ok(r.seq);
                }
                from = recs.last().map(|r| r.seq + 1).unwrap_or(from);
            }
        }
        Ok(self.last_seq() + 1)
    }

    /// Find an instance by its UUIDv7 id without scanning the log: only
    /// records appended within [`ID_SLACK_MS`] after the id's millisecond
    /// are read. `matches` says whether a body is the one.
    pub fn find_id(
        &self,
        id: &uuid::Uuid,
        matches: impl Fn(&[u8]) -> bool,
    ) -> Result<Option<StoredRecord>, LogError> {
        let Some(ms) = uuid_v7_ms(id) else {
            return Ok(None);
        };
        let mut from = self.seq_at_time(ms)?;
        loop {
            let recs = self.read(from, 1024)?;
            if recs.is_empty() {
                return Ok(None);
            }
            for r in &recs {
                if r.ts_ms > ms + ID_SLACK_MS {
                    return Ok(None);
                }
                if matches(&r.body) {
                    return Ok(Some(r.clone()));
                }
            }
            from = recs.last().map(|r| r.seq + 1).unwrap_or(from);
        }
    }

    /// A consumer's cursor: the last seq it has finished (`None` when it
    /// has none).
    pub fn cursor(&self, name: &str) -> Option<u64> {
        lock(&self.inner.cursors).get(name).copied()
    }

    /// Create a cursor at `seq` unless it exists; returns its value.
    pub fn open_cursor(&self, name: &str, seq: u64) -> Result<u64, LogError> {
        check_name(name)?;
        if let Some(v) = self.cursor(name) {
            return Ok(v);
        }
        self.set_cursor(name, seq)?;
        Ok(seq)
    }

    /// Durably move a cursor (the consumer finished everything ≤ `seq`).
    pub fn set_cursor(&self, name: &str, seq: u64) -> Result<(), LogError> {
        check_name(name)?;
        self.inner.cursor_files.store(name, seq)?;
        lock(&self.inner.cursors).insert(name.to_string(), seq);
        Ok(())
    }

    /// Remove a cursor (it no longer holds back retention).
    pub fn delete_cursor(&self, name: &str) -> Result<(), LogError> {
        check_name(name)?;
        self.inner.cursor_files.remove(name)?;
        lock(&self.inner.cursors).remove(name);
        Ok(())
    }

    /// Why appends are refused right now, if they are.
    pub fn refusing(&self) -> Option<String> {
        lock(&self.inner.full).clone()
    }

    /// Run retention now (it also runs every `check_interval` and at roll).
    pub fn enforce_retention(&self) {
        self.inner.retention(now_ms());
    }

    /// Segments, bytes, seqs, retention settings and cursors.
    pub fn stats(&self) -> LogStats {
        let inner = &self.inner;
        let segs = inner.segments();
        let last_seq = self.last_seq();
        let segments: Vec<SegmentStats> = segs
            .iter()
            .map(|s| {
                let st = s.state();
                SegmentStats {
                    file: s
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    first_seq: s.base,
                    last_seq: st.last_seq,
                    records: st.records,
                    bytes: st.len,
                    first_time: (st.records > 0).then(|| ms_rfc3339(st.first_ts)),
                    last_time: (st.records > 0).then(|| ms_rfc3339(st.last_ts)),
                    closed: st.closed,
                }
            })
            .collect();
        let first = segments.iter().find(|s| s.records > 0);
        let last = segments.iter().rev().find(|s| s.records > 0);
        let cursors = lock(&inner.cursors)
            .iter()
            .map(|(name, &seq)| CursorStats {
                name: name.clone(),
                seq,
                lag: last_seq.saturating_sub(seq),
            })
            .collect();
        let r = &inner.opts.retention;
        let c = &inner.counters;
        LogStats {
            dir: inner.dir.display().to_string(),
            bytes: segments.iter().map(|s| s.bytes).sum(),
            records: segments.iter().map(|s| s.records).sum(),
            first_seq: first.map(|_| self.first_seq()),
            last_seq: (last_seq > 0).then_some(last_seq),
            first_time: first.and_then(|s| s.first_time.clone()),
            last_time: last.and_then(|s| s.last_time.clone()),
            segment_count: segments.len(),
            segments,
            retention: RetentionStats {
                max_age_seconds: r.max_age.as_secs(),
                max_bytes: r.max_bytes,
                on_full: r.on_full.as_str().into(),
                segment_bytes: inner.opts.segment_bytes,
                segment_max_age_seconds: inner.opts.segment_max_age.as_secs(),
            },
            cursors,
            refusing: self.refusing(),
            appended: c.appended.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            failed_commits: c.failed_commits.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            dropped_records: c.dropped_records.load(Ordering::Relaxed),
            deleted_segments: c.deleted_segments.load(Ordering::Relaxed),
        }
    }

    /// Stop the writer after it committed everything queued.
    pub fn close(&self) {
        {
            let mut q = lock(&self.inner.queue);
            q.stop = true;
            self.inner.wake.notify_one();
        }
        if let Some(h) = lock(&self.writer).take() {
            let _ = h.join();
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.close();
    }
}

/// Read whole records starting in `[from, stop)` (a record may end past
/// `stop`, never past `end`).
fn read_span(
    file: &File,
    path: &Path,
    from: u64,
    stop: u64,
    end: u64,
    skips: &[segment::Skip],
    out: &mut Vec<StoredRecord>,
) -> Result<u64, LogError> {
    let mut pos = from;
    while pos < stop {
        let before = out.len();
        pos = segment::read_block(file, path, pos, end, skips, before + 1, out)?;
        if out.len() == before {
            break;
        }
    }
    Ok(pos)
}

/// `log stats`, a stable interface (field names are documented).
#[derive(Debug, Clone, Serialize)]
pub struct LogStats {
    pub dir: String,
    pub bytes: u64,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    pub segment_count: usize,
    pub segments: Vec<SegmentStats>,
    pub retention: RetentionStats,
    pub cursors: Vec<CursorStats>,
    /// Why appends are refused, when they are.
    pub refusing: Option<String>,
    /// Since this process opened the log.
    pub appended: u64,
    pub commits: u64,
    pub failed_commits: u64,
    pub rejected: u64,
    pub dropped_records: u64,
    pub deleted_segments: u64,
}

/// One segment in [`LogStats`].
#[derive(Debug, Clone, Serialize)]
pub struct SegmentStats {
    pub file: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub records: u64,
    pub bytes: u64,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    pub closed: bool,
}

/// Retention settings in [`LogStats`].
#[derive(Debug, Clone, Serialize)]
pub struct RetentionStats {
    pub max_age_seconds: u64,
    pub max_bytes: u64,
    pub on_full: String,
    pub segment_bytes: u64,
    pub segment_max_age_seconds: u64,
}

/// One cursor in [`LogStats`].
#[derive(Debug, Clone, Serialize)]
pub struct CursorStats {
    pub name: String,
    pub seq: u64,
    /// Records appended after it.
    pub lag: u64,
}

/// Find and recover the segment files of `dir`, oldest first.
fn recover(dir: &Path) -> Result<Vec<Arc<Segment>>, LogError> {
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
    Ok(out)
}

impl Inner {
    fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Delete what retention allows; decide whether appends are refused.
    fn retention(&self, now: u64) {
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
                        "the trigger-instance log is full (log.retention.max_bytes = {} bytes) and consumer '{name}' has not read past seq {c} in its oldest segment ({} records behind); fix or remove that consumer, raise log.retention.max_bytes, or set log.retention.on_full: drop_oldest",
                        r.max_bytes,
                        self.progress.borrow().durable_seq.saturating_sub(c)
                    ));
                    break;
                }
                let unread = st.last_seq - c.max(seg.base.saturating_sub(1));
                self.counters
                    .dropped_records
                    .fetch_add(unread, Ordering::Relaxed);
                tracing::error!(
                    "trigger-instance log full (log.retention.max_bytes = {}): deleted segment {} with {unread} records consumer '{name}' had not read (on_full: drop_oldest)",
                    r.max_bytes,
                    seg.path.display()
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

/// The writer's handle on the active segment.
struct Active {
    seg: Arc<Segment>,
    file: File,
    next_seq: u64,
    last_ts: u64,
    /// Offset of the newest index entry.
    last_indexed: Option<u64>,
    /// An fdatasync failed on this file: roll before writing again.
    poisoned: bool,
}

impl Active {
    fn open(inner: &Inner) -> Result<Active, LogError> {
        let last = inner.segments().last().cloned();
        match last {
            Some(seg) => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&seg.path)
                    .map_err(|e| LogError::io(&seg.path, e))?;
                let st = seg.state().clone();
                Ok(Active {
                    next_seq: st.last_seq + 1,
                    last_ts: st.last_ts,
                    last_indexed: st.index.last().map(|e| e.offset),
                    seg,
                    file,
                    poisoned: false,
                })
            }
            None => {
                let (seg, file) = create_segment(&inner.dir, 1)?;
                inner
                    .segments
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(seg.clone());
                Ok(Active {
                    seg,
                    file,
                    next_seq: 1,
                    last_ts: 0,
                    last_indexed: None,
                    poisoned: false,
                })
            }
        }
    }

    fn should_roll(&self, opts: &LogOptions, now: u64) -> bool {
        let st = self.seg.state();
        st.records > 0
            && (self.poisoned
                || st.len >= opts.segment_bytes
                || now.saturating_sub(st.first_ts) >= opts.segment_max_age.as_millis() as u64)
    }

    /// Close this segment (write its index) and start the next.
    fn roll(&mut self, inner: &Inner) -> Result<(), LogError> {
        let (seg, file) = create_segment(&inner.dir, self.next_seq)?;
        {
            let mut st = self.seg.state_mut();
            st.closed = true;
        }
        if let Err(e) = segment::write_index(&self.seg) {
            tracing::warn!("trigger-instance log: could not write an index: {e}");
        }
        inner
            .segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(seg.clone());
        self.seg = seg;
        self.file = file;
        self.last_indexed = None;
        self.poisoned = false;
        Ok(())
    }
}

fn create_segment(dir: &Path, base: u64) -> Result<(Arc<Segment>, File), LogError> {
    let path = dir.join(Segment::file_name(base));
    let io = |e| LogError::io(&path, e);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    file.write_all_at(MAGIC, 0).map_err(io)?;
    file.sync_all().map_err(io)?;
    sync_dir(dir)?;
    let st = SegState {
        len: MAGIC.len() as u64,
        last_seq: base - 1,
        ..Default::default()
    };
    Ok((Arc::new(Segment::new(base, path, st)), file))
}

/// Logs a repeating error once a second with a count.
struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn error(&mut self, msg: &str) {
        match self.last {
            Some(t) if t.elapsed() < Duration::from_secs(1) => self.suppressed += 1,
            _ => {
                if self.suppressed > 0 {
                    tracing::error!(
                        "{msg} ({} more failed commits in the last second)",
                        self.suppressed
                    );
                } else {
                    tracing::error!("{msg}");
                }
                self.last = Some(Instant::now());
                self.suppressed = 0;
            }
        }
    }
}

fn writer_loop(inner: Arc<Inner>, mut active: Active) {
    let mut last_check = Instant::now();
    let mut errors = RateLimited {
        last: None,
        suppressed: 0,
    };
    loop {
        let (pending, stop) = {
            let mut q = lock(&inner.queue);
            if q.items.is_empty() && !q.stop {
                let wait = inner
                    .opts
                    .check_interval
                    .saturating_sub(last_check.elapsed());
                q = inner
                    .wake
                    .wait_timeout(q, wait.max(Duration::from_millis(1)))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            let mut bytes = 0usize;
            let mut taken = Vec::new();
            while let Some(p) = q.items.front() {
                if !taken.is_empty() && bytes + p.batch.bytes() > MAX_WRITE {
                    break;
                }
                bytes += p.batch.bytes();
                taken.extend(q.items.pop_front());
            }
            (taken, q.stop && q.items.is_empty())
        };
        let now = now_ms();
        let housekeeping = last_check.elapsed() >= inner.opts.check_interval
            || lock(&inner.full).is_some() && last_check.elapsed() >= Duration::from_millis(100);
        if housekeeping {
            if active.seg.state().records > 0
                && (inner.roll_requested.swap(false, Ordering::Relaxed)
                    || active.should_roll(&inner.opts, now))
            {
                roll_or_log(&inner, &mut active, &mut errors);
            }
            inner.retention(now);
            last_check = Instant::now();
        }
        if !pending.is_empty() {
            commit(&inner, &mut active, pending, &mut errors);
        }
        if stop {
            return;
        }
    }
}

fn roll_or_log(inner: &Inner, active: &mut Active, errors: &mut RateLimited) {
    match active.roll(inner) {
        Ok(()) => inner.retention(now_ms()),
        // Keeps appending to the current segment; retried at the next commit.
        Err(e) => errors.error(&format!(
            "trigger-instance log: could not start a new segment: {e}"
        )),
    }
}

fn fail(inner: &Inner, pending: Vec<Pending>, err: LogError) {
    for p in pending {
        inner
            .queued_bytes
            .fetch_sub(p.batch.bytes() as u64, Ordering::Relaxed);
        let _ = p.slot.error.set(err.clone());
        p.slot.state.store(FAILED, Ordering::Release);
    }
    inner.progress.send_modify(|p| p.generation += 1);
}

fn commit(inner: &Inner, active: &mut Active, pending: Vec<Pending>, errors: &mut RateLimited) {
    if let Some(why) = lock(&inner.full).clone() {
        let n: usize = pending.iter().map(|p| p.batch.len()).sum();
        inner
            .counters
            .rejected
            .fetch_add(n as u64, Ordering::Relaxed);
        errors.error(&format!("rejected {n} trigger instances: {why}"));
        return fail(inner, pending, LogError::Full(why));
    }
    let now = now_ms();
    let roll = inner.roll_requested.load(Ordering::Relaxed) || active.should_roll(&inner.opts, now);
    if roll && active.seg.state().records > 0 {
        inner.roll_requested.store(false, Ordering::Relaxed);
        roll_or_log(inner, active, errors);
        if let Some(why) = lock(&inner.full).clone() {
            return fail(inner, pending, LogError::Full(why));
        }
    }
    let (start_len, was_empty) = {
        let st = active.seg.state();
        (st.len, st.records == 0)
    };
    let total: usize = pending
        .iter()
        .map(|p| p.batch.bytes() + p.batch.len() * HEADER)
        .sum();
    let mut buf = Vec::with_capacity(total);
    let mut seq = active.next_seq;
    let mut ts = active.last_ts;
    let mut first_ts = None;
    let mut index = Vec::new();
    let mut last_indexed = active.last_indexed;
    let mut firsts = Vec::with_capacity(pending.len());
    for p in &pending {
        ts = ts.max(p.batch.ts_ms.unwrap_or(now));
        firsts.push(seq);
        for body in p.batch.bodies() {
            let offset = start_len + buf.len() as u64;
            if last_indexed.is_none_or(|o| offset >= o + INDEX_INTERVAL) {
                index.push(IndexEntry {
                    seq,
                    offset,
                    ts_ms: ts,
                });
                last_indexed = Some(offset);
            }
            first_ts.get_or_insert(ts);
            encode(&mut buf, seq, ts, body);
            seq += 1;
        }
    }
    let written = active
        .file
        .write_all_at(&buf, start_len)
        .map_err(|e| (LogError::io(&active.seg.path, e), false))
        .and_then(|()| {
            active
                .file
                .sync_data()
                .map_err(|e| (LogError::io(&active.seg.path, e), true))
        });
    inner.counters.commits.fetch_add(1, Ordering::Relaxed);
    match written {
        Ok(()) => {
            let n = seq - active.next_seq;
            {
                let mut st = active.seg.state_mut();
                st.len = start_len + buf.len() as u64;
                st.last_seq = seq - 1;
                st.records += n;
                if was_empty {
                    st.first_ts = first_ts.unwrap_or(ts);
                }
                st.last_ts = ts;
                st.index.extend(index);
            }
            active.next_seq = seq;
            active.last_ts = ts;
            active.last_indexed = last_indexed;
            inner.counters.appended.fetch_add(n, Ordering::Relaxed);
            for (p, first) in pending.iter().zip(firsts) {
                inner
                    .queued_bytes
                    .fetch_sub(p.batch.bytes() as u64, Ordering::Relaxed);
                p.slot.first_seq.store(first, Ordering::Relaxed);
                p.slot.state.store(DONE, Ordering::Release);
            }
            inner.progress.send_modify(|p| {
                p.durable_seq = seq - 1;
                p.generation += 1;
            });
        }
        Err((err, in_sync)) => {
            // Give back what the failed write took; after a failed fdatasync
            // the file's cached pages cannot be trusted: roll away from it.
            let _ = active.file.set_len(start_len);
            if in_sync {
                active.poisoned = true;
            }
            inner
                .counters
                .failed_commits
                .fetch_add(1, Ordering::Relaxed);
            let n: usize = pending.iter().map(|p| p.batch.len()).sum();
            errors.error(&format!(
                "trigger-instance log: could not store {n} trigger instances: {err}"
            ));
            let reason = match &err {
                LogError::Io {
                    disk_full: true, ..
                } => format!("disk full: {err}"),
                _ => err.to_string(),
            };
            fail(inner, pending, LogError::NotDurable(reason));
        }
    }
}
