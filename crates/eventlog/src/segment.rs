//! One segment file (`<base seq, 20 digits>.log`) and its sparse index
//! (`.idx`, written when the segment is closed).
//!
//! The index has an entry for the first record and then one every
//! [`INDEX_INTERVAL`] bytes: `(seq, offset, ts_ms)`. Both seq and ts grow
//! with the offset, so either can be binary-searched to a block of at most
//! one interval plus one record, which is all a lookup reads.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::LogError;
use crate::record::{Header, StoredRecord, HEADER, MAGIC};

/// Bytes of records between two index entries.
pub const INDEX_INTERVAL: u64 = 64 * 1024;
const IDX_MAGIC: &[u8; 8] = b"SCIDXv1\n";

/// One index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub seq: u64,
    pub offset: u64,
    pub ts_ms: u64,
}

/// A region of a closed segment that failed its checks at open and is
/// skipped by readers: `[offset, resume)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skip {
    pub offset: u64,
    pub resume: u64,
}

/// What is known about a segment's contents; grows while it is active.
#[derive(Debug, Clone, Default)]
pub struct SegState {
    /// Bytes of the file that hold durable, valid data (readers never look
    /// past this).
    pub len: u64,
    /// Seq of the last record (`base - 1` when empty).
    pub last_seq: u64,
    /// Records in it.
    pub records: u64,
    pub first_ts: u64,
    pub last_ts: u64,
    pub index: Vec<IndexEntry>,
    pub skips: Vec<Skip>,
    /// No more appends: the writer rolled past it.
    pub closed: bool,
}

/// A segment: fixed path and base, state behind a lock.
#[derive(Debug)]
pub struct Segment {
    /// Seq of its first record.
    pub base: u64,
    pub path: PathBuf,
    state: RwLock<SegState>,
}

impl Segment {
    pub fn new(base: u64, path: PathBuf, state: SegState) -> Segment {
        Segment {
            base,
            path,
            state: RwLock::new(state),
        }
    }

    /// A consistent view of its state.
    pub fn state(&self) -> RwLockReadGuard<'_, SegState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn state_mut(&self) -> RwLockWriteGuard<'_, SegState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The file name for a base seq.
    pub fn file_name(base: u64) -> String {
        format!("{base:020}.log")
    }

    /// The index file beside it.
    pub fn idx_path(&self) -> PathBuf {
        self.path.with_extension("idx")
    }

    /// The index entry to start from to find `seq` (the last one at or
    /// before it), with the state's `len` as the end.
    pub fn seek_seq(&self, seq: u64) -> (u64, u64) {
        let st = self.state();
        let at = st.index.partition_point(|e| e.seq <= seq);
        let offset = if at == 0 {
            MAGIC.len() as u64
        } else {
            st.index[at - 1].offset
        };
        (offset, st.len)
    }

    /// The offset from which every record has `ts_ms >= ms` or later ones
    /// follow: the last index entry with `ts_ms < ms`.
    pub fn seek_time(&self, ms: u64) -> u64 {
        let st = self.state();
        let at = st.index.partition_point(|e| e.ts_ms < ms);
        if at == 0 {
            MAGIC.len() as u64
        } else {
            st.index[at - 1].offset
        }
    }
}

/// Everything a scan of a segment file found.
#[derive(Debug, Default)]
pub struct Scan {
    pub state: SegState,
    /// `(offset, bytes)` of a torn or corrupt tail cut off (last segment
    /// only).
    pub truncated: Option<(u64, u64)>,
}

