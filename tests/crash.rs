//! Crash consistency: three Python sensors dispatch as fast as they can with
//! the checkpoint pattern while the container is killed with SIGKILL at
//! random moments, restarted, and killed again.
//!
//! Each sensor (tests/packs/testpack/sensors/crash_writer.py) dispatches
//! batches of events with unique payload ids `<ClassName>:<seq>`, then
//! `set_value("checkpoint", last_seq)`, and only once that returned appends
//! the batch's ids to `crash.<ClassName>.acked` and fsyncs it: its record of
//! what the container acknowledged as durable. On restart it continues after
//! the stored checkpoint.
//!
//! After every kill (the database unlocked): `sensorctl` must open the
//! database, every checkpoint must be at least the highest acknowledged id
//! and never go backwards. After the last kill, one listing of the whole
//! trigger-instance log checks that every acknowledged id is stored (a loss
//! fails the test), that every seq up to each checkpoint is stored and the
//! checkpoint is at most the highest stored seq (consistency), and reports
//! duplicates (allowed: delivery is at-least-once) separately.
//!
//! Kill moments: a quarter of the rounds are killed within 250 ms of the
//! container's start (sensors spawning, restoring their checkpoint, first
//! batches); the others once a random sensor has a random share of its run
//! acknowledged (judged by its side file's growth, so the kills spread over
//! the stream whatever the machine's speed), plus 0-5 ms. They come from a
//! small PRNG seeded from the clock; the seed is printed, and
//! `CRASH_TEST_SEED=<n>` replays the same schedule (the same decisions; the
//! exact instants still depend on timing).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{pid_alive, wait_until, Env};
use serde_json::Value;

const SENSORS: [&str; 3] = ["CrashWriterA", "CrashWriterB", "CrashWriterC"];
/// Kill points (container starts and SIGKILLs).
const ROUNDS: usize = 24;
/// Events one sensor process dispatches at most (the pack config's `count`),
/// so the log stays small enough to verify in one listing.
const CAP_PER_RUN: u64 = 1500;
/// Share of rounds killed early (while the container starts or the sensors
/// set up), in percent; the others are killed mid-stream.
const EARLY_PERCENT: u64 = 25;
/// Early kills: at most this long after the control API is up (the sensors
/// are spawning, importing, restoring their checkpoint or on a first batch).
const EARLY_MS: u64 = 250;
/// Bytes one acknowledged id takes in a side file (`CrashWriterA:12345\n`),
/// to turn "x% of a run" into a file size whatever the machine's speed.
const BYTES_PER_ID: u64 = 19;
const T: Duration = Duration::from_secs(20);

/// splitmix64: small, deterministic, good enough to spread kill moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn seed() -> u64 {
    if let Ok(s) = std::env::var("CRASH_TEST_SEED") {
        return s.parse().expect("CRASH_TEST_SEED must be an integer");
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The complete lines of a sensor's acknowledged-ids file, as seqs. A torn
/// last line (the sensor killed mid-append) is not a claim.
fn acked(env: &Env, sensor: &str) -> Vec<u64> {
    let text = fs::read_to_string(env.marker(&format!("crash.{sensor}.acked"))).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            let (name, seq) = l
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("bad line {l:?} in crash.{sensor}.acked"));
            assert_eq!(name, sensor, "bad line {l:?} in crash.{sensor}.acked");
            seq.parse()
                .unwrap_or_else(|_| panic!("bad line {l:?} in crash.{sensor}.acked"))
        })
        .collect()
}

