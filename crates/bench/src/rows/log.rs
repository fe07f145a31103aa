//! The trigger-instance log (`eventlog::Log`) in-process, with no
//! container around it: the group-commit append rate, and disk use and
//! memory while retention deletes segments.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use eventlog::{Log, LogOptions, RecordBatch, Retention};
use serde::{Deserialize, Serialize};

/// Bytes of each record body the log rows append (a trigger instance's
/// size, as in the sled row).
pub const BODY_BYTES: usize = 300;
/// Bytes a record takes in a segment: frame header + body.
pub const FRAMED_BYTES: u64 = (eventlog::record::HEADER + BODY_BYTES) as u64;
/// `segment_bytes` of the retention row.
pub const RETENTION_SEGMENT_BYTES: u64 = 16 << 20;
/// The retention row's flag for the child process that runs it.
pub const RETENTION_CHILD_FLAG: &str = "--retention-child";

/// A JSON body of exactly [`BODY_BYTES`] bytes, shaped like an instance.
fn body() -> Vec<u8> {
    let head = r#"{"id":"0190f3c2-7a1e-7b3c-9d2e-1f2a3b4c5d6e","trigger":"bench.event","payload":{"n":123456,"source":"bench"},"occurrence_time":"2025-01-01T00:00:00.000000Z","status":"processed","pad":""#;
    let mut b = head.as_bytes().to_vec();
    b.resize(BODY_BYTES - 2, b'x');
    b.extend_from_slice(b"\"}");
    b
}

fn batch_of(body: &[u8], records: usize) -> RecordBatch {
    let mut b = RecordBatch::new();
    for _ in 0..records {
        b.push(body);
    }
    b
}

/// How an appender waits for its batch to be durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// `Completion::wait_blocking()` (it polls: 100 µs sleeps).
    Blocking,
    /// `Completion::wait().await` on a current-thread tokio runtime of the
    /// appender's own, woken by the log's progress channel, as the
    /// container's connection tasks wait.
    Async,
}

/// What the group-commit row measured.
pub struct Append {
    pub rate: f64,
    pub records: u64,
    pub commits: u64,
    pub secs: f64,
}

/// `appenders` threads, each appending batches of `batch` bodies to one
/// `Log` (default options) and waiting for each batch's `Completion`
/// before the next, for about `dur`. Rate = records acknowledged durable /
/// (go → the last appender's last completion).
pub fn append_group_commit(
    appenders: usize,
    batch: usize,
    dur: Duration,
    wait: Wait,
) -> Result<Append> {
    let dir = tempfile::tempdir().context("temp dir for the log append row")?;
    let path = dir.path().join("log");
    let log = Arc::new(
        Log::open(&path, LogOptions::default())
            .with_context(|| format!("open the log in {}", path.display()))?,
    );
    let body = Arc::new(body());
    // One durable batch first: the segment exists and the writer is up.
    log.append(batch_of(&body, batch))
        .wait_blocking()
        .context("log append (warm-up)")?;
    let commits0 = log.stats().commits;
    let stop = Arc::new(AtomicBool::new(false));
    let go = Arc::new(Barrier::new(appenders + 1));
    let threads: Vec<_> = (0..appenders)
        .map(|i| {
            let (log, body, stop, go) = (log.clone(), body.clone(), stop.clone(), go.clone());
            std::thread::Builder::new()
                .name(format!("bench-appender-{i}"))
                .spawn(move || -> Result<u64> {
                    let rt = match wait {
                        Wait::Blocking => None,
                        Wait::Async => Some(
                            tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build(),
                        ),
                    };
                    go.wait();
                    let rt = rt.transpose().context("appender runtime")?;
                    let mut records = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let c = log.append(batch_of(&body, batch));
                        match &rt {
                            None => c.wait_blocking(),
                            Some(rt) => rt.block_on(c.wait()),
                        }
                        .context("log append")?;
                        records += batch as u64;
                    }
                    Ok(records)
                })
                .context("spawn an appender thread")
        })
        .collect::<Result<_>>()?;
    go.wait();
    let start = Instant::now();
    std::thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    let mut records = 0u64;
    for t in threads {
        records += t
            .join()
            .map_err(|_| anyhow::anyhow!("an appender thread panicked"))??;
    }
    let secs = start.elapsed().as_secs_f64();
    let commits = log.stats().commits - commits0;
    log.close();
    let rate = records as f64 / secs;
    eprintln!(
        "  log append, {appenders} threads × {batch} per batch, {wait:?} wait: {rate:.0}/s ({records} records, {commits} commits, {:.0} records per commit, {:.2} ms per commit)",
        records as f64 / commits.max(1) as f64,
        1e3 * secs / commits.max(1) as f64
    );
    Ok(Append {
        rate,
        records,
        commits,
        secs,
    })
}

