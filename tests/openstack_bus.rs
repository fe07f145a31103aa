//! The openstack pack's NotificationListener (a Rust SDK sensor) against
//! the real oslo.messaging notifier (PyPI, in a venv made here) and a
//! private RabbitMQ node: both envelope versions, every priority, filters,
//! a broker restart mid-stream.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::rabbit::RabbitServer;
use common::{wait_until, Container, Env};
use serde_json::{json, Value};

const SENSOR: &str = "openstack.NotificationListener";
const TRIGGER: &str = "openstack.notification";

fn listener_env() -> Vec<(String, String)> {
    static BUILT: OnceLock<Vec<(String, String)>> = OnceLock::new();
    BUILT
        .get_or_init(|| common::build_sensor("openstack-notification-listener"))
        .clone()
}

fn oslo_python() -> Option<PathBuf> {
    let py = common::pip_python(
        "oslo-messaging",
        &["oslo.messaging==18.3.1"],
        "import oslo_messaging",
    );
    if py.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "cannot install oslo.messaging from PyPI"
        );
        eprintln!("SKIP: oslo.messaging could not be installed");
    }
    py
}

/// `notify.py` publishing `notes` with oslo's Notifier and `driver`.
fn notify_command(py: &Path, transport_url: &str, driver: &str, notes: &[Value], dir: &Path) -> Command {
    let file = dir.join(format!("notes-{}.json", rand_suffix()));
    std::fs::write(&file, serde_json::to_vec(notes).unwrap()).unwrap();
    let mut cmd = Command::new(py);
    cmd.arg(common::repo().join("tests/oslo/notify.py"))
        .args([transport_url, driver, file.to_str().unwrap()]);
    cmd
}

