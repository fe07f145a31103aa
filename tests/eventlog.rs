//! The trigger-instance log through the real binaries: stats, tail, streamed
//! lists, retention, torn-tail recovery, migration from sled, bounded
//! memory and a full disk.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{ndjson, stderr, wait_until, Container, Env};
use serde_json::Value;

const BURST: &str = "testpack.BurstSensor";

/// Ask the burst sensor for `n` more instances and wait until it is done
/// (every dispatch acknowledged or refused); `total` is the running count.
fn burst(env: &Env, c: &mut Container, n: u64, total: u64) {
    std::fs::write(env.out.join("burst.request"), n.to_string()).unwrap();
    env.wait_marker(&format!("burst.done.{total}"), Duration::from_secs(120), c);
}

fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A `sensorctl ... tail --json` child whose lines arrive on a channel.
struct Tail {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Tail {
    fn start(env: &Env, extra: &[&str]) -> Tail {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sensorctl"))
            .args(env.global_args())
            .args(["trigger-instance", "tail", "--json"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx
                    .send(serde_json::from_str(&line).expect("tail line is JSON"))
                    .is_err()
                {
                    return;
                }
            }
        });
        Tail { child, lines }
    }

    /// The next `n` instances of `trigger` (others are skipped).
    fn take_matching(&self, n: usize, trigger: &str, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["trigger"] == trigger => got.push(v),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        got
    }

    fn take(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => got.push(v),
                Err(_) => break,
            }
        }
        got
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seqs(items: &[Value]) -> Vec<u64> {
    items.iter().map(|i| i["seq"].as_u64().unwrap()).collect()
}

#[test]
fn stats_tail_streamed_list_and_retention_on_a_running_container() {
    let env = Env::new(&["tests/packs"]);
    env.write_config("log:\n  segment_bytes: 64KiB\n");
    env.register();
    let mut c = env.start_container(&["--sensor-ref", BURST]);
    let stats = env.sensorctl_json(&["log", "stats", "--json"]);
    let from = stats["last_seq"].as_u64().unwrap_or(0) + 1;
    let tail_from = Tail::start(
        &env,
        &["--from", &from.to_string(), "--trigger", "testpack.burst"],
    );
    // A tail without --from starts at the end of the log when its request
    // arrives: probe with datastore events until it shows one.
    let tail_now = Tail::start(&env, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut connected = false;
    while !connected && Instant::now() < deadline {
        assert!(env
            .sensorctl(&["key", "set", "tail-probe", "1"])
            .status
            .success());
        connected = tail_now
            .take(1, Duration::from_millis(500))
            .iter()
            .any(|i| {
                i["trigger"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("core.st2.key_value_pair"))
            });
    }
    assert!(connected, "the tail never showed a probe event");
    burst(&env, &mut c, 3000, 3000);

    let got = tail_from.take(3000, Duration::from_secs(60));
    assert_eq!(
        got.len(),
        3000,
        "tail --from delivered {} of 3000",
        got.len()
    );
    let s = seqs(&got);
    assert!(
        s.windows(2).all(|w| w[1] == w[0] + 1),
        "in seq order, no gaps"
    );
    for (k, i) in got.iter().enumerate() {
        assert_eq!(i["payload"]["n"], k as u64, "payloads in dispatch order");
        assert_eq!(
            i["payload"]["pad"].as_str().unwrap().len(),
            200,
            "full payload"
        );
        assert_eq!(i["sensor"], BURST);
    }
    let live = tail_now.take_matching(3000, "testpack.burst", Duration::from_secs(60));
    assert_eq!(
        live.len(),
        3000,
        "a tail started before the burst sees all of it"
    );
    assert_eq!(seqs(&live), s);

    let stats = env.sensorctl_json(&["log", "stats", "--json"]);
    assert!(stats["segment_count"].as_u64().unwrap() > 5, "{stats}");
    assert!(stats["bytes"].as_u64().unwrap() > 3000 * 200);
    assert!(
        stats["last_seq"].as_u64().unwrap() >= *s.last().unwrap(),
        "{stats}"
    );
    assert_eq!(stats["first_seq"], 1);
    assert!(stats["first_time"].is_string() && stats["last_time"].is_string());
    assert_eq!(stats["retention"]["on_full"], "reject");
    assert_eq!(stats["retention"]["segment_bytes"], 65536);
    assert!(stats["cursors"].is_array());
    let text = env.sensorctl(&["log", "stats"]);
    assert!(
        common::stdout(&text).contains("segments"),
        "{}",
        common::stdout(&text)
    );

    // The whole log, streamed as NDJSON (oldest last: newest first).
    let all = ndjson(
        &env.sensorctl(&["trigger-instance", "list", "--limit", "0", "--json"])
            .stdout,
    );
    assert_eq!(all.len() as u64, stats["records"].as_u64().unwrap());
    let bursts: Vec<&Value> = all
        .iter()
        .filter(|i| i["trigger"] == "testpack.burst")
        .collect();
    assert_eq!(bursts.len(), 3000);
    // Paging forward and back by seq, from the burst's first record
    // (the sensor's process_spawn may come just before it).
    let from = s[0];
    let page = ndjson(
        &env.sensorctl(&[
            "trigger-instance",
            "list",
            "--after",
            &from.to_string(),
            "--limit",
            "3",
            "--json",
        ])
        .stdout,
    );
    assert_eq!(seqs(&page), vec![from + 1, from + 2, from + 3]);
    let back = ndjson(
        &env.sensorctl(&[
            "trigger-instance",
            "list",
            "--before",
            &(from + 3).to_string(),
            "--limit",
            "2",
            "--json",
        ])
        .stdout,
    );
    assert_eq!(seqs(&back), vec![from + 2, from + 1]);
    let one = env.sensorctl_json(&["trigger-instance", "get", &(from + 1).to_string(), "--json"]);
    assert_eq!(one["payload"]["n"], 1);
    let by_id = env.sensorctl_json(&[
        "trigger-instance",
        "get",
        one["id"].as_str().unwrap(),
        "--json",
    ]);
    assert_eq!(by_id, one);
    let pending = ndjson(
        &env.sensorctl(&[
            "trigger-instance",
            "list",
            "--status",
            "pending",
            "--limit",
            "0",
            "--json",
        ])
        .stdout,
    );
    assert_eq!(pending.len(), all.len());
    let table = common::stdout(&env.sensorctl(&["trigger-instance", "list", "--limit", "2"]));
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.starts_with("     SEQ  ID"), "{table}");
    c.terminate(Duration::from_secs(20));

    // Retention: restart with a small max_bytes; old segments go at once.
    let log_dir = env.data.join("log");
    let before = log_bytes(&log_dir);
    env.write_config("log:\n  segment_bytes: 64KiB\n  retention:\n    max_bytes: 256KiB\n");
    let mut c = env.start_container(&["--sensor-ref", BURST]);
    let ok = wait_until(Duration::from_secs(10), || {
        log_bytes(&log_dir) <= 256 * 1024 + 64 * 1024 + 4096
    });
    let after = log_bytes(&log_dir);
    assert!(ok, "bytes on disk {before} -> {after}");
    assert!(after < before / 2, "bytes on disk {before} -> {after}");
    let stats = env.sensorctl_json(&["log", "stats", "--json"]);
    assert!(stats["first_seq"].as_u64().unwrap() > 1, "{stats}");
    assert!(stats["deleted_segments"].as_u64().unwrap() > 0);
    assert!(c.log().contains("retention deleted segment"), "{}", c.log());
    c.terminate(Duration::from_secs(20));
}

