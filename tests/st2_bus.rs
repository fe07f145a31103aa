//! StackStorm's bus: a private RabbitMQ node and a kombu consumer standing
//! in for st2's rules engine (`accept=["pickle"]`, a durable queue on
//! `st2.trigger_instances_dispatch`). The bodies `sinks::st2::message`
//! makes are what that consumer decodes; the real container's `type: st2`
//! sink delivers every stored instance to it, across broker crashes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::rabbit::RabbitServer;
use common::{wait_until, Container, Env};
use serde_json::{json, Value};

fn kombu_python() -> Option<PathBuf> {
    let py = common::pip_python("kombu", &["kombu==5.7.0"], "import kombu");
    if py.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "cannot install kombu from PyPI"
        );
        eprintln!("SKIP: kombu could not be installed");
    }
    py
}

fn engine(py: &PathBuf, url: &str, args: &[&str]) {
    let script = common::repo().join("tests/st2bus/rules_engine.py");
    let out = Command::new(py)
        .arg(&script)
        .arg(url)
        .args(args)
        .output()
        .expect("run rules_engine.py");
    assert!(
        out.status.success(),
        "rules_engine.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn instance(n: u64, payload: Value) -> eventlog::TriggerInstance {
    let mut i = eventlog::TriggerInstance::new(
        "examples.event".into(),
        "examples.event".into(),
        payload,
        Some("examples.SampleSensor".into()),
    );
    i.trace_tag = format!("trigger_instance-{n}");
    i
}

#[test]
fn the_rules_engine_stand_in_decodes_our_bodies_across_a_broker_restart() {
    let Some(mut rabbit) = RabbitServer::start() else {
        return;
    };
    let Some(py) = kombu_python() else { return };
    let url = rabbit.url();
    engine(&py, &url, &["declare"]);
    let payloads = [
        json!({"count": 1, "text": "héllo ✓", "big": u64::MAX}),
        json!({"nested": [[1, 2.5], {"k": null}], "flag": true}),
        json!({}),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![];
    for (n, p) in payloads.iter().enumerate() {
        let body = sinks::st2::message::encode(&instance(n as u64 + 1, p.clone())).unwrap();
        let f = dir.path().join(format!("{n}.pickle"));
        std::fs::write(&f, body).unwrap();
        files.push(f.to_string_lossy().into_owned());
    }
    let mut args = vec!["publish"];
    args.extend(files.iter().map(String::as_str));
    engine(&py, &url, &args);
    // Persistent messages on a durable queue outlive a broker crash.
    rabbit.restart();
    let out = dir.path().join("got.jsonl");
    engine(&py, &url, &["consume", "3", out.to_str().unwrap()]);
    let got: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 3);
    for (n, (g, p)) in got.iter().zip(&payloads).enumerate() {
        assert_eq!(
            g["body"],
            json!({"trigger": "examples.event", "payload": p, "trace_context": {"trace_tag": format!("trigger_instance-{}", n + 1)}}),
        );
        assert_eq!(g["content_type"], "application/x-python-serialize");
        assert_eq!(g["delivery_mode"], 2);
    }
}

/// Every message `drain` took from the stand-in's queue.
fn drain(py: &PathBuf, url: &str, dir: &Path) -> Vec<Value> {
    let out = dir.join("drained.jsonl");
    engine(py, url, &["drain", out.to_str().unwrap(), "3"]);
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `st2` sink's row of `sensorctl sink list`.
fn st2_sink(env: &Env) -> Value {
    let v = env.sensorctl_json(&["sink", "list", "--json"]);
    v.as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "st2").cloned())
        .unwrap_or_else(|| panic!("no st2 sink in {v:#}"))
}

/// Wait until the sink caught up with the log; its cursor then.
fn wait_delivered(env: &Env, c: &Container) -> u64 {
    let mut cursor = 0;
    let ok = wait_until(Duration::from_secs(90), || {
        let s = st2_sink(env);
        cursor = s["cursor"].as_u64().unwrap_or(0);
        s["lag"] == 0 && s["state"] == "ok"
    });
    assert!(ok, "st2 sink did not drain: {:#}\n{}", st2_sink(env), c.log());
    cursor
}