/// One look at the log during the retention row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// Records appended so far.
    pub appended: u64,
    /// Σ file sizes (`metadata.len()`) of everything in the log dir.
    pub disk_bytes: u64,
    /// Σ allocated blocks × 512 of the same files.
    pub disk_alloc_bytes: u64,
    /// `stats().records`.
    pub retained: u64,
    pub segments: usize,
    pub rss: u64,
    pub hwm: u64,
}

impl Check {
    /// Bytes on disk / framed bytes of the retained records.
    pub fn ratio(&self) -> f64 {
        self.disk_bytes as f64 / (self.retained * FRAMED_BYTES) as f64
    }
}

/// Extremes over every check of the retention row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Extremes {
    pub checks: u64,
    pub ratio_min: f64,
    pub ratio_max: f64,
    pub disk_max: u64,
    pub retained_min: u64,
    pub retained_max: u64,
    pub rss_max: u64,
}

impl Extremes {
    fn new() -> Extremes {
        Extremes {
            checks: 0,
            ratio_min: f64::INFINITY,
            ratio_max: 0.0,
            disk_max: 0,
            retained_min: u64::MAX,
            retained_max: 0,
            rss_max: 0,
        }
    }

    fn add(&mut self, c: &Check) {
        self.checks += 1;
        self.ratio_min = self.ratio_min.min(c.ratio());
        self.ratio_max = self.ratio_max.max(c.ratio());
        self.disk_max = self.disk_max.max(c.disk_bytes);
        self.retained_min = self.retained_min.min(c.retained);
        self.retained_max = self.retained_max.max(c.retained);
        self.rss_max = self.rss_max.max(c.rss);
    }
}

/// What the retention child reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetentionRun {
    pub records: u64,
    pub max_bytes: u64,
    pub secs: f64,
    /// VmRSS of the child right after start, before the log is opened.
    pub rss_before: u64,
    /// At each tenth of the last half.
    pub checks: Vec<Check>,
    /// Over the checks after every round of the last half.
    pub all: Extremes,
    /// VmHWM / VmRSS at the end, the log still open.
    pub hwm_end: u64,
    pub rss_end: u64,
    pub deleted_segments: u64,
    pub commits: u64,
}

/// `max_bytes` that keeps about a tenth of `records`.
pub fn retention_max_bytes(records: u64) -> u64 {
    records / 10 * FRAMED_BYTES
}

/// Fewest records for the retention row: `max_bytes` must hold 1.5
/// segments, or retention would often leave only a fresh active segment
/// with next to no records and the ratio would mean nothing.
pub fn min_records() -> u64 {
    (RETENTION_SEGMENT_BYTES * 3 / 2).div_ceil(FRAMED_BYTES) * 10
}

