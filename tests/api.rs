//! The HTTP front door through a real HTTP client against the real
//! `sensorcontainer`: auth, StackStorm webhooks (durable before 202),
//! custom hooks, idempotency, health, metrics, streams, limits and
//! `sensorctl --url`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::http::{apikey, get, post, start};
use common::{ndjson, stdout, wait_until, Env};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[test]
fn st2_webhooks_auth_idempotency_custom_hooks_health_and_metrics() {
    let env = Env::new(&["packs", "tests/packs"]);
    env.register();
    let key = apikey(&env);
    let (mut c, base) = start(&env, &["--sensor-ref", "testpack.BurstSensor"]);
    let hook = format!("{base}/api/v1/webhooks/st2");
    let body = r#"{"trigger": "testpack.burst", "payload": {"n": 7, "pad": "p"}}"#;

    // Auth: none, wrong, and each accepted place.
    let none = post(&hook, &[JSON], body);
    assert_eq!(none.status, 401);
    assert_eq!(
        none.json()["faultstring"],
        "One of Token or API key required."
    );
    assert_eq!(
        post(&hook, &[JSON, ("St2-Api-Key", "sck_wrong")], body).status,
        401
    );
    let mut ids = Vec::new();
    for (name, url, headers) in [
        ("header", hook.clone(), vec![("St2-Api-Key", key.as_str())]),
        (
            "x-auth-token",
            hook.clone(),
            vec![("X-Auth-Token", key.as_str())],
        ),
        ("query", format!("{hook}?st2-api-key={key}"), vec![]),
    ] {
        let mut h = headers.clone();
        h.push(JSON);
        let a = post(&url, &h, body);
        assert_eq!(a.status, 202, "{name}: {}", a.body);
        assert_eq!(
            a.json(),
            serde_json::from_str::<Value>(body).unwrap(),
            "body echoed"
        );
        ids.push(a.header("X-Trigger-Instance-Id").unwrap().to_string());
    }
    let bearer = format!("Bearer {key}");
    let a = post(
        &hook,
        &[
            JSON,
            ("Authorization", &bearer),
            ("St2-Trace-Tag", "my-tag"),
        ],
        body,
    );
    assert_eq!(a.status, 202, "{}", a.body);
    let id = a.header("X-Trigger-Instance-Id").unwrap().to_string();
    // Acknowledged means stored: it is there at once.
    let stored = env.sensorctl_json(&["trigger-instance", "get", &id, "--json"]);
    assert_eq!(stored["trigger"], "testpack.burst");
    assert_eq!(stored["payload"], json!({"n": 7, "pad": "p"}));
    assert_eq!(stored["trace_tag"], "my-tag");
    for id in &ids {
        let i = env.sensorctl_json(&["trigger-instance", "get", id, "--json"]);
        assert!(
            i["trace_tag"].as_str().unwrap().starts_with("webhook-st2-"),
            "{i}"
        );
    }

    // 400s, each with a faultstring.
    let k = ("St2-Api-Key", key.as_str());
    for (body, want) in [
        (r#"{"payload": {}}"#, "Trigger not specified."),
        (r#"[1, 2]"#, "Webhook body needs to be an object, got: list"),
        (
            r#"{"trigger": "nope.nothing", "payload": {}}"#,
            "nope.nothing",
        ),
        (
            r#"{"trigger": "testpack.burst", "payload": {"n": "seven"}}"#,
            "validation",
        ),
        (r#"{"trigger": "#, "Failed to parse request body"),
    ] {
        let a = post(&hook, &[JSON, k], body);
        assert_eq!(a.status, 400, "{body}: {}", a.body);
        let f = a.json()["faultstring"].as_str().unwrap().to_string();
        assert!(f.contains(want), "{body}: {f}");
    }

    // Idempotency: the same key twice stores one instance, same id.
    let before = env.instances_of("testpack.burst").len();
    let first = post(&hook, &[JSON, k, ("Idempotency-Key", "abc-1")], body);
    let again = post(&hook, &[JSON, k, ("Idempotency-Key", "abc-1")], body);
    assert_eq!((first.status, again.status), (202, 202));
    assert_eq!(
        first.header("X-Trigger-Instance-Id"),
        again.header("X-Trigger-Instance-Id")
    );
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    let other = post(&hook, &[JSON, k, ("Idempotency-Key", "abc-2")], body);
    assert_ne!(
        other.header("X-Trigger-Instance-Id"),
        first.header("X-Trigger-Instance-Id")
    );
    let after = env.instances_of("testpack.burst").len();
    assert_eq!(after, before + 2);

    // Custom hooks: a core.st2.webhook trigger with url "sample".
    let missing = post(&format!("{base}/api/v1/webhooks/sample"), &[JSON, k], "{}");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["faultstring"],
        "Webhook sample not registered with st2"
    );
    let t = env.sensorctl_json(&[
        "trigger",
        "create",
        "--type",
        "core.st2.webhook",
        "--parameters",
        r#"{"url": "sample"}"#,
        "--json",
    ]);
    let a = post(
        &format!("{base}/api/v1/webhooks/sample"),
        &[JSON, k, ("Cookie", "secret=1"), ("X-Custom", "yes")],
        r#"{"alert": "disk"}"#,
    );
    assert_eq!(a.status, 202, "{}", a.body);
    let i = env.sensorctl_json(&[
        "trigger-instance",
        "get",
        a.header("X-Trigger-Instance-Id").unwrap(),
        "--json",
    ]);
    assert_eq!(i["trigger"], t["ref"]);
    assert_eq!(i["trigger_type"], "core.st2.webhook");
    assert_eq!(i["payload"]["body"], json!({"alert": "disk"}));
    assert_eq!(i["payload"]["headers_lower"]["x-custom"], "yes");
    assert_eq!(i["payload"]["headers"]["X-Custom"], "yes");
    let headers = i["payload"]["headers_lower"].as_object().unwrap();
    for secret in ["st2-api-key", "cookie", "x-auth-token"] {
        assert!(
            !headers.contains_key(secret),
            "{secret} leaked into the payload"
        );
    }
    let form = post(
        &format!("{base}/api/v1/webhooks/sample"),
        &[("Content-Type", "application/x-www-form-urlencoded"), k],
        "a=1&a=2&b=x",
    );
    assert_eq!(form.status, 202, "{}", form.body);
    let f = env.sensorctl_json(&[
        "trigger-instance",
        "get",
        form.header("X-Trigger-Instance-Id").unwrap(),
        "--json",
    ]);
    assert_eq!(f["payload"]["body"], json!({"a": ["1", "2"], "b": ["x"]}));

    // A body over api.max_body_bytes (1 MiB) is refused from its
    // Content-Length, before it is sent.
    let addr = base.trim_start_matches("http://");
    let mut raw = TcpStream::connect(addr).unwrap();
    write!(raw, "POST /api/v1/webhooks/st2 HTTP/1.1\r\nHost: x\r\nSt2-Api-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: 1100000\r\n\r\n").unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 12];
    raw.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");

    // Health, readiness, metrics (no key needed).
    assert_eq!(get(&format!("{base}/healthz"), &[]).status, 200);
    let ready = get(&format!("{base}/readyz"), &[]);
    assert_eq!(ready.status, 200, "{}", ready.body);
    let scrape = |base: &str| {
        let m = get(&format!("{base}/metrics"), &[]);
        assert_eq!(m.status, 200);
        let lines = m.body.lines().map(|l| Ok(l.to_string()));
        prometheus_parse::Scrape::parse(lines).expect("parses as Prometheus text")
    };
    let value = |s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>| -> f64 {
        sum(s, name, label.as_slice())
    };
    let m1 = scrape(&base);
    let webhook_202 = |s: &prometheus_parse::Scrape| {
        sum(
            s,
            "sensorcontainer_http_requests_total",
            &[("route", "/api/v1/webhooks/st2"), ("status", "202")],
        )
    };
    let dispatched_before = value(
        &m1,
        "sensorcontainer_sensor_dispatched_total",
        Some(("sensor", "testpack.BurstSensor")),
    );
    let w1 = webhook_202(&m1);
    assert!(w1 >= 6.0, "webhook 202s counted: {w1}");
    assert!(value(&m1, "sensorcontainer_log_records", None) > 0.0);
    assert!(value(&m1, "sensorcontainer_process_open_fds", None) > 0.0);
    assert!(value(&m1, "sensorcontainer_process_resident_memory_bytes", None) > 1e6);
    assert_eq!(
        value(
            &m1,
            "sensorcontainer_sensor_state",
            Some(("sensor", "testpack.BurstSensor"))
        ),
        1.0,
        "one state at a time"
    );
    std::fs::write(env.out.join("burst.request"), "25").unwrap();
    env.wait_marker("burst.done.25", Duration::from_secs(60), &mut c);
    post(&hook, &[JSON, k], body);
    let m2 = scrape(&base);
    assert_eq!(
        value(
            &m2,
            "sensorcontainer_sensor_dispatched_total",
            Some(("sensor", "testpack.BurstSensor"))
        ),
        dispatched_before + 25.0
    );
    assert_eq!(webhook_202(&m2), w1 + 1.0);
    assert_eq!(
        sum(
            &m2,
            "sensorcontainer_sensor_state",
            &[("sensor", "testpack.BurstSensor"), ("state", "running")]
        ),
        1.0
    );
    assert!(m2
        .samples
        .iter()
        .any(|x| x.metric.starts_with("sensorcontainer_log_commit_records")));

    // The same commands through --url as through the socket.
    let local = stdout(&env.sensorctl(&["sensor", "list"]));
    let remote = env.sensorctl(&["--url", &base, "--api-key", &key, "sensor", "list"]);
    assert!(remote.status.success(), "{}", common::stderr(&remote));
    assert_eq!(stdout(&remote).lines().count(), local.lines().count());
    assert!(stdout(&remote).contains("testpack.BurstSensor"));
    let no_key = env.sensorctl(&["--url", &base, "sensor", "list"]);
    assert!(!no_key.status.success());
    assert!(
        common::stderr(&no_key).contains("401"),
        "{}",
        common::stderr(&no_key)
    );
    let listed = ndjson(
        &env.sensorctl(&[
            "--url",
            &base,
            "--api-key",
            &key,
            "trigger-instance",
            "list",
            "--limit",
            "3",
            "--json",
        ])
        .stdout,
    );
    assert_eq!(listed.len(), 3);

    // A deleted key stops working.
    let keys = env.sensorctl_json(&["apikey", "list", "--json"]);
    let kid = keys[0]["id"].as_str().unwrap().to_string();
    assert!(keys[0]["last_used"].is_string(), "{keys}");
    assert!(
        !keys.to_string().contains(&key[4..]),
        "the key is never shown again"
    );
    assert!(env.sensorctl(&["apikey", "delete", &kid]).status.success());
    assert_eq!(post(&hook, &[JSON, k], body).status, 401);
    c.terminate(Duration::from_secs(20));
}

#[test]
fn an_acknowledged_webhook_survives_kill_9() {
    let env = Env::new(&["packs", "tests/packs"]);
    env.register();
    let key = apikey(&env);
    let (mut c, base) = start(&env, &["--sensor-ref", "testpack.BurstSensor"]);
    let a = post(
        &format!("{base}/api/v1/webhooks/st2"),
        &[JSON, ("St2-Api-Key", &key)],
        r#"{"trigger": "testpack.burst", "payload": {"n": 99}}"#,
    );
    assert_eq!(a.status, 202);
    c.signal(libc::SIGKILL);
    c.wait_exit(Duration::from_secs(10));
    let id = a.header("X-Trigger-Instance-Id").unwrap();
    let i = env.sensorctl_json(&["trigger-instance", "get", id, "--json"]);
    assert_eq!(i["payload"]["n"], 99);
}

/// Read SSE events (id, data) until `n` arrived.
fn sse_events(url: &str, key: &str, last_id: Option<u64>, n: usize) -> Vec<(u64, Value)> {
    let mut req = ureq::get(url)
        .set("St2-Api-Key", key)
        .timeout(Duration::from_secs(30));
    if let Some(id) = last_id {
        req = req.set("Last-Event-ID", &id.to_string());
    }
    let resp = req.call().expect("stream answers");
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let mut reader = BufReader::new(resp.into_reader());
    let (mut out, mut id, mut event) = (Vec::new(), None, String::new());
    while out.len() < n {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let line = line.trim_end();
        if let Some(v) = line.strip_prefix("id:") {
            id = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            assert_eq!(event, "st2.trigger_instance__create");
            out.push((id.unwrap(), serde_json::from_str(v.trim()).unwrap()));
        }
    }
    out
}

#[test]
fn sse_resumes_with_last_event_id_and_bad_clients_cannot_stall_the_server() {
    let env = Env::new(&["packs", "tests/packs"]);
    env.register();
    env.write_config(
        "api:\n  read_timeout: 2s\n  max_connections: 200\nsensorcontainer:\n  stop_grace_seconds: 5\n  sensors:\n    testpack.ExitCodeSensor:\n      restart: {initial_delay_seconds: 0.05, multiplier: 1, max_delay_seconds: 0.05, healthy_uptime_seconds: 600}\n",
    );
    for s in ["testpack.ExitCodeSensor", "testpack.BurstSensor"] {
        assert!(env.sensorctl(&["sensor", "enable", s]).status.success());
    }
    let key = apikey(&env);
    let (mut c, base) = start(&env, &[]);
    let k = ("St2-Api-Key", key.as_str());
    let hook = format!("{base}/api/v1/webhooks/st2");
    let send = |n: u64| {
        let a = post(
            &hook,
            &[JSON, k],
            &format!(r#"{{"trigger": "testpack.burst", "payload": {{"n": {n}}}}}"#),
        );
        assert_eq!(a.status, 202);
    };
    for n in 0..5 {
        send(n);
    }
    let all = env.instances_of("testpack.burst");
    let seqs: Vec<u64> = all
        .iter()
        .rev()
        .map(|i| i["seq"].as_u64().unwrap())
        .collect();
    // Resume after the second: exactly the three after it, then live ones.
    let stream = format!("{base}/api/v1/stream?trigger=testpack.burst");
    let (u, kk, resume) = (stream.clone(), key.clone(), seqs[1]);
    let reader = std::thread::spawn(move || sse_events(&u, &kk, Some(resume), 5));
    std::thread::sleep(Duration::from_millis(300));
    send(5);
    send(6);
    let got = reader.join().unwrap();
    let ns: Vec<u64> = got
        .iter()
        .map(|(_, v)| v["payload"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, vec![2, 3, 4, 5, 6]);
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "ids are increasing seqs"
    );
    assert_eq!(got[0].0, seqs[2]);

    // NDJSON stream from a seq.
    let resp = ureq::get(&format!(
        "{base}/v1/trigger-instances/stream?trigger=testpack.burst&from={}",
        seqs[3]
    ))
    .set("St2-Api-Key", &key)
    .call()
    .unwrap();
    let mut lines = BufReader::new(resp.into_reader()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["payload"]["n"], 3);

    // Slowloris: headers never finished → closed after read_timeout (2 s),
    // while a normal request is served meanwhile.
    let addr = base.trim_start_matches("http://").to_string();
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"POST /api/v1/webhooks/st2 HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let t0 = Instant::now();
    assert_eq!(get(&format!("{base}/healthz"), &[]).status, 200);
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 256];
    let closed = loop {
        match slow.read(&mut buf) {
            Ok(0) | Err(_) => break true,
            Ok(_) => continue, // a 408 answer, then the close
        }
    };
    assert!(closed);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "closed after {took:?}"
    );

    // Idle connections beyond the limit, while a crashing sensor restarts.
    let restarts = |env: &Env| -> u64 {
        let v = env.sensorctl_json(&["sensor", "get", "testpack.ExitCodeSensor", "--json"]);
        v["restarts"].as_u64().unwrap_or(0)
    };
    // 2000 client sockets need more than the usual 1024 descriptors.
    api::server::raise_fd_limit();
    let mut idle = Vec::new();
    for _ in 0..2000 {
        match TcpStream::connect(&addr) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect #{} failed: {e}", idle.len()),
        }
    }
    let r0 = restarts(&env);
    assert!(
        wait_until(Duration::from_secs(20), || restarts(&env) >= r0 + 5),
        "the crashing sensor kept restarting with {} idle connections open",
        idle.len()
    );
    // The control socket has its own limit: sensorctl still works.
    assert!(env.sensorctl(&["sensor", "list"]).status.success());
    drop(idle);
    assert!(wait_until(Duration::from_secs(10), || {
        ureq::get(&format!("{base}/healthz")).call().is_ok()
    }));
    c.terminate(Duration::from_secs(20));
}

