//! [`Log`]: the segment-file implementation of [`crate::EventLog`].
//!
//! One writer thread owns the active segment. Appenders queue batches
//! ([`Log::append`]); the writer takes everything queued, frames it, writes
//! it with one `pwrite` and makes it durable with one `fdatasync` (group
//! commit), then completes every batch it covered. Readers open segment
//! files themselves and never look past a segment's durable length.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::cursor::{check_name, Cursors};
use crate::error::LogError;
use crate::instance::{ms_rfc3339, now_ms, uuid_v7_ms};
use crate::options::LogOptions;
use crate::record::{StoredRecord, MAGIC};
use crate::recover::recover;
use crate::segment::{self, Segment, INDEX_INTERVAL};
use crate::writer::{writer_loop, Active};

/// How far a record's append time may trail its id's time (the id is made
/// when the dispatch is validated, the time when it is written): how far
/// past the id's millisecond [`Log::find_id`] looks.
const ID_SLACK_MS: u64 = 60_000;

/// Records to append together: bodies back to back in one buffer.
#[derive(Debug, Default, Clone)]
pub struct RecordBatch {
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// Append time to record (clamped so time never goes back); `None` is
    /// now. Used when migrating old instances.
    pub ts_ms: Option<u64>,
    /// Who appends it (a sensor's connection, an HTTP route; 0 = anyone):
    /// one group commit takes at most [`SOURCE_SHARE`] bytes from each
    /// source while others wait, so a flooding source cannot make every
    /// commit, and so every other source's ack, as slow as its backlog.
    /// A source's batches keep their order.
    pub source: u64,
}

/// Bytes of one source's batches a group commit takes while other
/// sources' batches are queued behind them (at least one batch each).
pub const SOURCE_SHARE: usize = 1024 * 1024;

impl RecordBatch {
    /// An empty batch.
    pub fn new() -> RecordBatch {
        RecordBatch::default()
    }

    /// An empty batch from `source` (see [`RecordBatch::source`]).
    pub fn from_source(source: u64) -> RecordBatch {
        RecordBatch {
            source,
            ..RecordBatch::default()
        }
    }

    /// An empty batch from the source named `name` (a sensor's ref, a
    /// trigger type's ref for HTTP front doors): a stable non-zero id.
    pub fn from_source_name(name: &str) -> RecordBatch {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        RecordBatch::from_source(h.finish() | 1)
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

    pub(crate) fn bodies(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let b = &self.buf[start..end];
            start = end;
            b
        })
    }
}

pub(crate) const PENDING: u8 = 0;
pub(crate) const DONE: u8 = 1;
pub(crate) const FAILED: u8 = 2;

#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) state: AtomicU8,
    pub(crate) first_seq: AtomicU64,
    pub(crate) error: OnceLock<LogError>,
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

pub(crate) struct Pending {
    pub(crate) batch: RecordBatch,
    pub(crate) slot: Arc<Slot>,
}

#[derive(Default)]
pub(crate) struct Queue {
    pub(crate) items: VecDeque<Pending>,
    pub(crate) stop: bool,
}

/// Counters shown by [`Log::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) appended: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) failed_commits: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) dropped_records: AtomicU64,
    pub(crate) deleted_segments: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) opts: LogOptions,
    pub(crate) segments: RwLock<Vec<Arc<Segment>>>,
    pub(crate) queue: Mutex<Queue>,
    pub(crate) wake: Condvar,
    pub(crate) queued_bytes: AtomicU64,
    pub(crate) progress: watch::Sender<Progress>,
    pub(crate) cursor_files: Cursors,
    pub(crate) cursors: Mutex<BTreeMap<String, u64>>,
    /// Why appends are refused (`on_full: reject`), when they are.
    pub(crate) full: Mutex<Option<String>>,
    /// One retention pass at a time (the writer, `enforce_retention`).
    pub(crate) retention_lock: Mutex<()>,
    /// The active segment should be rolled at the next chance.
    pub(crate) roll_requested: std::sync::atomic::AtomicBool,
    pub(crate) counters: Counters,
    /// Called after each successful commit with (records, write + sync time).
    pub(crate) observer: OnceLock<CommitObserver>,
    /// The error of the newest commit, if it failed.
    pub(crate) last_error: Mutex<Option<String>>,
    _lock: File,
}

/// Told about every successful group commit: records and write + sync time.
pub type CommitObserver = Box<dyn Fn(usize, Duration) + Send + Sync>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
            observer: OnceLock::new(),
            last_error: Mutex::new(None),
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

    /// Move a cursor cheaply: safe against a process crash at once, and
    /// against power loss once the writer's next housekeeping pass
    /// (`check_interval`) has synced it; losing the move only makes the
    /// consumer redo work. For consumers that move their cursor per
    /// delivery (sinks).
    pub fn advance_cursor(&self, name: &str, seq: u64) -> Result<(), LogError> {
        check_name(name)?;
        self.inner.cursor_files.advance(name, seq)?;
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

    /// Be told about every successful commit (first caller wins).
    pub fn set_commit_observer(&self, f: CommitObserver) {
        let _ = self.inner.observer.set(f);
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
            last_error: lock(&inner.last_error).clone(),
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
        if let Err(e) = self.inner.cursor_files.sync_dirty() {
            tracing::error!("trigger-instance log: cannot sync consumer cursors: {e}");
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
    /// The error of the newest commit, when it failed (cleared by the next
    /// successful one).
    pub last_error: Option<String>,
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

impl Inner {
    pub(crate) fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