#[test]
fn a_torn_tail_is_cut_with_a_warning_and_appends_continue() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let mut c = env.start_container(&["--sensor-ref", BURST]);
    burst(&env, &mut c, 500, 500);
    c.terminate(Duration::from_secs(20));
    let before = ndjson(
        &env.sensorctl(&["trigger-instance", "list", "--limit", "0", "--json"])
            .stdout,
    );
    let last_seq = before[0]["seq"].as_u64().unwrap();

    // Cut the active segment in the middle of its last record, add garbage.
    let dir = env.data.join("log");
    let mut segs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segs.sort();
    let active = segs.last().unwrap();
    let len = std::fs::metadata(active).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(active)
        .unwrap();
    f.set_len(len - 7).unwrap();
    drop(f);
    let mut bytes = std::fs::read(active).unwrap();
    bytes.extend_from_slice(b"\x01\x02garbage after a crash");
    std::fs::write(active, &bytes).unwrap();

    let mut c = env.start_container(&["--sensor-ref", BURST]);
    let log = c.log();
    assert!(
        log.contains("torn tail") && log.contains(&active.display().to_string()),
        "{log}"
    );
    // Up to the torn record (the restart itself adds a process_spawn).
    let after = ndjson(
        &env.sensorctl(&[
            "trigger-instance",
            "list",
            "--before",
            &last_seq.to_string(),
            "--limit",
            "0",
            "--json",
        ])
        .stdout,
    );
    assert_eq!(
        after.len(),
        before.len() - 1,
        "only the torn record is gone"
    );
    assert_eq!(after[0]["seq"].as_u64().unwrap(), last_seq - 1);
    let replaced =
        env.sensorctl_json(&["trigger-instance", "get", &last_seq.to_string(), "--json"]);
    assert_ne!(
        replaced["id"], before[0]["id"],
        "seq {last_seq} now belongs to a new record"
    );
    for (a, b) in after.iter().zip(before.iter().skip(1)) {
        assert_eq!(a, b, "every earlier record reads back unchanged");
    }
    // New appends continue the sequence (the sensor restarts its count).
    burst(&env, &mut c, 20, 20);
    let now = ndjson(
        &env.sensorctl(&[
            "trigger-instance",
            "list",
            "--trigger",
            "testpack.burst",
            "--limit",
            "20",
            "--json",
        ])
        .stdout,
    );
    assert_eq!(now.len(), 20);
    assert!(now.iter().all(|i| i["seq"].as_u64().unwrap() >= last_seq));
    c.terminate(Duration::from_secs(20));
}

