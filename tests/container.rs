//! End-to-end: the real `sensorcontainer` running real Python sensors from
//! `tests/packs/testpack`, with a real sled database in a temp dir.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{ndjson, pid_alive, wait_until, Env};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn spawned_pids(env: &Env) -> Vec<u32> {
    env.instances_of("core.st2.sensor.process_spawn")
        .iter()
        .map(|i| i["payload"]["pid"].as_u64().expect("pid") as u32)
        .collect()
}

fn assert_all_dead(pids: &[u32]) {
    assert!(!pids.is_empty());
    assert!(
        wait_until(Duration::from_secs(5), || pids
            .iter()
            .all(|p| !pid_alive(*p))),
        "sensor processes still alive: {:?}",
        pids.iter().filter(|p| pid_alive(**p)).collect::<Vec<_>>()
    );
}

#[test]
fn runs_enabled_sensors_stores_valid_instances_and_stops_cleanly() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let out = env.sensorctl(&["sensor", "enable", "testpack.ValidatingSensor"]);
    assert!(out.status.success());

    let mut c = env.start_container(&[]);
    env.wait_marker("polling.done", T, &mut c);
    env.wait_marker("threaded.done", T, &mut c);
    env.wait_marker("validating.done", T, &mut c);
    // While the container owns the database, sensorctl goes through its control API.
    let live = env.sensorctl_json(&["sensor", "list", "--json"]);
    let running: Vec<&Value> = live
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "running")
        .collect();
    assert_eq!(running.len(), 3, "{live}");
    assert!(running.iter().all(|s| s["pid"].as_u64().is_some()));
    let threaded = live
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ref"] == "testpack.ThreadedSensor")
        .unwrap();
    assert_eq!(threaded["dispatched"], 200);
    let validating = live
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ref"] == "testpack.ValidatingSensor")
        .unwrap();
    assert_eq!(validating["validation_failures"], 3);
    assert_eq!(
        live.as_array()
            .unwrap()
            .iter()
            .find(|s| s["ref"] == "testpack.CounterSensor")
            .unwrap()["state"],
        "disabled"
    );

    let status = c.terminate(T);
    assert!(status.success(), "container exit: {status:?}\n{}", c.log());
    let log = c.log();

    // cleanup() ran on stop.
    assert!(
        env.marker("threaded.cleanup").exists(),
        "cleanup() not called:\n{log}"
    );

    // Polling sensor: exactly n = 1..=5, once each, stored as sent (no default filled in).
    let mut ticks: Vec<i64> = env
        .instances_of("testpack.tick")
        .iter()
        .map(|i| i["payload"]["n"].as_i64().unwrap())
        .collect();
    ticks.sort();
    assert_eq!(ticks, vec![1, 2, 3, 4, 5]);
    for i in env.instances_of("testpack.tick") {
        assert!(
            i["payload"].get("source").is_none(),
            "defaults are for validation only: {i}"
        );
        assert_eq!(i["sensor"], "testpack.PollingCounter");
        assert_eq!(i["status"], "pending");
        assert!(i["trace_tag"]
            .as_str()
            .unwrap()
            .starts_with("trigger_instance-"));
    }

    // Threaded sensor: 4 threads x 50, none lost, none duplicated.
    let threaded = env.instances_of("testpack.threaded_event");
    let distinct: HashSet<(i64, i64)> = threaded
        .iter()
        .map(|i| {
            (
                i["payload"]["thread"].as_i64().unwrap(),
                i["payload"]["i"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(threaded.len(), 200);
    assert_eq!(distinct.len(), 200);

    // Validation: only the valid payload is stored; every failure is logged with the sensor ref.
    let strict = env.instances_of("testpack.strict");
    assert_eq!(strict.len(), 1, "{strict:?}");
    assert_eq!(strict[0]["payload"]["name"], "ok");
    let rejections = log
        .lines()
        .filter(|l| l.contains("dispatch rejected") && l.contains("testpack.ValidatingSensor"))
        .count();
    assert_eq!(rejections, 5, "{log}");
    assert!(
        log.contains("Additional properties are not allowed"),
        "additionalProperties failure should be explained:\n{log}"
    );
    assert!(
        log.contains("/name"),
        "the schema error path should be logged:\n{log}"
    );
    assert!(log.contains("payload must be an object"), "{log}");
    assert!(
        log.contains("unknown trigger 'testpack.no_such_trigger'"),
        "{log}"
    );

    // Sensor logger records reach the container log with the ref.
    assert!(
        log.lines()
            .any(|l| l.contains("threaded sensor dispatched 200 events")
                && l.contains("testpack.ThreadedSensor")),
        "{log}"
    );

    // Internal triggers, StackStorm's payloads.
    let spawns = env.instances_of("core.st2.sensor.process_spawn");
    let exits = env.instances_of("core.st2.sensor.process_exit");
    assert_eq!(spawns.len(), 3, "{spawns:?}");
    assert_eq!(exits.len(), 3, "{exits:?}");
    let ids: HashSet<&str> = spawns
        .iter()
        .map(|s| s["payload"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        HashSet::from(["PollingCounter", "ThreadedSensor", "ValidatingSensor"])
    );
    for s in &spawns {
        assert!(s["payload"]["timestamp"].as_u64().unwrap() > 1_700_000_000);
        assert!(s["payload"]["cmd"]
            .as_str()
            .unwrap()
            .contains("sensor_wrapper.py"));
    }
    for e in &exits {
        assert_eq!(e["payload"]["exit_code"], 0, "clean stop exits 0: {e}");
    }

    // No child outlives the container.
    assert_all_dead(&spawned_pids(&env));

    // Filters.
    let by_sensor = ndjson(
        &env.sensorctl(&[
            "trigger-instance",
            "list",
            "--sensor",
            "testpack.PollingCounter",
            "--json",
        ])
        .stdout,
    );
    assert_eq!(by_sensor.len(), 5);
    let limited = ndjson(
        &env.sensorctl(&["trigger-instance", "list", "--limit", "3", "--json"])
            .stdout,
    );
    assert_eq!(limited.len(), 3);
    assert!(limited[0]["seq"].as_u64().unwrap() > limited[1]["seq"].as_u64().unwrap());
    let id = strict[0]["id"].as_str().unwrap();
    let got = env.sensorctl_json(&["trigger-instance", "get", id, "--json"]);
    assert_eq!(got, strict[0]);
}

#[test]
fn single_sensor_mode_returns_the_child_exit_code() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let mut c = env.start_container(&[
        "--sensor-ref",
        "testpack.ExitCodeSensor",
        "--single-sensor-mode",
    ]);
    let status = c.wait_exit(T);
    assert_eq!(status.code(), Some(3), "{}", c.log());
    // The dispatch before sys.exit(3) was acknowledged and stored.
    assert_eq!(env.instances_of("testpack.exit_code_event").len(), 1);
    let exits = env.instances_of("core.st2.sensor.process_exit");
    assert_eq!(exits[0]["payload"]["exit_code"], 3);
}

#[test]
fn single_sensor_mode_requires_a_sensor_ref() {
    let env = Env::new(&["tests/packs"]);
    let mut c = env.start_container(&["--single-sensor-mode"]);
    let status = c.wait_exit(T);
    assert_eq!(status.code(), Some(1));
    assert!(c.log().contains("--sensor-ref"), "{}", c.log());
}

#[test]
fn unknown_sensor_ref_is_a_clear_error() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let mut c = env.start_container(&["--sensor-ref", "testpack.Nope"]);
    assert_eq!(c.wait_exit(T).code(), Some(1));
    assert!(
        c.log().contains("'testpack.Nope' is not registered"),
        "{}",
        c.log()
    );
}

#[test]
fn broken_sensors_exit_1_with_a_clear_error() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let cases: [(&str, &[&str]); 6] = [
        (
            "testpack.SyntaxErrorSensor",
            &["syntax_error.py", "SyntaxError"],
        ),
        ("testpack.NoSuchClass", &["missing_class.py", "NoSuchClass"]),
        (
            "testpack.MissingMethodSensor",
            &["MissingMethodSensor", "run"],
        ),
        ("testpack.CtorRaisesSensor", &["constructor exploded"]),
        ("testpack.SetupRaisesSensor", &["setup exploded"]),
        ("testpack.PollRaisesSensor", &["poll exploded"]),
    ];
    for (sensor, needles) in cases {
        let mut c = env.start_container(&["--sensor-ref", sensor, "--single-sensor-mode"]);
        let status = c.wait_exit(T);
        let log = c.log();
        assert_eq!(status.code(), Some(1), "{sensor}: {log}");
        for n in needles {
            assert!(
                log.contains(n),
                "{sensor}: log should mention {n:?}:\n{log}"
            );
        }
        assert!(
            log.lines().any(|l| l.contains(sensor)),
            "{sensor}: lines tagged with the ref:\n{log}"
        );
    }
}

#[test]
fn crashing_sensor_is_restarted_after_a_delay() {
    let env = Env::new(&["tests/packs"]);
    env.write_config("sensorcontainer:\n  restart:\n    initial_delay_seconds: 0.1\n    max_delay_seconds: 0.2\n");
    env.register();
    let mut c = env.start_container(&["--sensor-ref", "testpack.PollRaisesSensor"]);
    assert!(
        wait_until(T, || c.log().matches("restarting in").count() >= 2),
        "expected two restarts:\n{}",
        c.log()
    );
    assert!(c.terminate(T).success());
    let spawns = env.instances_of("core.st2.sensor.process_spawn");
    assert!(spawns.len() >= 2, "{spawns:?}");
    let exits = env.instances_of("core.st2.sensor.process_exit");
    assert!(
        exits.iter().any(|e| e["payload"]["exit_code"] == 1),
        "{exits:?}"
    );
    assert_all_dead(&spawned_pids(&env));
}

#[test]
fn oversized_frames_and_garbage_do_not_break_the_pipe() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let mut c = env.start_container(&["--sensor-ref", "testpack.PipeAbuseSensor"]);
    env.wait_marker("pipe_abuse.done", T, &mut c);
    assert!(c.terminate(T).success());
    let log = c.log();
    assert!(
        log.contains("rejected a 2097"),
        "oversized frame should be logged:\n{log}"
    );
    assert!(log.contains("bad frame from sensor"), "{log}");
    let stored = env.instances_of("testpack.pipe_abuse_event");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["payload"]["survived"], true);
}