/// Publish `notes` with oslo's Notifier and `driver`, and wait for it.
fn notify(py: &Path, transport_url: &str, driver: &str, notes: &[Value], dir: &Path) {
    let out = notify_command(py, transport_url, driver, notes, dir)
        .output()
        .expect("run notify.py");
    assert!(
        out.status.success(),
        "notify.py {driver}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Nova's legacy `compute.instance.create.end` payload.
fn nova_create_end() -> Value {
    json!({
        "tenant_id": "6f70656e737461636b20342065766572", "user_id": "c3ab6e3c0b8b4b2d9f3b3c9f2b1f5e7a",
        "instance_id": "9f1b6c3e-2a4d-4b8e-9c7f-1d2e3f4a5b6c", "display_name": "web-01",
        "hostname": "web-01", "host": "compute-3", "node": "compute-3.example.org",
        "instance_type": "m1.small", "instance_type_id": 2, "memory_mb": 2048, "disk_gb": 20,
        "root_gb": 20, "ephemeral_gb": 0, "vcpus": 1, "state": "active", "state_description": "",
        "created_at": "2026-12-01 10:00:00+00:00", "launched_at": "2026-12-01T10:00:41.000000",
        "image_ref_url": "http://glance.example.org:9292/images/155d900f-4e14-4e4c-a73d-069cbf4541e6",
        "fixed_ips": [{"address": "10.0.0.5", "version": 4, "type": "fixed", "label": "private",
                       "meta": {}, "floating_ips": [], "vif_mac": "fa:16:3e:00:00:05"}],
        "metadata": {}, "message": "Success", "availability_zone": "nova", "progress": "",
        "cell_name": "", "kernel_id": "", "ramdisk_id": "", "os_type": null, "architecture": null
    })
}

fn note(priority: &str, event_type: &str, payload: Value) -> Value {
    json!({
        "priority": priority, "publisher_id": "compute.compute-3", "event_type": event_type,
        "payload": payload,
        "context": {"user": "alice", "project_id": "p1", "auth_token": "gAAAA-secret-token", "request_id": "req-1"},
    })
}

fn listener_config(env: &Env, rabbit: &RabbitServer, extra: &str) {
    let url = rabbit
        .url()
        .replacen("amqp://", "rabbit://", 1);
    std::fs::write(
        env.configs.join("openstack.yaml"),
        format!("transport_url: '{url}'\n{extra}"),
    )
    .unwrap();
}

fn start(env: &Env) -> Container {
    let envs = listener_env();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut c = env.start_container_with(&["--sensor-ref", SENSOR], &envs);
    c.wait_log("NotificationListener: consuming", Duration::from_secs(60));
    c
}

fn notifications(env: &Env) -> Vec<Value> {
    env.instances_of(TRIGGER)
}

fn wait_count(env: &Env, c: &Container, n: usize) -> Vec<Value> {
    let ok = wait_until(Duration::from_secs(60), || notifications(env).len() >= n);
    let got = notifications(env);
    assert!(ok, "{} of {n} notifications\n{}", got.len(), c.log());
    got
}

#[test]
fn both_driver_versions_and_every_priority_arrive_intact() {
    let Some(rabbit) = RabbitServer::start() else {
        return;
    };
    let Some(py) = oslo_python() else { return };
    let env = Env::new(&["packs"]);
    listener_config(&env, &rabbit, "");
    env.register();
    let mut c = start(&env);
    let transport = rabbit.url().replacen("amqp://", "rabbit://", 1);
    let v2 = vec![
        note("info", "compute.instance.create.end", nova_create_end()),
        note("error", "compute.instance.create.error", json!({"code": 500, "message": "No valid host"})),
        note("sample", "disk.read.bytes", json!({"volume": 1.5e9, "unit": "B"})),
        note("warn", "compute.instance.resize.prep", json!({"flavor": "m1.large"})),
        note("audit", "identity.authenticate", json!({"outcome": "success"})),
        note("debug", "compute.debug", json!([1, "two"])),
        note("critical", "compute.host.down", json!({"host": "compute-3"})),
    ];
    notify(&py, &transport, "messagingv2", &v2, env.dir.path());
    let v1 = vec![
        note("info", "image.upload", json!({"id": "img-1", "size": 12345})),
        note("error", "volume.attach.error", json!({"volume_id": "v-1"})),
    ];
    notify(&py, &transport, "messaging", &v1, env.dir.path());
    let got = wait_count(&env, &c, v2.len() + v1.len());
    assert_eq!(got.len(), v2.len() + v1.len(), "{got:#?}");
    for sent in v2.iter().chain(&v1) {
        let i = got
            .iter()
            .find(|i| i["payload"]["event_type"] == sent["event_type"])
            .unwrap_or_else(|| panic!("{} did not arrive: {got:#?}", sent["event_type"]));
        let p = &i["payload"];
        assert_eq!(p["priority"], sent["priority"], "{p:#}");
        assert_eq!(p["publisher_id"], "compute.compute-3");
        assert_eq!(p["payload"], sent["payload"], "payload not intact: {p:#}");
        assert_eq!(p["context"]["user"], "alice", "{p:#}");
        assert_eq!(p["context"]["request_id"], "req-1", "{p:#}");
        // oslo redacts the token itself (None); any other secret-looking
        // context field would become "***" here.
        assert!(matches!(p["context"]["auth_token"].as_str(), None | Some("***")), "{p:#}");
        assert!(!i.to_string().contains("gAAAA-secret-token"), "{i}");
        assert!(p["message_id"].as_str().is_some_and(|m| m.len() >= 32), "{p:#}");
        assert!(p["timestamp"].as_str().is_some_and(|t| t.starts_with("20")), "{p:#}");
        assert_eq!(i["sensor"], SENSOR);
    }
    assert!(!c.log().contains("gAAAA-secret-token"), "a token reached the log");
    assert!(c.terminate(Duration::from_secs(10)).success(), "{}", c.log());
    assert!(c.log().contains("9 dispatched, 0 filtered out"), "{}", c.log());
}

#[test]
fn filters_ack_what_they_drop_and_a_broker_restart_loses_nothing() {
    let Some(mut rabbit) = RabbitServer::start() else {
        return;
    };
    let Some(py) = oslo_python() else { return };
    let env = Env::new(&["packs"]);
    listener_config(
        &env,
        &rabbit,
        "filters:\n  event_type: 'compute\\.instance\\.'\n  payload: {state: act}\n",
    );
    env.register();
    let mut c = start(&env);
    let transport = rabbit.url().replacen("amqp://", "rabbit://", 1);
    let batch = |tag: &str, n: usize| -> Vec<Value> {
        (0..n)
            .flat_map(|k| {
                let mut p = nova_create_end();
                p["display_name"] = json!(format!("{tag}-{k}"));
                let mut other = p.clone();
                other["state"] = json!("building");
                // Filtered out first (another event type, a non-matching
                // payload): once the third is stored, the two before it
                // were handled (one queue, in order).
                vec![
                    note("info", "image.upload", json!({"state": "active"})),
                    note("info", "compute.instance.create.start", other),
                    note("info", "compute.instance.create.end", p),
                ]
            })
            .collect()
    };
    notify(&py, &transport, "messagingv2", &batch("before", 20), env.dir.path());
    wait_count(&env, &c, 20);
    // The broker crashes; what is published after it is back arrives
    // too, and nothing acknowledged before is lost.
    rabbit.restart();
    notify(&py, &transport, "messagingv2", &batch("after", 20), env.dir.path());
    let got = wait_count(&env, &c, 40);
    let names: std::collections::BTreeSet<String> = got
        .iter()
        .map(|i| i["payload"]["payload"]["display_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 40, "{names:?}");
    assert!(got.iter().all(|i| i["payload"]["event_type"] == "compute.instance.create.end"));
    assert!(c.log().contains("reconnecting in"), "{}", c.log());
    assert!(c.terminate(Duration::from_secs(10)).success(), "{}", c.log());
    let log = c.log();
    assert!(log.contains("filtered out"), "{log}");
    let last = log.lines().filter(|l| l.contains("filtered out")).last().unwrap();
    let n: u64 = last
        .split(" filtered out")
        .next()
        .and_then(|h| h.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {last}"));
    assert!(n >= 80, "{last}");
}

/// Display names of the stored notifications.
fn names(env: &Env) -> Vec<String> {
    notifications(env)
        .iter()
        .filter_map(|i| i["payload"]["payload"]["display_name"].as_str().map(str::to_string))
        .collect()
}

fn creates(tag: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|k| {
            let mut p = nova_create_end();
            p["display_name"] = json!(format!("{tag}-{k}"));
            note("info", "compute.instance.create.end", p)
        })
        .collect()
}

#[test]
fn a_pool_shares_messages_and_each_pool_gets_all_of_them() {
    let Some(rabbit) = RabbitServer::start() else {
        return;
    };
    let Some(py) = oslo_python() else { return };
    let envs: Vec<Env> = ["p1", "p1", "p2"]
        .iter()
        .map(|pool| {
            let env = Env::new(&["packs"]);
            listener_config(&env, &rabbit, &format!("pool: {pool}\ntopics: [notifications]\npriorities: [info]\nprefetch: 4\n"));
            env.register();
            env
        })
        .collect();
    let mut cs: Vec<Container> = envs.iter().map(start).collect();
    let transport = rabbit.url().replacen("amqp://", "rabbit://", 1);
    notify(&py, &transport, "messagingv2", &creates("pooled", 60), envs[0].dir.path());
    // Pool p2 alone gets every message.
    let ok = wait_until(Duration::from_secs(60), || names(&envs[2]).len() >= 60);
    assert!(ok, "pool p2 got {} of 60\n{}", names(&envs[2]).len(), cs[2].log());
    // Pool p1's two members share them: each once across both.
    let ok = wait_until(Duration::from_secs(60), || {
        names(&envs[0]).len() + names(&envs[1]).len() >= 60
    });
    let (a, b) = (names(&envs[0]), names(&envs[1]));
    assert!(ok, "pool p1 got {} + {} of 60", a.len(), b.len());
    let mut all: Vec<String> = a.iter().chain(&b).cloned().collect();
    all.sort();
    all.dedup();
    assert_eq!((a.len() + b.len(), all.len()), (60, 60), "duplicates in a pool: {a:?} {b:?}");
    assert!(!a.is_empty() && !b.is_empty(), "one member got everything: {} / {}", a.len(), b.len());
    let mut p2 = names(&envs[2]);
    p2.sort();
    assert_eq!(p2, all);
    for c in &mut cs {
        assert!(c.terminate(Duration::from_secs(10)).success(), "{}", c.log());
    }
}

#[test]
fn kill_9_mid_stream_leaves_every_notification_stored_or_still_queued() {
    let Some(rabbit) = RabbitServer::start() else {
        return;
    };
    let Some(py) = oslo_python() else { return };
    let env = Env::new(&["packs"]);
    listener_config(&env, &rabbit, "priorities: [info]\n");
    env.register();
    let mut c = start(&env);
    let transport = rabbit.url().replacen("amqp://", "rabbit://", 1);
    const N: usize = 1000;
    let mut publisher = notify_command(&py, &transport, "messagingv2", &creates("k", N), env.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run notify.py");
    // Killed mid-stream, while oslo still publishes: some stored and
    // acked, some dispatched but not acked, the rest still queued.
    assert!(wait_until(Duration::from_secs(60), || names(&env).len() >= 50), "{}", c.log());
    c.signal(libc::SIGKILL);
    c.wait_exit(Duration::from_secs(10));
    let before = names(&env).len();
    let published = wait_until(Duration::from_secs(120), || matches!(publisher.try_wait(), Ok(Some(_))));
    if !published {
        let _ = publisher.kill();
    }
    assert!(publisher.wait().unwrap().success(), "notify.py failed");
    assert!(before < N, "the kill came after everything was stored ({before})");
    // The next run takes what the broker still holds (unacked ones were
    // requeued when the connection died with the sensor).
    let mut c = start(&env);
    let ok = wait_until(Duration::from_secs(60), || {
        let mut n = names(&env);
        n.sort();
        n.dedup();
        n.len() >= N
    });
    let mut got = names(&env);
    got.sort();
    got.dedup();
    assert!(ok, "{} of {N} after a kill -9 at {before}\n{}", got.len(), c.log());
    let want: Vec<String> = {
        let mut w: Vec<String> = (0..N).map(|k| format!("k-{k}")).collect();
        w.sort();
        w
    };
    assert_eq!(got, want);
    assert!(c.terminate(Duration::from_secs(10)).success(), "{}", c.log());
}