#[test]
fn instances_of_an_earlier_release_are_migrated_once() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    // An earlier release kept instances in sled's `trigger_instances` tree,
    // keyed by their UUIDv7 bytes, valued by their JSON.
    let mut ids = Vec::new();
    {
        let db = sled::Config::new()
            .path(env.data.join("db"))
            .open()
            .unwrap();
        let tree = db.open_tree("trigger_instances").unwrap();
        for n in 0..1500u64 {
            let id = uuid::Uuid::now_v7();
            let inst = serde_json::json!({
                "id": id.to_string(), "trigger": "testpack.burst", "trigger_type": "testpack.burst",
                "payload": {"n": n}, "trace_tag": format!("trigger_instance-{id}"),
                "sensor": BURST, "occurrence_time": "2026-11-30T10:00:00.000000Z", "status": "pending"
            });
            tree.insert(id.as_bytes(), serde_json::to_vec(&inst).unwrap())
                .unwrap();
            ids.push(id.to_string());
        }
        db.flush().unwrap();
    }
    let out = env.sensorctl(&["trigger-instance", "list", "--limit", "0", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = ndjson(&out.stdout);
    assert_eq!(all.len(), 1500);
    assert_eq!(all[0]["id"], ids[1499], "newest first");
    assert_eq!(all[1499]["id"], ids[0]);
    assert_eq!(all[1499]["seq"], 1);
    assert!(
        stderr(&out).contains("migrated 1500 trigger instances"),
        "{}",
        stderr(&out)
    );
    let got = env.sensorctl_json(&["trigger-instance", "get", &ids[700], "--json"]);
    assert_eq!(
        (got["payload"]["n"].as_u64(), got["seq"].as_u64()),
        (Some(700), Some(701))
    );
    // Once: the old tree is gone, nothing doubles.
    let again = env.sensorctl(&["trigger-instance", "list", "--limit", "0", "--json"]);
    assert_eq!(ndjson(&again.stdout).len(), 1500);
    assert!(!stderr(&again).contains("migrat"), "{}", stderr(&again));
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn listing_200k_instances_streams_in_bounded_memory() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let mut c = env.start_container(&["--sensor-ref", BURST]);
    burst(&env, &mut c, 200_000, 200_000);
    let before = vm_kib(c.pid(), "VmHWM:");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sensorctl"))
        .args(env.global_args())
        .args(["trigger-instance", "list", "--limit", "0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = 0u64;
    let mut last_seq = u64::MAX;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        assert!(seq < last_seq, "newest first");
        last_seq = seq;
        lines += 1;
    }
    assert!(child.wait().unwrap().success());
    assert!(lines >= 200_000, "{lines} lines");
    let hwm = vm_kib(c.pid(), "VmHWM:");
    eprintln!(
        "listed {lines} instances in {:.2?}; container VmHWM {before} KiB before, {hwm} KiB after",
        started.elapsed()
    );
    // 200k instances are ~60 MB of JSON: holding them would show here.
    assert!(
        hwm < 96 * 1024,
        "container VmHWM {hwm} KiB (was {before} KiB)"
    );
    c.terminate(Duration::from_secs(20));
}

/// A tmpfs of `size` mounted on `dir` for the test's lifetime.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_dispatches_and_recovers_without_a_restart() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let log_dir = env.data.join("log");
    let _fs = match Tmpfs::mount(&log_dir, "4m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_fails_dispatches_and_recovers_without_a_restart: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let mut c = env.start_container(&["--sensor-ref", BURST]);
    // Fill the disk, leaving ~300 KB.
    let filler = log_dir.join("filler");
    let free = {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&log_dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    std::fs::write(&filler, vec![0u8; (free - 300_000) as usize]).unwrap();
    // ~20k × ~300 B cannot fit: most of the burst is refused.
    burst(&env, &mut c, 20_000, 20_000);
    let log = c.log();
    assert!(
        log.contains("disk full") || log.contains("No space left"),
        "{log}"
    );
    let errors = log
        .lines()
        .filter(|l| l.contains("trigger-instance log: could not store"))
        .count();
    assert!(
        (1..=40).contains(&errors),
        "{errors} error lines: rate-limited to ~1/s"
    );
    let stored = env.instances_of("testpack.burst").len();
    assert!(stored < 20_000, "{stored} stored");
    // Space comes back: the same process accepts again.
    std::fs::remove_file(&filler).unwrap();
    burst(&env, &mut c, 100, 20_100);
    let now = env.instances_of("testpack.burst");
    assert_eq!(now.len(), stored + 100, "all 100 later dispatches stored");
    assert!(now[..100]
        .iter()
        .all(|i| i["payload"]["n"].as_u64().unwrap() >= 20_000));
    assert!(!c.exited(), "no restart");
    c.terminate(Duration::from_secs(20));
}