/// The sum of a metric's samples whose labels include `labels`.
fn sum(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[test]
fn tls_with_a_certificate_made_in_the_test() {
    let env = Env::new(&["packs", "tests/packs"]);
    env.register();
    let key = apikey(&env);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = env.dir.path().join("cert.pem");
    let key_pem = env.dir.path().join("key.pem");
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.key_pair.serialize_pem()).unwrap();
    env.write_config(&format!(
        "api:\n  tls:\n    cert: {}\n    key: {}\n",
        cert_pem.display(),
        key_pem.display()
    ));
    let (mut c, base) = start(&env, &["--sensor-ref", "testpack.BurstSensor"]);
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let url = base.replace("127.0.0.1", "localhost");
    let ca = cert_pem.display().to_string();
    let ok = env.sensorctl(&[
        "--url",
        &url,
        "--api-key",
        &key,
        "--ca-cert",
        &ca,
        "sensor",
        "get",
        "testpack.BurstSensor",
        "--json",
    ]);
    assert!(ok.status.success(), "{}", common::stderr(&ok));
    let v: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["ref"], "testpack.BurstSensor");
    let no_ca = env.sensorctl(&["--url", &url, "--api-key", &key, "sensor", "list"]);
    assert!(!no_ca.status.success());
    assert!(
        common::stderr(&no_ca).contains("--ca-cert"),
        "{}",
        common::stderr(&no_ca)
    );
    // Plain HTTP to the TLS port gets no answer.
    let plain = ureq::get(&format!("{}/healthz", base.replace("https", "http")))
        .timeout(Duration::from_secs(5))
        .call();
    assert!(plain.is_err());
    c.terminate(Duration::from_secs(20));
}

