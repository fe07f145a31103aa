//! End-to-end: triggers with parameters, delivered live to a running
//! FileWatch-style sensor (the examples pack's FileWatchSensor).

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{wait_until, Env};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

fn lines_of(env: &Env, trigger_ref: &str) -> Vec<String> {
    let mut v: Vec<Value> = env.instances_of(trigger_ref);
    v.reverse(); // oldest first
    v.iter()
        .map(|i| {
            i["payload"]["line"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn append(path: &std::path::Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn file_watch_trigger_is_delivered_live_and_removed_live() {
    let env = Env::new(&["packs"]);
    env.register();
    let watched = env.dir.path().join("watched.log");
    std::fs::write(&watched, "old line, not reported\n").unwrap();
    let mut c = env.start_container(&["--sensor-ref", "examples.FileWatchSensor"]);
    assert!(wait_until(T, || env.sensorctl_json(&[
        "sensor",
        "get",
        "examples.FileWatchSensor",
        "--json"
    ])["state"]
        == "running"));

    // Create the trigger while the sensor runs: it gets add_trigger and starts tailing.
    let params = json!({"file_path": watched}).to_string();
    let created = Instant::now();
    let trigger = env.sensorctl_json(&[
        "trigger",
        "create",
        "--type",
        "examples.file_watch.line",
        "--parameters",
        &params,
        "--json",
    ]);
    let tref = trigger["ref"].as_str().unwrap().to_string();
    assert!(tref.starts_with("examples."));
    assert_eq!(trigger["type"], "examples.file_watch.line");
    assert_eq!(
        trigger["parameters"]["file_path"],
        watched.to_str().unwrap()
    );
    assert!(trigger["uid"].as_str().unwrap().starts_with(&format!(
        "trigger:examples:{}:",
        trigger["name"].as_str().unwrap()
    )));
    c.wait_log("trigger.add sent", T);
    assert!(created.elapsed() < Duration::from_secs(5));
    // An identical trigger is reused, not duplicated.
    let again = env.sensorctl_json(&[
        "trigger",
        "create",
        "--type",
        "examples.file_watch.line",
        "--parameters",
        &params,
        "--json",
    ]);
    assert_eq!(again["id"], trigger["id"]);
    let listed = env.sensorctl_json(&[
        "trigger",
        "list",
        "--type",
        "examples.file_watch.line",
        "--json",
    ]);
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // New lines become trigger instances of the trigger's ref.
    let deadline = Instant::now() + T;
    let mut n = 0;
    while lines_of(&env, &tref).len() < 3 && Instant::now() < deadline {
        // The tail may start just after a write: keep writing until seen.
        n += 1;
        append(&watched, &format!("line {n}\n"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = lines_of(&env, &tref);
    assert!(seen.len() >= 3, "lines seen: {seen:?}\n{}", c.log());
    assert!(
        !seen.iter().any(|l| l.contains("old line")),
        "only new lines: {seen:?}"
    );
    let inst = &env.instances_of(&tref)[0];
    assert_eq!(inst["trigger"], tref.as_str());
    assert_eq!(
        inst["trigger_type"], "examples.file_watch.line",
        "the instance records the trigger and its type"
    );
    assert_eq!(inst["payload"]["file_path"], watched.to_str().unwrap());

    // Delete: the sensor gets remove_trigger and stops tailing.
    let id = trigger["id"].as_str().unwrap();
    let out = env.sensorctl(&["trigger", "delete", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.wait_log("trigger.remove sent", T);
    std::thread::sleep(Duration::from_millis(500)); // let an in-flight poll finish
    let before = lines_of(&env, &tref).len();
    append(&watched, "after delete 1\nafter delete 2\n");
    // Bounded wait proving absence: longer than the tail's poll interval.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        lines_of(&env, &tref).len(),
        before,
        "no lines after remove_trigger"
    );
    assert!(c.terminate(T).success());
}

#[test]
fn existing_triggers_are_delivered_at_start() {
    let env = Env::new(&["packs"]);
    env.register();
    let watched = env.dir.path().join("w.log");
    std::fs::write(&watched, "").unwrap();
    let t = env.sensorctl_json(&[
        "trigger",
        "create",
        "--type",
        "examples.file_watch.line",
        "--parameters",
        &json!({"file_path": watched}).to_string(),
        "--json",
    ]);
    let tref = t["ref"].as_str().unwrap().to_string();
    let mut c = env.start_container(&["--sensor-ref", "examples.FileWatchSensor"]);
    let mut n = 0;
    assert!(
        wait_until(T, || {
            n += 1;
            append(&watched, &format!("x{n}\n"));
            !lines_of(&env, &tref).is_empty()
        }),
        "{}",
        c.log()
    );
    // Update: new parameters reach the running sensor.
    let other = env.dir.path().join("other.log");
    std::fs::write(&other, "").unwrap();
    let id = t["id"].as_str().unwrap();
    let updated = env.sensorctl_json(&[
        "trigger",
        "update",
        id,
        "--parameters",
        &json!({"file_path": other}).to_string(),
        "--json",
    ]);
    assert_eq!(updated["parameters"]["file_path"], other.to_str().unwrap());
    assert_ne!(updated["uid"], t["uid"]);
    c.wait_log("trigger.update sent", T);
    let mut m = 0;
    assert!(wait_until(T, || {
        m += 1;
        append(&other, &format!("y{m}\n"));
        lines_of(&env, &tref).iter().any(|l| l.starts_with('y'))
    }));
    assert!(c.terminate(T).success());
}

#[test]
fn trigger_bad_input_is_rejected_clearly() {
    let env = Env::new(&["packs"]);
    env.register();
    let fails = |args: &[&str], needle: &str| {
        let out = env.sensorctl(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err}"
        );
    };
    fails(
        &[
            "trigger",
            "create",
            "--type",
            "examples.file_watch.line",
            "--parameters",
            "{}",
        ],
        "file_path",
    );
    fails(
        &[
            "trigger",
            "create",
            "--type",
            "examples.file_watch.line",
            "--parameters",
            "{\"file_path\": 3}",
        ],
        "file_path",
    );
    fails(
        &[
            "trigger",
            "create",
            "--type",
            "examples.file_watch.line",
            "--parameters",
            "{\"file_path\": \"/x\", \"extra\": 1}",
        ],
        "extra",
    );
    fails(
        &[
            "trigger",
            "create",
            "--type",
            "examples.file_watch.line",
            "--parameters",
            "not json",
        ],
        "not JSON",
    );
    fails(
        &[
            "trigger",
            "create",
            "--type",
            "examples.nope",
            "--parameters",
            "{}",
        ],
        "not found",
    );
    fails(
        &[
            "trigger",
            "create",
            "--type",
            "examples.event",
            "--parameters",
            "{\"a\": 1}",
        ],
        "takes no parameters",
    );
    fails(&["trigger", "get", "no-such-id"], "not found");
    fails(&["trigger", "delete", "no-such-id"], "not found");
    // Shadow triggers are listed too.
    let all = env.sensorctl_json(&["trigger", "list", "--json"]);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["ref"] == "examples.event" && t["parameters"] == json!({})));
}