/// The bodies received, by trace tag (st2's trace_context carries our
/// instance's), checked against the stored instances: each one up to the
/// sink's cursor `upto` arrived, decoded equal to `{trigger, payload,
/// trace_context}` as stored, and nothing arrived that was not stored.
/// How many were checked.
fn assert_all_arrived(env: &Env, got: &[Value], upto: u64) -> usize {
    let mut by_tag: BTreeMap<String, Value> = BTreeMap::new();
    for g in got {
        assert_eq!(g["content_type"], "application/x-python-serialize");
        assert_eq!(g["delivery_mode"], 2);
        let tag = g["body"]["trace_context"]["trace_tag"]
            .as_str()
            .unwrap_or_else(|| panic!("no trace tag in {g}"))
            .to_string();
        if let Some(prev) = by_tag.insert(tag, g["body"].clone()) {
            // At-least-once: a repeat must be the same message.
            assert_eq!(prev, g["body"]);
        }
    }
    let stored = env.instances();
    let tags: std::collections::BTreeSet<&str> =
        stored.iter().map(|i| i["trace_tag"].as_str().unwrap()).collect();
    for t in by_tag.keys() {
        assert!(tags.contains(t.as_str()), "{t} arrived but was never stored");
    }
    let delivered: Vec<&Value> = stored
        .iter()
        .filter(|i| i["seq"].as_u64().is_some_and(|s| s <= upto))
        .collect();
    for i in &delivered {
        let tag = i["trace_tag"].as_str().unwrap();
        let body = by_tag
            .get(tag)
            .unwrap_or_else(|| panic!("instance {} ({}) never reached the rules engine", i["id"], i["trigger"]));
        assert_eq!(
            body,
            &json!({"trigger": i["trigger"], "payload": i["payload"], "trace_context": {"trace_tag": tag}})
        );
    }
    delivered.len()
}

fn st2_env(packs: &[&str], url: &str) -> Env {
    let env = Env::new(packs);
    env.write_config(&format!(
        "st2:\n  url: '{url}'\n  connect_timeout: 2s\n\
         sinks:\n- {{name: st2, type: st2, retry: {{initial_delay: 50ms, max_delay: 500ms}}}}\n"
    ));
    env.register();
    env
}

#[test]
fn example_sensor_instances_reach_the_rules_engine_while_the_broker_is_down_and_back() {
    let Some(mut rabbit) = RabbitServer::start() else {
        return;
    };
    let Some(py) = kombu_python() else { return };
    let url = rabbit.url();
    engine(&py, &url, &["declare"]);
    let env = st2_env(&["packs"], &url);
    std::fs::write(env.configs.join("examples.yaml"), "event_interval: 1\n").unwrap();
    let mut c = env.start_container(&["--sensor-ref", "examples.SampleSensor"]);
    let events = |n: usize| {
        wait_until(Duration::from_secs(30), || env.instances_of("examples.event").len() >= n)
    };
    assert!(events(2), "{}", c.log());
    // The broker crashes mid-stream: the sensor goes on, the log keeps its
    // events, the sink waits for the broker (not dead-lettering).
    rabbit.kill();
    let before = env.instances_of("examples.event").len();
    assert!(events(before + 3), "{}", c.log());
    let s = st2_sink(&env);
    assert_eq!(s["state"], "retrying", "{s:#}");
    assert!(
        s["last_error"].as_str().unwrap_or_default().contains("cannot connect to RabbitMQ: amqp://guest:***@127.0.0.1"),
        "{s:#}"
    );
    rabbit.revive();
    let after = env.instances_of("examples.event").len();
    assert!(events(after + 2), "{}", c.log());
    let upto = wait_delivered(&env, &c);
    let got = drain(&py, &url, env.dir.path());
    let n = assert_all_arrived(&env, &got, upto);
    assert!(n >= before + 5, "{n} instances");
    // The sensor's process_spawn went out too (st2 rules may use it).
    assert!(got.iter().any(|g| g["body"]["trigger"] == "core.st2.sensor.process_spawn"));
    assert_eq!(st2_sink(&env)["dead_letters"], 0);
    // The sink says what failed; lapin's own bookkeeping warnings stay out.
    assert!(!c.log().contains("Failed resolving promise"), "{}", c.log());
    c.terminate(Duration::from_secs(10));
}