#[test]
fn a_full_log_holding_a_lagging_consumer_answers_503_naming_it() {
    let env = Env::new(&["packs", "tests/packs"]);
    env.register();
    let key = apikey(&env);
    env.write_config(
        "log:\n  segment_bytes: 16KiB\n  retention:\n    max_bytes: 64KiB\n    on_full: reject\n",
    );
    // A consumer that never moves: its durable cursor sits at 0.
    let cursors = env.data.join("log/cursors");
    std::fs::create_dir_all(&cursors).unwrap();
    std::fs::write(cursors.join("stuck-sink"), "0\n").unwrap();
    let (mut c, base) = start(&env, &["--sensor-ref", "testpack.BurstSensor"]);
    assert_eq!(get(&format!("{base}/readyz"), &[]).status, 200);
    let hook = format!("{base}/api/v1/webhooks/st2");
    let body = format!(
        r#"{{"trigger": "testpack.burst", "payload": {{"n": 1, "pad": "{}"}}}}"#,
        "x".repeat(900)
    );
    let mut refused = None;
    for _ in 0..400 {
        let a = post(&hook, &[JSON, ("St2-Api-Key", &key)], &body);
        if a.status != 202 {
            refused = Some(a);
            break;
        }
    }
    let a = refused.expect("the log fills up and refuses");
    assert_eq!(a.status, 503, "{}", a.body);
    let why = a.json()["faultstring"].as_str().unwrap().to_string();
    assert!(
        why.contains("stuck-sink") && why.contains("max_bytes"),
        "{why}"
    );
    let ready = get(&format!("{base}/readyz"), &[]);
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("stuck-sink"), "{}", ready.body);
    let stats = env.sensorctl_json(&["log", "stats", "--json"]);
    assert_eq!(stats["cursors"][0]["name"], "stuck-sink");
    assert!(stats["refusing"].as_str().unwrap().contains("stuck-sink"));
    // The consumer catches up: accepted again, ready again.
    std::fs::write(
        cursors.join("stuck-sink"),
        format!("{}\n", stats["last_seq"]),
    )
    .unwrap();
    c.terminate(Duration::from_secs(20));
    let (mut c, base) = start(&env, &["--sensor-ref", "testpack.BurstSensor"]);
    let hook = format!("{base}/api/v1/webhooks/st2");
    assert_eq!(
        post(&hook, &[JSON, ("St2-Api-Key", &key)], &body).status,
        202
    );
    assert_eq!(get(&format!("{base}/readyz"), &[]).status, 200);
    c.terminate(Duration::from_secs(20));
}

