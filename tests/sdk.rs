//! End-to-end: sensors in other languages. The Rust example sensor built
//! with the SDK (`crates/sdk`, `packs/examples/rust_sensor`), and a Python
//! sensor written from `crates/protocol/PROTOCOL.md` alone (no st2reactor),
//! both as `runner_type: exec` under the real container.

mod common;

use std::collections::HashSet;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{pid_alive, wait_until, Env};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// The example sensor, built for this test run.
fn rust_sensor_env() -> &'static [(String, String)] {
    static BUILT: OnceLock<Vec<(String, String)>> = OnceLock::new();
    BUILT.get_or_init(|| common::build_sensor("examples-rust-sensor"))
}

/// The value of a datastore key, if it exists.
fn key(env: &Env, name: &str) -> Option<String> {
    let out = env.sensorctl(&["key", "get", name, "--json"]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["value"].as_str().map(str::to_string)
}

fn exit_codes(env: &Env, class_name: &str) -> Vec<i64> {
    env.instances_of("core.st2.sensor.process_exit")
        .iter()
        .filter(|i| i["payload"]["id"] == class_name)
        .map(|i| i["payload"]["exit_code"].as_i64().expect("exit_code"))
        .collect()
}

fn spawned_pids(env: &Env, class_name: &str) -> Vec<u32> {
    env.instances_of("core.st2.sensor.process_spawn")
        .iter()
        .filter(|i| i["payload"]["id"] == class_name)
        .map(|i| i["payload"]["pid"].as_u64().expect("pid") as u32)
        .collect()
}

#[test]
fn rust_sdk_sensor_dispatches_and_continues_its_count_across_restarts() {
    let envs = rust_sensor_env();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let env = Env::new(&["packs"]);
    env.register();
    let out = env.sensorctl(&["sensor", "enable", "examples.RustSensor"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sensor = env.sensorctl_json(&["sensor", "get", "examples.RustSensor", "--json"]);
    assert_eq!(sensor["enabled"], true, "{sensor}");
    assert_eq!(sensor["runner_type"], "exec", "{sensor}");

    // Two runs of the container. Each poll adds 3 events (events_per_poll's
    // default), numbered on from the checkpoint the previous run stored.
    let count = || key(&env, "examples.RustSensor:count").and_then(|v| v.parse::<u64>().ok());
    let mut checkpoint = 0;
    for run in 1..=2 {
        let mut c = env.start_container_with(&["--sensor-ref", "examples.RustSensor"], &envs);
        let reached = wait_until(T, || {
            c.exited() || count().is_some_and(|n| n >= checkpoint + 3)
        });
        assert!(
            reached && !c.exited(),
            "run {run}: the count never passed {checkpoint}; log:\n{}",
            c.log()
        );
        let live = env.sensorctl_json(&["sensor", "get", "examples.RustSensor", "--json"]);
        assert_eq!(live["state"], "running", "{live}");
        let status = c.terminate(T);
        assert!(status.success(), "container exit {status:?}:\n{}", c.log());
        let log = c.log();
        let resumed = format!("RustSensor resuming after count {checkpoint}");
        assert!(
            log.lines()
                .any(|l| l.contains(&resumed) && l.contains("examples.RustSensor")),
            "run {run}: the tracing bridge should log {resumed:?} with the ref:\n{log}"
        );
        assert!(
            log.contains("RustSensor has trigger examples.rust_event"),
            "{log}"
        );
        let now = count().expect("the checkpoint is stored");
        assert!(
            now >= checkpoint + 3 && now % 3 == 0,
            "run {run}: count {now}"
        );
        // cleanup() ran on the stop, and its log line made it out.
        assert!(
            log.contains(&format!("RustSensor stopping at count {now}")),
            "run {run}:\n{log}"
        );
        checkpoint = now;
    }

    // Every event stored once, numbered 1..=checkpoint with no gap or
    // repeat across the restart.
    let events = env.instances_of("examples.rust_event");
    let mut counts: Vec<u64> = events
        .iter()
        .map(|i| i["payload"]["count"].as_u64().expect("count"))
        .collect();
    counts.sort();
    assert_eq!(counts, (1..=checkpoint).collect::<Vec<_>>(), "{events:?}");
    for e in &events {
        assert_eq!(e["sensor"], "examples.RustSensor");
        assert_eq!(e["payload"]["language"], "rust");
        assert!(e["payload"]["greeting"].is_string());
    }

    // Both processes were the exec'd binary, stopped cleanly (exit 0), and are gone.
    let spawns = env.instances_of("core.st2.sensor.process_spawn");
    assert_eq!(spawns.len(), 2, "{spawns:?}");
    for s in &spawns {
        assert!(
            s["payload"]["cmd"]
                .as_str()
                .unwrap()
                .ends_with("packs/examples/sensors/rust_sensor.sh"),
            "{s}"
        );
    }
    assert_eq!(exit_codes(&env, "RustSensor"), vec![0, 0]);
    let pids = spawned_pids(&env, "RustSensor");
    assert!(wait_until(Duration::from_secs(5), || pids
        .iter()
        .all(|p| !pid_alive(*p))));
}

#[test]
fn rust_sensor_script_explains_a_missing_build() {
    let env = Env::new(&["packs"]);
    env.register();
    let empty = tempfile::tempdir().unwrap();
    let mut c = env.start_container_with(
        &[
            "--sensor-ref",
            "examples.RustSensor",
            "--single-sensor-mode",
        ],
        &[("RUST_SENSOR_TARGET_DIR", empty.path().to_str().unwrap())],
    );
    let status = c.wait_exit(T);
    assert_eq!(status.code(), Some(1), "{}", c.log());
    assert!(
        c.log()
            .contains("build it with `cargo build -p examples-rust-sensor`"),
        "{}",
        c.log()
    );
}

#[test]
fn a_sensor_written_from_protocol_md_alone_works() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let started = Instant::now();
    let mut c = env.start_container(&["--sensor-ref", "testpack.RawProtocolSensor"]);
    env.wait_marker("raw_protocol.json", T, &mut c);
    let live = env.sensorctl_json(&["sensor", "get", "testpack.RawProtocolSensor", "--json"]);
    assert_eq!(live["state"], "running", "`ready` was recorded: {live}");

    // A trigger created, updated and deleted while it runs reaches it live.
    let created = env.sensorctl_json(&[
        "trigger",
        "create",
        "--type",
        "testpack.raw_watch",
        "--parameters",
        r#"{"target": "a"}"#,
        "--json",
    ]);
    c.wait_log("trigger.add sent", T);
    let id = created["id"].as_str().unwrap();
    let updated = env.sensorctl_json(&[
        "trigger",
        "update",
        id,
        "--parameters",
        r#"{"target": "b"}"#,
        "--json",
    ]);
    c.wait_log("trigger.update sent", T);
    let out = env.sensorctl(&["trigger", "delete", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.wait_marker("raw_protocol.triggers.json", T, &mut c);
    let status = c.terminate(T);
    assert!(status.success(), "container exit {status:?}:\n{}", c.log());
    let log = c.log();
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(env.marker("raw_protocol.json")).unwrap())
            .unwrap();

    // The environment and init.
    assert_eq!(r["env"]["SENSOR_RPC_FD"], "3");
    assert_eq!(r["env"]["SENSOR_REF"], "testpack.RawProtocolSensor");
    assert_eq!(r["env"]["SENSOR_PACK"], "testpack");
    assert_eq!(r["env"]["SENSOR_CLASS_NAME"], "RawProtocolSensor");
    let init = &r["init"];
    assert_eq!(init["ref"], "testpack.RawProtocolSensor");
    assert_eq!(init["pack"], "testpack");
    assert_eq!(init["class_name"], "RawProtocolSensor");
    assert!(init["entry_point"]
        .as_str()
        .unwrap()
        .ends_with("tests/packs/testpack/sensors/raw_protocol.py"));
    assert_eq!(init["poll_interval"], Value::Null);
    assert_eq!(init["config"]["out_dir"], env.out.display().to_string());
    assert_eq!(init["config"]["count"], 50);
    let mut types: Vec<&str> = init["trigger_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, ["testpack.raw_event", "testpack.raw_watch"]);
    assert_eq!(init["max_frame_bytes"], 1048576);
    // The shadow trigger of its own type, delivered through init.
    let shadow = &init["triggers"][0];
    assert_eq!(init["triggers"].as_array().unwrap().len(), 1, "{init}");
    assert_eq!(shadow["ref"], "testpack.raw_event");
    assert_eq!(shadow["type"], "testpack.raw_event");
    assert_eq!(shadow["name"], "raw_event");
    assert_eq!(shadow["pack"], "testpack");
    assert_eq!(shadow["parameters"], serde_json::json!({}));
    assert!(shadow["uid"]
        .as_str()
        .unwrap()
        .starts_with("trigger:testpack:raw_event:"));
    assert!(shadow["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        r["triggers_added"],
        serde_json::json!(["testpack.raw_event"])
    );

    // Pipelined dispatch: every request answered, each with a distinct id of
    // a stored instance; the notification dispatch is stored too; errors as
    // documented.
    assert_eq!(r["ack_errors"], serde_json::json!([]));
    let acks: Vec<&str> = r["acks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(acks.len(), 100);
    let object_ack = r["object_dispatch"]["result"]["id"].as_str().unwrap();
    assert_eq!(r["invalid_dispatch"]["code"], -32010);
    assert_eq!(r["invalid_dispatch"]["data"]["path"], "/n");
    assert_eq!(r["unknown_dispatch"]["code"], -32011);
    let stored = env.instances_of("testpack.raw_event");
    assert_eq!(
        stored.len(),
        102,
        "100 + the object dispatch + the notification"
    );
    let stored_ids: HashSet<&str> = stored.iter().map(|i| i["id"].as_str().unwrap()).collect();
    let acked: HashSet<&str> = acks.iter().copied().chain([object_ack]).collect();
    assert_eq!(acked.len(), 101, "ids are distinct");
    assert!(acked.is_subset(&stored_ids), "every acked id is stored");
    let mut ns: Vec<i64> = stored
        .iter()
        .map(|i| i["payload"]["n"].as_i64().unwrap())
        .collect();
    ns.sort();
    let mut expected: Vec<i64> = (0..100).collect();
    expected.extend([1000, 2000]);
    assert_eq!(ns, expected);
    let traced = stored.iter().find(|i| i["payload"]["n"] == 1000).unwrap();
    assert_eq!(traced["trace_tag"], "raw-trace");
    assert_eq!(traced["id"], object_ack);
    for i in &stored {
        assert_eq!(i["sensor"], "testpack.RawProtocolSensor");
    }

    // The datastore round trip.
    let kv = &r["kv"];
    let prefix = "testpack.RawProtocolSensor:";
    assert_eq!(kv["set_local"]["result"], true);
    assert_eq!(
        kv["get_local"]["result"]["name"],
        format!("{prefix}checkpoint")
    );
    assert_eq!(kv["get_local"]["result"]["value"], "101");
    assert_eq!(kv["get_local"]["result"]["secret"], false);
    assert_eq!(kv["get_local"]["result"]["expire_timestamp"], Value::Null);
    assert_eq!(kv["set_full"]["result"], true);
    assert_eq!(kv["get_full"]["result"]["value"], "x");
    assert!(kv["get_full"]["result"]["expire_timestamp"].is_string());
    let names = |v: &Value| -> Vec<String> {
        v["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&kv["list_prefix"]),
        [format!("{prefix}checkpoint"), format!("{prefix}other")]
    );
    assert_eq!(names(&kv["list_local"]), [format!("{prefix}checkpoint")]);
    assert_eq!(kv["delete"]["result"], true);
    assert_eq!(kv["delete_again"]["result"], false);
    assert_eq!(kv["get_deleted"]["result"], Value::Null);
    assert_eq!(kv["set_not_string"]["code"], -32602);
    assert_eq!(kv["user_scope"]["code"], -32020);
    assert_eq!(
        key(&env, "testpack.RawProtocolSensor:checkpoint").as_deref(),
        Some("101")
    );
    assert_eq!(key(&env, "testpack.RawProtocolSensor:other"), None);

    // log, user.info, garbage, unknown methods.
    assert_eq!(r["log_request"]["result"], true);
    assert!(
        log.lines()
            .any(|l| l.contains("raw protocol sensor says hi")
                && l.contains("WARN")
                && l.contains("testpack.RawProtocolSensor")),
        "{log}"
    );
    assert!(log.contains("logged by request"), "{log}");
    assert_eq!(r["user_info"]["username"], "stanley");
    assert_eq!(r["after_garbage"]["result"]["value"], "101");
    assert_eq!(r["null_id_errors"][0]["code"], -32700);
    assert_eq!(r["unknown_method"]["code"], -32601);

    // The live trigger: add (and an immediate dispatch to it), update, remove.
    let live: Value = serde_json::from_str(
        &std::fs::read_to_string(env.marker("raw_protocol.triggers.json")).unwrap(),
    )
    .unwrap();
    let methods: Vec<&str> = live
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["trigger.add", "trigger.update", "trigger.remove"],
        "{live}"
    );
    let tref = created["ref"].as_str().unwrap();
    for e in live.as_array().unwrap() {
        assert_eq!(e["ref"], tref, "{e}");
        assert_eq!(e["type"], "testpack.raw_watch", "{e}");
    }
    assert_eq!(live[0]["parameters"]["target"], "a");
    assert_eq!(live[1]["parameters"], updated["parameters"]);
    assert_eq!(live[1]["parameters"]["target"], "b");
    let live_ack = live[0]["dispatch"]["result"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("dispatch to the new trigger failed: {live}"));
    let to_trigger = env.instances_of(tref);
    assert_eq!(to_trigger.len(), 1, "{to_trigger:?}");
    assert_eq!(to_trigger[0]["id"], live_ack);
    assert_eq!(to_trigger[0]["trigger_type"], "testpack.raw_watch");
    assert_eq!(to_trigger[0]["payload"]["target"], "a");

    // Shutdown: the notification arrived (with SIGTERM), the sensor exited 0.
    let done: Value = serde_json::from_str(
        &std::fs::read_to_string(env.marker("raw_protocol.shutdown.json"))
            .expect("the sensor recorded its shutdown"),
    )
    .unwrap();
    assert_eq!(done["shutdown"]["reason"], "container stopping", "{done}");
    assert_eq!(done["sigterm"], true, "{done}");
    assert_eq!(exit_codes(&env, "RawProtocolSensor"), vec![0], "{log}");
    let pids = spawned_pids(&env, "RawProtocolSensor");
    assert!(wait_until(Duration::from_secs(5), || pids
        .iter()
        .all(|p| !pid_alive(*p))));
    assert!(started.elapsed() < Duration::from_secs(60));
}