/// Run the retention row in a child process (`sc-bench --retention-child
/// N`), so its VmHWM is the log's and not the rest of the bench's.
pub fn retention(records: u64) -> Result<RetentionRun> {
    if records < min_records() {
        bail!(
            "--log-records {records} keeps {} bytes, less than 1.5 segments of 16 MiB: use at least {}",
            retention_max_bytes(records),
            min_records()
        );
    }
    // This very program, even if cargo has replaced the file meanwhile.
    let exe = Path::new("/proc/self/exe");
    let out = Command::new(exe)
        .args([RETENTION_CHILD_FLAG, &records.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("run {} {RETENTION_CHILD_FLAG}", exe.display()))?;
    if !out.status.success() {
        bail!("the retention child failed: {}", out.status);
    }
    serde_json::from_slice(&out.stdout).context("the retention child's report")
}

/// The child's side: append `records` bodies to a log with 16 MiB
/// segments and `retention.max_bytes` = a tenth of them, in rounds of 4
/// batches of 256 (queued at once, so a commit can cover all four) waited
/// for together; `enforce_retention()` every 16 rounds (the writer also
/// runs it every second and at each roll). In the last half, a check after
/// every round, when nothing is in flight (a round is 1024 records, so the
/// checks see every phase of the segments' sawtooth); the checks at each
/// tenth of the last half are kept and printed. Prints the report as JSON.
pub fn retention_child(records: u64) -> Result<()> {
    const BATCH: usize = 256;
    const PER_ROUND: usize = 4;
    let rss_before = proc_status("VmRSS")?;
    let dir = tempfile::tempdir().context("temp dir for the retention row")?;
    let path = dir.path().join("log");
    let max_bytes = retention_max_bytes(records);
    let opts = LogOptions {
        segment_bytes: RETENTION_SEGMENT_BYTES,
        retention: Retention {
            max_bytes,
            ..Retention::default()
        },
        ..LogOptions::default()
    };
    let log =
        Log::open(&path, opts).with_context(|| format!("open the log in {}", path.display()))?;
    let body = body();
    let half = records / 2;
    let mut next_check = 1u64;
    let mut checks = Vec::new();
    let mut all = Extremes::new();
    let mut appended = 0u64;
    let mut round = 0u64;
    let start = Instant::now();
    while appended < records {
        let mut waits = Vec::with_capacity(PER_ROUND);
        for _ in 0..PER_ROUND {
            let n = (BATCH as u64).min(records - appended) as usize;
            if n == 0 {
                break;
            }
            waits.push(log.append(batch_of(&body, n)));
            appended += n as u64;
        }
        for w in &waits {
            w.wait_blocking().context("log append")?;
        }
        round += 1;
        if round.is_multiple_of(16) {
            log.enforce_retention();
        }
        if appended <= half {
            continue;
        }
        let stats = log.stats();
        let (disk_bytes, disk_alloc_bytes) = dir_bytes(&path)?;
        let c = Check {
            appended,
            disk_bytes,
            disk_alloc_bytes,
            retained: stats.records,
            segments: stats.segment_count,
            rss: proc_status("VmRSS")?,
            hwm: proc_status("VmHWM")?,
        };
        all.add(&c);
        if next_check <= 10 && appended >= half + (records - half) * next_check / 10 {
            eprintln!(
                "  at {appended}: {} on disk ({} allocated) in {} segments, {} records retained ({}), ratio {:.3}; VmRSS {}, VmHWM {}",
                crate::table::mib(c.disk_bytes),
                crate::table::mib(c.disk_alloc_bytes),
                c.segments,
                c.retained,
                crate::table::mib(c.retained * FRAMED_BYTES),
                c.ratio(),
                crate::table::mib(c.rss),
                crate::table::mib(c.hwm)
            );
            checks.push(c);
            next_check += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = log.stats();
    let run = RetentionRun {
        records,
        max_bytes,
        secs,
        rss_before,
        checks,
        all,
        hwm_end: proc_status("VmHWM")?,
        rss_end: proc_status("VmRSS")?,
        deleted_segments: stats.deleted_segments,
        commits: stats.commits,
    };
    log.close();
    println!("{}", serde_json::to_string(&run)?);
    Ok(())
}

/// Σ `len()` and Σ allocated bytes of the regular files under `dir`.
fn dir_bytes(dir: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut len = 0;
    let mut alloc = 0;
    let entries = std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("list {}", dir.display()))?;
        let md = match e.metadata() {
            Ok(m) => m,
            // Deleted by retention since the listing.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).with_context(|| format!("stat {}", e.path().display())),
        };
        if md.is_dir() {
            let (l, a) = dir_bytes(&e.path())?;
            len += l;
            alloc += a;
        } else if md.is_file() {
            len += md.len();
            alloc += md.blocks() * 512;
        }
    }
    Ok((len, alloc))
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`), in bytes.
fn proc_status(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field} in /proc/self/status"))?
        .split_whitespace()
        .next()
        .with_context(|| format!("{field} value"))?
        .parse()
        .with_context(|| format!("{field} value"))?;
    Ok(kb * 1024)
}