/// Every sensor's checkpoint (0 when not set yet), through `sensorctl`
/// opening the database itself: proves it opens cleanly after the kill.
fn checkpoints(env: &Env) -> BTreeMap<String, u64> {
    let out = env.sensorctl(&["key", "list", "--prefix", "testpack.CrashWriter", "--json"]);
    assert!(
        out.status.success(),
        "sensorctl cannot read the database after a kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Value = serde_json::from_slice(&out.stdout).expect("key list JSON");
    let mut map: BTreeMap<String, u64> = SENSORS.iter().map(|s| (s.to_string(), 0)).collect();
    for k in keys.as_array().expect("a list") {
        let name = k["name"].as_str().unwrap();
        if let Some(sensor) = name
            .strip_prefix("testpack.")
            .and_then(|n| n.strip_suffix(":checkpoint"))
        {
            let v = k["value"].as_str().unwrap().parse().unwrap();
            map.insert(sensor.to_string(), v);
        }
    }
    map
}

fn remove(path: &Path) {
    let _ = fs::remove_file(path);
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_event() {
    let started = Instant::now();
    let seed = seed();
    println!("crash test: seed {seed} (CRASH_TEST_SEED={seed} replays this kill schedule)");
    let mut rng = Rng(seed);

    let env = Env::new(&["tests/packs"]);
    fs::write(
        env.configs.join("testpack.yaml"),
        format!("out_dir: {}\ncount: {CAP_PER_RUN}\n", env.out.display()),
    )
    .unwrap();
    env.register();
    // Only the three writers run: other sensors of the test pack enabled by
    // default would only add load and instances to list.
    let listed = env.sensorctl_json(&["sensor", "list", "--json"]);
    for s in listed.as_array().expect("a list") {
        let r = s["ref"].as_str().unwrap();
        let ours = SENSORS.iter().any(|w| r == format!("testpack.{w}"));
        if ours != (s["enabled"] == true) {
            let verb = if ours { "enable" } else { "disable" };
            let out = env.sensorctl(&["sensor", verb, r]);
            assert!(
                out.status.success(),
                "{verb} {r}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    let mut last_ckpt: BTreeMap<String, u64> = SENSORS.iter().map(|s| (s.to_string(), 0)).collect();
    for round in 1..=ROUNDS {
        for s in SENSORS {
            remove(&env.marker(&format!("crash.{s}.done")));
            remove(&env.marker(&format!("crash.{s}.pid")));
        }
        let before: Vec<usize> = SENSORS.iter().map(|s| acked(&env, s).len()).collect();

        let mut c = env.start_container(&[]);
        let early = rng.below(100) < EARLY_PERCENT;
        let mode = if early {
            let delay = rng.below(EARLY_MS + 1);
            std::thread::sleep(Duration::from_millis(delay));
            format!("early: {delay:3} ms after start     ")
        } else {
            // Mid-stream: once one sensor has a random share of its run
            // acknowledged (by its side file's growth, so the moment is
            // spread over the stream whatever the machine's speed), plus a
            // few random milliseconds.
            let i = rng.below(SENSORS.len() as u64) as usize;
            let permille = rng.below(1000);
            let extra = rng.below(6);
            let file = env.marker(&format!("crash.{}.acked", SENSORS[i]));
            let done = env.marker(&format!("crash.{}.done", SENSORS[i]));
            let len = |f: &Path| fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            let target = len(&file) + CAP_PER_RUN * BYTES_PER_ID * permille / 1000;
            let reached = wait_until(T, || c.exited() || len(&file) >= target || done.exists());
            assert!(
                reached && !c.exited(),
                "round {round}: {} made no progress within {T:?}; container log:\n{}",
                SENSORS[i],
                c.log()
            );
            std::thread::sleep(Duration::from_millis(extra));
            format!(
                "mid-stream: {:4.1}% of {}'s run +{extra} ms",
                permille as f64 / 10.0,
                &SENSORS[i][SENSORS[i].len() - 1..]
            )
        };
        let done: Vec<bool> = SENSORS
            .iter()
            .map(|s| env.marker(&format!("crash.{s}.done")).exists())
            .collect();
        c.signal(libc::SIGKILL);
        let status = c.wait_exit(T);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "round {round}: the container exited before the kill:\n{}",
            c.log()
        );
        // The sensors die with it (parent-death signal).
        for s in SENSORS {
            if let Ok(pid) = fs::read_to_string(env.marker(&format!("crash.{s}.pid"))) {
                let pid: u32 = pid.trim().parse().unwrap();
                assert!(
                    wait_until(T, || !pid_alive(pid)),
                    "round {round}: sensor {s} (pid {pid}) outlived the container"
                );
            }
        }

        // Cheap checks: the database opens, checkpoints cover every claim
        // and never go backwards.
        let ckpt = checkpoints(&env);
        let mut line = format!("round {round:2}: kill {mode} |");
        for (i, s) in SENSORS.iter().enumerate() {
            let claims = acked(&env, s);
            let max_claim = claims.iter().copied().max().unwrap_or(0);
            let cp = ckpt[*s];
            assert!(
                cp >= max_claim,
                "round {round}: {s} checkpoint {cp} < its acknowledged seq {max_claim}: an acknowledged checkpoint was lost"
            );
            assert!(
                cp >= last_ckpt[*s],
                "round {round}: {s} checkpoint went back from {} to {cp}",
                last_ckpt[*s]
            );
            line += &format!(
                " {}: ckpt {cp} (+{}{})",
                &s[s.len() - 1..],
                claims.len() - before[i],
                if done[i] { ", run done" } else { "" }
            );
            last_ckpt.insert(s.to_string(), cp);
        }
        println!("{line}");
    }

    // Once, after the last kill: the whole log.
    let list_start = Instant::now();
    let instances = env.instances();
    let list_time = list_start.elapsed();
    let mut stored: BTreeMap<String, BTreeMap<u64, u32>> = BTreeMap::new();
    for i in &instances {
        if !i["trigger_type"]
            .as_str()
            .is_some_and(|t| t.starts_with("testpack.crash_"))
        {
            continue; // datastore events, process spawns, ...
        }
        let id = i["payload"]["id"].as_str().expect("payload id");
        let (sensor, seq) = id.rsplit_once(':').expect("payload id <sensor>:<seq>");
        assert_eq!(
            i["sensor"],
            format!("testpack.{sensor}"),
            "instance {i} stored under the wrong sensor"
        );
        assert_eq!(i["payload"]["seq"], seq.parse::<u64>().unwrap(), "{i}");
        *stored
            .entry(sensor.to_string())
            .or_default()
            .entry(seq.parse().unwrap())
            .or_default() += 1;
    }
    let ckpt = checkpoints(&env);
    let (mut total_claims, mut duplicates, mut losses, mut gaps) = (0usize, 0u64, vec![], vec![]);
    for s in SENSORS {
        let seqs = stored.remove(s).unwrap_or_default();
        let claims = acked(&env, s);
        total_claims += claims.len();
        losses.extend(
            claims
                .iter()
                .filter(|q| !seqs.contains_key(q))
                .map(|q| format!("{s}:{q}")),
        );
        let dups: u64 = seqs.values().map(|n| u64::from(*n) - 1).sum();
        duplicates += dups;
        let cp = ckpt[s];
        let max_stored = seqs.keys().next_back().copied().unwrap_or(0);
        let missing: Vec<u64> = (1..=cp).filter(|q| !seqs.contains_key(q)).collect();
        if cp > max_stored {
            gaps.push(format!(
                "{s}: checkpoint {cp} > highest stored seq {max_stored}"
            ));
        }
        if !missing.is_empty() {
            gaps.push(format!(
                "{s}: {} seqs <= checkpoint {cp} missing, first {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            ));
        }
        println!(
            "{s}: {} acknowledged ids, checkpoint {cp}, {} distinct seqs stored (highest {max_stored}), {dups} duplicates",
            claims.len(),
            seqs.len()
        );
    }
    println!(
        "crash test: seed {seed}, {ROUNDS} kill points, {} trigger instances stored (listed in {:.2?}), \
         {total_claims} acknowledged ids checked, duplicates: {duplicates} (allowed: at-least-once), \
         losses: {}, inconsistencies: {}, total {:.1?}",
        instances.len(),
        list_time,
        losses.len(),
        gaps.len(),
        started.elapsed()
    );
    assert!(
        losses.is_empty(),
        "LOST {} acknowledged event(s) (seed {seed}), first: {:?}",
        losses.len(),
        &losses[..losses.len().min(20)]
    );
    assert!(
        gaps.is_empty(),
        "checkpoint inconsistent with the log (seed {seed}): {gaps:?}"
    );
    assert!(
        total_claims > 0,
        "no sensor ever had an event acknowledged: the test proved nothing"
    );
}