#[test]
fn a_broker_crash_during_a_burst_loses_no_confirmed_or_unconfirmed_instance() {
    let Some(mut rabbit) = RabbitServer::start() else {
        return;
    };
    let Some(py) = kombu_python() else { return };
    let url = rabbit.url();
    engine(&py, &url, &["declare"]);
    let env = st2_env(&["tests/packs"], &url);
    let mut c = env.start_container(&["--sensor-ref", "testpack.BurstSensor"]);
    // Killed while the sink publishes the burst: some of it confirmed,
    // some in flight, the rest not yet read.
    std::fs::write(env.out.join("burst.request"), "50000").unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || st2_sink(&env)["delivered"].as_u64() > Some(0)),
        "{}",
        c.log()
    );
    rabbit.kill();
    env.wait_marker("burst.done.50000", Duration::from_secs(120), &mut c);
    let held = st2_sink(&env);
    assert!(held["lag"].as_u64() > Some(0), "{held:#}");
    rabbit.revive();
    let upto = wait_delivered(&env, &c);
    c.terminate(Duration::from_secs(10));
    let got = drain(&py, &url, env.dir.path());
    let n = assert_all_arrived(&env, &got, upto);
    assert!(n > 50000, "{n}");
}

#[test]
fn st2_check_reports_broker_api_trigger_types_and_a_running_st2sensorcontainer() {
    let Some(rabbit) = RabbitServer::start_with_management() else {
        return;
    };
    let Some(py) = kombu_python() else { return };
    let url = rabbit.url();
    let api = common::st2api::St2Api::start("k-123");
    // More than a page (100), so the check must page through st2's list.
    let mut types: Vec<Value> = (0..140)
        .map(|n| json!({"ref": format!("other.t{n}"), "pack": "other", "name": format!("t{n}")}))
        .collect();
    types.push(json!({"ref": "examples.event", "pack": "examples", "name": "event"}));
    api.set("triggertypes", types);
    let env = Env::new(&["packs"]);
    let config = |key: &str| {
        format!(
            "st2:\n  url: '{url}'\n  api_url: '{}'\n  api_key: {key}\n  management_url: '{}'\n",
            api.url(),
            rabbit.management_url().unwrap()
        )
    };
    env.write_config(&config("k-123"));
    env.register();
    let check = || {
        let out = env.sensorctl(&["st2", "check"]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), common::stderr(&out))
    };
    // No st2 has run against this broker yet: its exchange is missing, and
    // the check must not create it.
    let (code, out, err) = check();
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("broker amqp://guest:***@127.0.0.1:") && out.contains("does not exist"), "{out}");
    assert!(!out.contains("guest:guest"), "password shown: {out}");
    let (code, out, _) = check();
    assert!(code == Some(1) && out.contains("does not exist"), "the check created the exchange: {out}");

    engine(&py, &url, &["declare"]);
    let (code, out, err) = check();
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("(the exchange exists)"), "{out}");
    assert!(out.contains("ok (141 trigger types)"), "{out}");
    let line = |t: &str| out.lines().find(|l| l.trim_start().starts_with(t)).unwrap_or_default().to_string();
    assert!(line("examples.event ").contains("known to st2") && !line("examples.event ").contains("NOT"), "{out}");
    assert!(line("examples.poll_event").contains("NOT known to st2"), "{out}");
    assert!(out.contains("st2sensorcontainer: not running"), "{out}");
    assert!(err.contains("problem(s)"), "{err}");
    assert!(
        api.requests().iter().any(|r| r.contains("offset=100")),
        "{:?}",
        api.requests()
    );
    let out = env.sensorctl(&["st2", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exchange"], "st2.trigger_instances_dispatch");
    assert!(v["problems"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().contains("examples.poll_event")));

    // st2's sensor container watching its triggers: sensors would run twice.
    let script = common::repo().join("tests/st2bus/rules_engine.py");
    let mut watcher = std::process::Command::new(&py)
        .arg(&script)
        .args([url.as_str(), "watch", "st2.trigger.watch.SensorWrapper_examples_SampleSensor-5f0c", "120"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut last = String::new();
    let seen = wait_until(Duration::from_secs(30), || {
        last = check().1;
        last.contains("st2sensorcontainer: APPEARS TO RUN")
    });
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(seen, "{last}");
    assert!(last.contains("st2.trigger.watch.SensorWrapper_examples_SampleSensor-5f0c (1 consumer(s))"), "{last}");

    // A wrong API key is named as the API's answer.
    env.write_config(&config("wrong"));
    let (code, out, _) = check();
    assert_eq!(code, Some(1));
    assert!(out.contains("st2 API http://127.0.0.1:") && out.contains("HTTP 401"), "{out}");
}

fn st2_trigger(id: &str, file: &Path) -> Value {
    json!({
        "id": id,
        "ref": format!("examples.{id}"),
        "name": id,
        "pack": "examples",
        "type": "examples.file_watch.line",
        "parameters": {"file_path": file.to_str().unwrap()},
        "uid": format!("trigger:examples:{id}:x"),
    })
}

#[test]
fn triggers_created_in_st2_reach_a_running_file_watch_sensor_by_poll_and_by_hint() {
    let Some(rabbit) = RabbitServer::start() else {
        return;
    };
    let Some(py) = kombu_python() else { return };
    let url = rabbit.url();
    let api = common::st2api::St2Api::start("k-9");
    let env = Env::new(&["packs"]);
    let (a, b) = (env.out.join("a.log"), env.out.join("b.log"));
    std::fs::write(&a, "").unwrap();
    std::fs::write(&b, "").unwrap();
    // A trigger st2 already has: mirrored at start.
    api.set(
        "triggers",
        vec![
            st2_trigger("0b7c1f2a-aaaa-4d4e-9c1b-000000000001", &a),
            // Shadow triggers and types we do not have are not ours.
            json!({"id": "s1", "ref": "examples.event", "name": "event", "pack": "examples", "type": "examples.event", "parameters": {}}),
            json!({"id": "x1", "ref": "linux.9f", "name": "9f", "pack": "linux", "type": "linux.file_watch.line", "parameters": {"file_path": "/x"}}),
        ],
    );
    // The poll interval is long: within the test only the start and the
    // hints can explain a change.
    env.write_config(&format!(
        "st2:\n  url: '{url}'\n  api_url: '{}'\n  api_key: k-9\n  trigger_poll_interval: 600s\n",
        api.url()
    ));
    env.register();
    let mut c = env.start_container(&["--sensor-ref", "examples.FileWatchSensor"]);
    let lines_of = |file: &Path| -> Vec<String> {
        env.instances_of("examples.file_watch.line")
            .iter()
            .filter(|i| i["payload"]["file_path"] == file.to_str().unwrap())
            .map(|i| i["payload"]["line"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    // Append until the sensor tails the file (it starts at the end).
    let tails = |file: &Path, tag: &str| {
        let mut n = 0;
        wait_until(Duration::from_secs(30), || {
            n += 1;
            let mut f = std::fs::OpenOptions::new().append(true).open(file).unwrap();
            use std::io::Write;
            writeln!(f, "{tag} {n}").unwrap();
            std::thread::sleep(Duration::from_millis(200));
            lines_of(file).iter().any(|l| l.starts_with(tag))
        })
    };
    assert!(tails(&a, "first"), "{}", c.log());
    let t = env.sensorctl_json(&["trigger", "list", "--json"]);
    let refs: Vec<&str> = t.as_array().unwrap().iter().filter_map(|t| t["ref"].as_str()).collect();
    assert!(refs.contains(&"examples.0b7c1f2a-aaaa-4d4e-9c1b-000000000001"), "{refs:?}");
    assert!(!refs.contains(&"linux.9f"), "{refs:?}");
    // Local changes are refused: the triggers are st2's.
    let out = env.sensorctl(&[
        "trigger", "create", "--type", "examples.file_watch.line", "--parameters", r#"{"file_path": "/tmp/x"}"#,
    ]);
    assert!(!out.status.success());
    assert!(common::stderr(&out).contains("triggers come from StackStorm"), "{}", common::stderr(&out));

    // st2 creates a second one and says so on st2.trigger: picked up now,
    // not in 600 s.
    api.set(
        "triggers",
        vec![
            st2_trigger("0b7c1f2a-aaaa-4d4e-9c1b-000000000001", &a),
            st2_trigger("0b7c1f2a-bbbb-4d4e-9c1b-000000000002", &b),
        ],
    );
    // The watcher connects shortly after start; a hint before that is
    // covered by its first-connection re-read, so keep hinting until seen.
    let seen = wait_until(Duration::from_secs(30), || {
        engine(&py, &url, &["hint"]);
        env.sensorctl_json(&["trigger", "list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["ref"] == "examples.0b7c1f2a-bbbb-4d4e-9c1b-000000000002")
    });
    assert!(seen, "{}", c.log());
    assert!(tails(&b, "second"), "{}", c.log());

    // st2 deletes the first: removed here and from the sensor.
    api.set("triggers", vec![st2_trigger("0b7c1f2a-bbbb-4d4e-9c1b-000000000002", &b)]);
    let gone = wait_until(Duration::from_secs(30), || {
        engine(&py, &url, &["hint"]);
        !env.sensorctl_json(&["trigger", "list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["ref"] == "examples.0b7c1f2a-aaaa-4d4e-9c1b-000000000001")
    });
    assert!(gone, "{}", c.log());
    assert!(c.log().contains("st2 triggers: 0 added, 0 updated, 1 removed"), "{}", c.log());
    assert!(api.requests().iter().all(|r| r.starts_with("/api/v1/triggers?limit=100")));
    c.terminate(Duration::from_secs(10));
}

#[test]
fn with_st2_datastore_sensors_keys_live_in_st2_with_the_same_semantics_and_error_codes() {
    let api = common::st2api::St2Api::start("k-7");
    let env = Env::new(&["tests/packs"]);
    env.write_config(&format!(
        "st2:\n  api_url: '{}'\n  api_key: k-7\n  datastore: st2\n",
        api.url()
    ));
    env.register();
    let mut c = env.start_container(&["--sensor-ref", "testpack.DatastoreProbe"]);
    env.wait_marker("probe.json", Duration::from_secs(60), &mut c);
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(env.marker("probe.json")).unwrap()).unwrap();
    assert!(c.terminate(Duration::from_secs(10)).success(), "{}", c.log());

    // TTL: st2's (the stand-in expires at 2 s).
    assert_eq!(r["set_ttl"], true);
    assert_eq!(r["before_expiry"], "lived");
    let gone = r["ttl_gone_after"].as_f64().unwrap();
    assert!((1.9..3.0).contains(&gone), "ttl=2 key vanished after {gone}s");
    // Secrets: st2 encrypts (its key); ciphertext without decrypt.
    assert_ne!(r["cipher"].as_str().unwrap(), "PLAINTEXT-SECRET-7f3a9c");
    assert_eq!(r["plain"], true, "{r:#}");
    // StackStorm semantics and the same error codes as the local
    // datastore, through st2's API.
    common::assert_datastore_probe_semantics(&r);

    // The keys are st2's (what `st2 key list` shows) — and not ours.
    let keys = api.keys();
    assert_eq!(keys["testpack.DatastoreProbe:sticky"]["value"], "b");
    assert_eq!(keys["testpack.DatastoreProbe:secret"]["secret"], true);
    assert_eq!(keys["probe.global"]["value"], "g");
    assert!(!keys.contains_key("testpack.DatastoreProbe:short"), "expired key still listed");
    let local = env.sensorctl_ok(&["key", "list"]);
    assert!(!local.contains("sticky") && !local.contains("probe.global"), "{local}");
}

#[test]
fn st2_conf_cluster_urls_fail_over_to_a_tls_broker_trusted_through_ssl_ca_certs() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_pem, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.key_pair.serialize_pem()).unwrap();
    let Some(rabbit) = RabbitServer::start_with_tls(&cert_pem, &key_pem) else {
        return;
    };
    let Some(py) = kombu_python() else { return };
    let url = rabbit.url();
    engine(&py, &url, &["declare"]);
    // st2.conf as st2 has it: the first broker of the cluster is down, the
    // second speaks TLS with a certificate only ssl_ca_certs vouches for.
    let dead = common::peers::free_port();
    let st2_conf = dir.path().join("st2.conf");
    std::fs::write(
        &st2_conf,
        format!(
            "[api]\nport = 9101\n\n[messaging]\nurl = amqp://guest:guest@127.0.0.1:{dead}/\n\
             cluster_urls = amqp://guest:guest@127.0.0.1:{dead}/,\n    amqps://guest:guest@localhost:{}/\n\
             ssl_ca_certs = {}\n",
            rabbit.tls_port().unwrap(),
            cert_pem.display()
        ),
    )
    .unwrap();
    let env = Env::new(&["tests/packs"]);
    env.write_config(&format!(
        "st2:\n  config_path: {}\n  connect_timeout: 2s\nsinks:\n- {{name: st2, type: st2}}\n",
        st2_conf.display()
    ));
    env.register();
    let mut c = env.start_container(&["--sensor-ref", "testpack.BurstSensor"]);
    std::fs::write(env.out.join("burst.request"), "500").unwrap();
    env.wait_marker("burst.done.500", Duration::from_secs(60), &mut c);
    let upto = wait_delivered(&env, &c);
    assert!(
        c.log().contains(&format!("st2 sink: connected to amqps://guest:***@localhost:{}/", rabbit.tls_port().unwrap())),
        "{}",
        c.log()
    );
    c.terminate(Duration::from_secs(10));
    let got = drain(&py, &url, env.dir.path());
    assert!(assert_all_arrived(&env, &got, upto) > 500);
}