#[test]
fn a_sensor_flooding_stdout_breaks_nothing() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let mut c = env.start_container_with(&["--sensor-ref", "testpack.StdoutFloodSensor"], &[]);
    env.wait_marker("stdout_flood.done", Duration::from_secs(60), &mut c);
    assert!(c.terminate(T).success());
    assert_eq!(env.instances_of("testpack.stdout_flood_event").len(), 1);
    let log = c.log();
    assert!(
        log.contains("not shown (longer than"),
        "the 5 MB line is summarized, not logged whole"
    );
    assert!(log.len() < 20 * 1024 * 1024);
}

#[test]
fn a_sensor_ignoring_sigterm_is_killed_after_the_grace_period() {
    let env = Env::new(&["tests/packs"]);
    env.write_config("sensorcontainer:\n  stop_grace_seconds: 1\n");
    env.register();
    let mut c = env.start_container(&["--sensor-ref", "testpack.IgnoresSigtermSensor"]);
    env.wait_marker("ignores_sigterm.ready", T, &mut c);
    let started = std::time::Instant::now();
    let status = c.terminate(Duration::from_secs(15));
    assert!(status.success(), "{}", c.log());
    // The contract: container shutdown takes at most grace + 1 s.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown took {:?} (grace 1 s)",
        started.elapsed()
    );
    assert!(
        c.log().contains("did not exit within the grace period"),
        "{}",
        c.log()
    );
    assert_all_dead(&spawned_pids(&env));
}