/// Read a whole segment and rebuild its state. In the last segment
/// (`is_last`) a bad record with no valid record after it is a torn tail:
/// it is cut off. A bad region followed by valid records (anywhere) is
/// recorded as a [`Skip`] and reported.
pub fn scan(path: &Path, base: u64, is_last: bool) -> Result<Scan, LogError> {
    let io = |e| LogError::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    let mut data = Vec::new();
    file.read_to_end(&mut data).map_err(io)?;
    let mut st = SegState {
        last_seq: base.saturating_sub(1),
        ..Default::default()
    };
    let mut out = Scan::default();
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        // A last segment torn while being created holds a prefix of the
        // magic: it is empty. Anything else is not ours to guess at.
        if is_last && MAGIC.starts_with(&data) {
            out.truncated = Some((0, data.len() as u64));
            out.state = st;
            return Ok(out);
        }
        return Err(LogError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: "not a segment file (bad magic)".into(),
        });
    }
    let mut pos = MAGIC.len();
    let mut last_indexed: Option<u64> = None;
    // Right after a skipped region the next seq is whatever survived.
    let mut after_skip = false;
    while pos < data.len() {
        match parse_at(&data, pos, st.last_seq + 1, after_skip) {
            Some((h, n)) => {
                if last_indexed.is_none_or(|o| pos as u64 >= o + INDEX_INTERVAL) {
                    st.index.push(IndexEntry {
                        seq: h.seq,
                        offset: pos as u64,
                        ts_ms: h.ts_ms,
                    });
                    last_indexed = Some(pos as u64);
                }
                if st.records == 0 {
                    st.first_ts = h.ts_ms;
                }
                st.records += 1;
                st.last_seq = h.seq;
                st.last_ts = h.ts_ms;
                pos += n;
                after_skip = false;
            }
            None => match resync(&data, pos + 1, st.last_seq + 1) {
                Some(next) => {
                    tracing::warn!(
                        "trigger-instance log: segment {} has {} unreadable bytes at offset {pos}; skipped (records after them are kept)",
                        path.display(),
                        next - pos
                    );
                    st.skips.push(Skip {
                        offset: pos as u64,
                        resume: next as u64,
                    });
                    pos = next;
                    after_skip = true;
                }
                None if is_last => {
                    out.truncated = Some((pos as u64, (data.len() - pos) as u64));
                    break;
                }
                None => {
                    tracing::warn!(
                        "trigger-instance log: closed segment {} ends with {} unreadable bytes at offset {pos}; skipped",
                        path.display(),
                        data.len() - pos
                    );
                    st.skips.push(Skip {
                        offset: pos as u64,
                        resume: data.len() as u64,
                    });
                    pos = data.len();
                    break;
                }
            },
        }
    }
    st.len = if out.truncated.is_some() {
        pos as u64
    } else {
        data.len() as u64
    };
    out.state = st;
    Ok(out)
}

/// A valid record at `pos` whose seq is `want` (the next expected one), or
/// any later seq when `or_later`.
fn parse_at(data: &[u8], pos: usize, want: u64, or_later: bool) -> Option<(Header, usize)> {
    let head: &[u8; HEADER] = data.get(pos..pos + HEADER)?.try_into().ok()?;
    let h = Header::parse(head)?;
    let body = data.get(pos + HEADER..pos + HEADER + h.len)?;
    let seq_ok = h.seq == want || or_later && h.seq > want;
    (seq_ok && h.check(head, body)).then_some((h, HEADER + h.len))
}

/// The first position at or after `from` holding a valid record with a seq
/// at or after `want` (records lost in a corrupt region leave a gap).
fn resync(data: &[u8], from: usize, want: u64) -> Option<usize> {
    let mut pos = from;
    while pos + HEADER <= data.len() {
        if let Ok(head) = <&[u8; HEADER]>::try_from(&data[pos..pos + HEADER]) {
            if let Some(h) = Header::parse(head) {
                if h.seq >= want && h.seq < want + (1 << 32) {
                    if let Some(body) = data.get(pos + HEADER..pos + HEADER + h.len) {
                        if h.check(head, body) {
                            return Some(pos);
                        }
                    }
                }
            }
        }
        pos += 1;
    }
    None
}

/// Write a closed segment's index file (then fsync it).
pub fn write_index(seg: &Segment) -> Result<(), LogError> {
    let st = seg.state().clone();
    let mut b = Vec::with_capacity(64 + st.index.len() * 24);
    b.extend_from_slice(IDX_MAGIC);
    for v in [st.len, st.last_seq, st.records, st.first_ts, st.last_ts] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&(st.index.len() as u64).to_le_bytes());
    for e in &st.index {
        for v in [e.seq, e.offset, e.ts_ms] {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    b.extend_from_slice(&(st.skips.len() as u64).to_le_bytes());
    for s in &st.skips {
        b.extend_from_slice(&s.offset.to_le_bytes());
        b.extend_from_slice(&s.resume.to_le_bytes());
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let path = seg.idx_path();
    let tmp = path.with_extension("idx.tmp");
    let io = |e| LogError::io(&path, e);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(&b).map_err(io)?;
    f.sync_data().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(())
}

/// Read a closed segment's index file; `None` when it is missing, damaged
/// or does not match the segment file's length (then the caller scans).
pub fn read_index(seg_path: &Path, file_len: u64) -> Option<SegState> {
    let data = std::fs::read(seg_path.with_extension("idx")).ok()?;
    if data.len() < IDX_MAGIC.len() + 4 || &data[..8] != IDX_MAGIC {
        return None;
    }
    let (body, crc) = data.split_at(data.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let mut words = body[8..]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()));
    let mut next = || words.next();
    let (len, last_seq, records, first_ts, last_ts) = (next()?, next()?, next()?, next()?, next()?);
    if len != file_len {
        return None;
    }
    let n = next()? as usize;
    let mut index = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        index.push(IndexEntry {
            seq: next()?,
            offset: next()?,
            ts_ms: next()?,
        });
    }
    let k = next()? as usize;
    let mut skips = Vec::with_capacity(k.min(1 << 16));
    for _ in 0..k {
        skips.push(Skip {
            offset: next()?,
            resume: next()?,
        });
    }
    Some(SegState {
        len,
        last_seq,
        records,
        first_ts,
        last_ts,
        index,
        skips,
        closed: true,
    })
}

