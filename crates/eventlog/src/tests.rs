//! The log against real files in a temp dir.

use std::time::Duration;

use crate::instance::TriggerInstance;
use crate::options::{LogOptions, OnFull, Retention};
use crate::query::{self, InstanceFilter};
use crate::{Log, LogError, RecordBatch};

fn small(max_bytes: u64, on_full: OnFull) -> LogOptions {
    LogOptions {
        segment_bytes: 16 * 1024,
        retention: Retention {
            max_bytes,
            on_full,
            ..Retention::default()
        },
        ..LogOptions::default()
    }
}

fn instances(n: usize, tag: &str) -> (RecordBatch, Vec<String>) {
    let mut batch = RecordBatch::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let inst = TriggerInstance::new(
            "p.t".into(),
            "p.t".into(),
            serde_json::json!({"i": i, "tag": tag, "pad": "x".repeat(200)}),
            Some(if i % 2 == 0 { "p.A" } else { "p.B" }.into()),
        );
        ids.push(inst.id.clone());
        batch.push_with(|b| inst.encode_into(b));
    }
    (batch, ids)
}

fn append(log: &Log, n: usize, tag: &str) -> Result<(u64, Vec<String>), LogError> {
    let (batch, ids) = instances(n, tag);
    log.append(batch).wait_blocking().map(|s| (s, ids))
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn append_read_back_find_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small(u64::MAX, OnFull::Reject)).unwrap();
    let mut all_ids = Vec::new();
    for round in 0..20 {
        let (first, ids) = append(&log, 50, &format!("r{round}")).unwrap();
        assert_eq!(first, round * 50 + 1);
        all_ids.extend(ids);
    }
    assert_eq!(log.last_seq(), 1000);
    assert!(log.stats().segment_count > 5, "segments roll by size");
    let fwd = log.read(1, 10_000).unwrap();
    assert_eq!(fwd.len(), 1000);
    assert!(fwd.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    let back = log.read_back(501, 10_000).unwrap();
    assert_eq!(back.len(), 500);
    assert_eq!((back[0].seq, back[499].seq), (500, 1));
    let mid = log.read(777, 3).unwrap();
    assert_eq!(
        mid.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![777, 778, 779]
    );
    let got = query::get(&log, &all_ids[612]).unwrap().unwrap();
    assert_eq!((got.seq, got.id.as_str()), (613, all_ids[612].as_str()));
    assert_eq!(query::get(&log, "613").unwrap().unwrap().id, all_ids[612]);
    assert!(query::get(&log, &uuid::Uuid::now_v7().to_string())
        .unwrap()
        .is_none());
    assert!(matches!(
        query::get(&log, "nope"),
        Err(LogError::Invalid(_))
    ));
    drop(log);
    let log = Log::open(dir.path(), small(u64::MAX, OnFull::Reject)).unwrap();
    assert_eq!(log.last_seq(), 1000);
    let (first, _) = append(&log, 1, "after").unwrap();
    assert_eq!(first, 1001);
    assert_eq!(query::get(&log, &all_ids[0]).unwrap().unwrap().seq, 1);
}

#[test]
fn a_second_opener_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _log = Log::open(dir.path(), LogOptions::default()).unwrap();
    assert!(matches!(
        Log::open(dir.path(), LogOptions::default()),
        Err(LogError::Locked { .. })
    ));
}

#[test]
fn torn_tail_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), LogOptions::default()).unwrap();
        append(&log, 100, "a").unwrap();
    }
    let seg = dir.path().join("00000000000000000001.log");
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 10).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"\x07garbage garbage", len - 10).unwrap();
    drop(f);
    let log = Log::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(log.last_seq(), 99, "the torn 100th record is dropped");
    assert_eq!(log.read(1, 1000).unwrap().len(), 99);
    let (first, _) = append(&log, 5, "b").unwrap();
    assert_eq!(first, 100);
    drop(log);
    let log = Log::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(log.read(1, 1000).unwrap().len(), 104);
}

#[test]
fn retention_by_size_shrinks_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small(64 * 1024, OnFull::Reject)).unwrap();
    for r in 0..40 {
        append(&log, 20, &format!("{r}")).unwrap();
    }
    log.enforce_retention();
    let bytes = disk_bytes(dir.path());
    assert!(
        bytes <= 64 * 1024 + 16 * 1024 + 8 * 1024,
        "{bytes} bytes on disk"
    );
    let first = log.first_seq();
    assert!(first > 1, "old segments deleted (first seq {first})");
    assert_eq!(
        log.read(first, 100_000).unwrap().len() as u64,
        800 - first + 1
    );
    assert!(log.stats().deleted_segments > 0);
}

#[test]
fn retention_by_age_keeps_what_a_cursor_needs() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = small(u64::MAX, OnFull::Reject);
    opts.retention.max_age = Duration::from_millis(1);
    let log = Log::open(dir.path(), opts).unwrap();
    log.open_cursor("sink-a", 0).unwrap();
    for r in 0..10 {
        append(&log, 20, &format!("{r}")).unwrap();
    }
    std::thread::sleep(Duration::from_millis(5));
    log.enforce_retention();
    assert_eq!(log.first_seq(), 1, "the cursor at 0 holds every segment");
    log.set_cursor("sink-a", 150).unwrap();
    log.enforce_retention();
    let first = log.first_seq();
    assert!(first > 1 && first <= 151, "first seq {first}");
}