#[test]
fn kill_9_of_the_container_leaves_no_child() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let mut c = env.start_container(&[]);
    env.wait_marker("threaded.done", T, &mut c);
    env.wait_marker("polling.done", T, &mut c);
    c.signal(libc::SIGKILL);
    c.wait_exit(T);
    // The database is free again; the spawn records were durable.
    let pids = spawned_pids(&env);
    assert_eq!(pids.len(), 2, "PollingCounter and ThreadedSensor");
    assert_all_dead(&pids);
}

#[test]
fn eventlet_monkey_patching_sensor_works() {
    let Some(python) = common::eventlet_python() else {
        if std::env::var_os("CI").is_some() {
            panic!("could not install eventlet from PyPI in CI");
        }
        eprintln!("SKIP: eventlet could not be installed (no PyPI?)");
        return;
    };
    let env = Env::new(&["tests/packs"]);
    env.register();
    let mut c = env.start_container(&[
        "--sensor-ref",
        "testpack.EventletSensor",
        "--python",
        python.to_str().unwrap(),
    ]);
    env.wait_marker("eventlet.done", T, &mut c);
    assert!(c.terminate(T).success(), "{}", c.log());
    let events = env.instances_of("testpack.eventlet_sensor_event");
    let distinct: HashSet<(i64, i64)> = events
        .iter()
        .map(|i| {
            (
                i["payload"]["green"].as_i64().unwrap(),
                i["payload"]["i"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(distinct.len(), 30, "{events:?}");
    assert_eq!(events.len(), 30);
    assert!(c.log().contains("eventlet sensor done"), "{}", c.log());
}