/// Read the records of `[from, to)` of an open segment file into `out`,
/// stepping over known skips. Stops early once `max` records are read.
pub fn read_block(
    file: &File,
    path: &Path,
    from: u64,
    to: u64,
    skips: &[Skip],
    max: usize,
    out: &mut Vec<StoredRecord>,
) -> Result<u64, LogError> {
    let mut pos = from;
    let mut head = [0u8; HEADER];
    while pos < to && out.len() < max {
        if let Some(s) = skips.iter().find(|s| s.offset == pos) {
            pos = s.resume;
            continue;
        }
        file.read_exact_at(&mut head, pos)
            .map_err(|e| LogError::io(path, e))?;
        let corrupt = |reason: &str| LogError::Corrupt {
            path: path.to_path_buf(),
            offset: pos,
            reason: reason.into(),
        };
        let h = Header::parse(&head).ok_or_else(|| corrupt("impossible record length"))?;
        if pos + h.frame_len() > to {
            return Err(corrupt("record runs past the segment's end"));
        }
        let mut body = vec![0u8; h.len];
        file.read_exact_at(&mut body, pos + HEADER as u64)
            .map_err(|e| LogError::io(path, e))?;
        if !h.check(&head, &body) {
            return Err(corrupt("checksum mismatch"));
        }
        out.push(StoredRecord {
            seq: h.seq,
            ts_ms: h.ts_ms,
            body,
        });
        pos += h.frame_len();
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::encode;

    fn write_seg(dir: &Path, base: u64, n: u64) -> (PathBuf, Vec<u8>) {
        let mut data = MAGIC.to_vec();
        for i in 0..n {
            encode(
                &mut data,
                base + i,
                1000 + i,
                format!("{{\"i\":{i}}}").as_bytes(),
            );
        }
        let path = dir.join(Segment::file_name(base));
        std::fs::write(&path, &data).unwrap();
        (path, data)
    }

    #[test]
    fn scan_cuts_a_torn_tail_and_skips_a_bad_middle() {
        let dir = tempfile::tempdir().unwrap();
        let (path, data) = write_seg(dir.path(), 1, 100);
        let full = scan(&path, 1, true).unwrap();
        assert_eq!((full.state.records, full.state.last_seq), (100, 100));
        assert!(full.truncated.is_none());
        // Torn: half of the last record plus garbage.
        let mut torn = data.clone();
        torn.truncate(data.len() - 5);
        torn.extend_from_slice(b"garbage!");
        std::fs::write(&path, &torn).unwrap();
        let s = scan(&path, 1, true).unwrap();
        assert_eq!(s.state.last_seq, 99);
        let (at, bytes) = s.truncated.unwrap();
        assert_eq!(at + bytes, torn.len() as u64);
        // A flipped byte in record 50: 49 and 51.. survive, 50 is skipped.
        let mut mid = data.clone();
        let off = s.state.len as usize / 2;
        mid[off] ^= 0xff;
        std::fs::write(&path, &mid).unwrap();
        let m = scan(&path, 1, false).unwrap();
        assert_eq!(m.state.skips.len(), 1);
        assert_eq!(m.state.last_seq, 100);
        assert_eq!(m.state.records, 99);
    }

    #[test]
    fn index_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (path, data) = write_seg(dir.path(), 5, 10_000);
        let s = scan(&path, 5, false).unwrap();
        assert!(s.state.index.len() > 2);
        let seg = Segment::new(5, path.clone(), s.state.clone());
        write_index(&seg).unwrap();
        let back = read_index(&path, data.len() as u64).unwrap();
        assert_eq!(back.index, s.state.index);
        assert_eq!((back.last_seq, back.records), (10_004, 10_000));
        assert!(read_index(&path, data.len() as u64 + 1).is_none());
        let (off, end) = seg.seek_seq(9_000);
        let f = File::open(&path).unwrap();
        let mut out = Vec::new();
        read_block(&f, &path, off, end, &[], usize::MAX, &mut out).unwrap();
        assert!(out[0].seq <= 9_000 && out.iter().any(|r| r.seq == 9_000));
    }
}