#[test]
fn full_log_rejects_naming_the_consumer_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small(48 * 1024, OnFull::Reject)).unwrap();
    log.open_cursor("slow-sink", 0).unwrap();
    let mut err = None;
    for r in 0..40 {
        if let Err(e) = append(&log, 20, &format!("{r}")) {
            err = Some(e);
            break;
        }
        log.enforce_retention();
    }
    let err = err.expect("appends are refused once full").to_string();
    assert!(
        err.contains("slow-sink") && err.contains("max_bytes"),
        "{err}"
    );
    assert!(log.stats().refusing.is_some());
    log.set_cursor("slow-sink", log.last_seq()).unwrap();
    log.enforce_retention();
    append(&log, 1, "again").expect("accepted after the consumer caught up");
    assert_eq!(log.stats().dropped_records, 0);
}

#[test]
fn drop_oldest_counts_what_it_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small(48 * 1024, OnFull::DropOldest)).unwrap();
    log.open_cursor("slow-sink", 0).unwrap();
    for r in 0..40 {
        append(&log, 20, &format!("{r}")).unwrap();
        log.enforce_retention();
    }
    let st = log.stats();
    assert!(st.dropped_records > 0);
    assert_eq!(st.dropped_records, log.first_seq() - 1);
}

#[test]
fn cursors_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), LogOptions::default()).unwrap();
        append(&log, 10, "a").unwrap();
        assert_eq!(log.open_cursor("c1", 0).unwrap(), 0);
        log.set_cursor("c1", 7).unwrap();
        log.open_cursor("c2", 3).unwrap();
        log.delete_cursor("c2").unwrap();
        assert!(log.set_cursor("../x", 1).is_err());
    }
    let log = Log::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(log.cursor("c1"), Some(7));
    assert_eq!(log.open_cursor("c1", 0).unwrap(), 7);
    assert_eq!(log.cursor("c2"), None);
    let st = log.stats();
    assert_eq!((st.cursors[0].name.as_str(), st.cursors[0].lag), ("c1", 3));
}

#[test]
fn advanced_cursors_are_in_the_file_at_once_and_old_files_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cursors").join("sink.s");
    {
        let log = Log::open(dir.path(), LogOptions::default()).unwrap();
        append(&log, 10, "a").unwrap();
        log.advance_cursor("sink.s", 3).unwrap(); // no file yet: stored durably
        log.advance_cursor("sink.s", 9).unwrap();
        // In place, before any sync: what a process crash leaves behind.
        assert_eq!(
            std::fs::read_to_string(&file).unwrap().trim(),
            "00000000000000000009"
        );
        std::mem::forget(log); // no close(), no final sync
    }
    // The earlier release wrote "7\n".
    std::fs::write(&file, "7\n").unwrap();
    std::fs::remove_file(dir.path().join("LOCK")).ok();
    let log = Log::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(log.cursor("sink.s"), Some(7));
    log.advance_cursor("sink.s", 10).unwrap();
    log.close();
    drop(log);
    let log = Log::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(log.cursor("sink.s"), Some(10));
    let st = log.stats();
    assert!(
        log.refusing().is_none() && st.cursors[0].lag == 0,
        "{:?}",
        st.cursors
    );
}

#[test]
fn queries_filter_page_and_stream() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small(u64::MAX, OnFull::Reject)).unwrap();
    for r in 0..10 {
        append(&log, 100, &format!("{r}")).unwrap();
    }
    let collect = |f: InstanceFilter| {
        let mut v = Vec::new();
        query::scan(&log, &f, |i| {
            v.push(i.seq);
            true
        })
        .unwrap();
        v
    };
    let newest = collect(InstanceFilter {
        limit: 3,
        ..Default::default()
    });
    assert_eq!(newest, vec![1000, 999, 998]);
    let b = collect(InstanceFilter {
        sensor: Some("p.B".into()),
        before: Some(10),
        limit: 0,
        ..Default::default()
    });
    assert_eq!(b, vec![8, 6, 4, 2]);
    let after = collect(InstanceFilter {
        after: Some(995),
        limit: 0,
        ..Default::default()
    });
    assert_eq!(after, vec![996, 997, 998, 999, 1000]);
    assert_eq!(
        collect(InstanceFilter {
            limit: 0,
            ..Default::default()
        })
        .len(),
        1000
    );
    let future = collect(InstanceFilter {
        since: Some("2999-01-01T00:00:00Z".into()),
        ..Default::default()
    });
    assert!(future.is_empty());
    let err = query::scan(
        &log,
        &InstanceFilter {
            since: Some("yesterday".into()),
            ..Default::default()
        },
        |_| true,
    );
    assert!(matches!(err, Err(LogError::Invalid(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(Log::open(dir.path(), LogOptions::default()).unwrap());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                let (b, _) = instances(2, "c");
                log.append(b).wait().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let st = log.stats();
    assert_eq!(st.appended, 1600);
    assert!(st.commits < 800, "commits: {}", st.commits);
    let seqs: Vec<u64> = log.read(1, 5000).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=1600).collect::<Vec<_>>());
}

#[test]
fn a_last_segment_that_is_not_ours_is_moved_aside_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), small(u64::MAX, OnFull::Reject)).unwrap();
        for r in 0..5 {
            append(&log, 50, &format!("{r}")).unwrap();
        }
    }
    let mut segs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segs.sort();
    let last = segs.last().unwrap().clone();
    std::fs::write(&last, b"definitely not a segment file").unwrap();
    // Big segments now: the previous segment (closed, indexed) becomes the
    // active one and is not rolled away.
    let mut opts = LogOptions::default();
    opts.retention.max_age = Duration::from_millis(1);
    let log = Log::open(dir.path(), opts).unwrap();
    assert!(last.with_extension("log.corrupt").exists());
    let before = log.last_seq();
    let (first, _) = append(&log, 3, "after").unwrap();
    assert_eq!(first, before + 1);
    std::thread::sleep(Duration::from_millis(5));
    log.enforce_retention();
    // Old closed segments may go; the one being appended to never does.
    assert_eq!(log.read(first, 10).unwrap().len(), 3);
}