#[test]
fn metrics_auth_and_trace_tag_dedupe_when_configured() {
    let env = Env::new(&["packs", "tests/packs"]);
    env.register();
    let key = apikey(&env);
    env.write_config("api:\n  metrics_auth: true\n  dedupe_on_trace_tag: true\n");
    let (mut c, base) = start(&env, &["--sensor-ref", "testpack.BurstSensor"]);
    assert_eq!(get(&format!("{base}/metrics"), &[]).status, 401);
    assert_eq!(
        get(&format!("{base}/metrics"), &[("St2-Api-Key", &key)]).status,
        200
    );
    assert_eq!(
        get(&format!("{base}/healthz"), &[]).status,
        200,
        "probes stay open"
    );
    let hook = format!("{base}/api/v1/webhooks/st2");
    let body = r#"{"trigger": "testpack.burst", "payload": {"n": 5}}"#;
    let k = ("St2-Api-Key", key.as_str());
    let a = post(&hook, &[JSON, k, ("St2-Trace-Tag", "retry-me")], body);
    let b = post(&hook, &[JSON, k, ("St2-Trace-Tag", "retry-me")], body);
    assert_eq!((a.status, b.status), (202, 202));
    assert_eq!(
        a.header("X-Trigger-Instance-Id"),
        b.header("X-Trigger-Instance-Id")
    );
    let stored = env.instances_of("testpack.burst");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["trace_tag"], "retry-me");
    c.terminate(Duration::from_secs(20));
}
