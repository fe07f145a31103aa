//! Sinks end to end: the real container delivering to a real HTTP server
//! (in this process), a real nats-server with JetStream, and a file;
//! retries, dead letters, statuses, filters, st2's webhook format, reload,
//! retention backpressure, and kill -9 at random points.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::peers::{HttpPeer, Mode, NatsServer};
use common::{ndjson, wait_until, Container, Env};
use serde_json::Value;

const BURST: &str = "testpack.BurstSensor";
const KV_CREATE: &str = "core.st2.key_value_pair.create";
/// Fast retries for tests.
const FAST: &str = "retry: {initial_delay: 20ms, max_delay: 100ms, max_attempts: 1000}";

fn burst(env: &Env, c: &mut Container, n: u64, total: u64) {
    std::fs::write(env.out.join("burst.request"), n.to_string()).unwrap();
    env.wait_marker(&format!("burst.done.{total}"), Duration::from_secs(120), c);
}

fn sinks(env: &Env) -> Vec<Value> {
    let v = env.sensorctl_json(&["sink", "list", "--json"]);
    v.as_array().cloned().unwrap_or_default()
}

fn sink(env: &Env, name: &str) -> Value {
    sinks(env)
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no sink '{name}' in sink list"))
}

/// Wait until every sink has lag 0 and is `ok`.
fn wait_drained(env: &Env, c: &Container, timeout: Duration) {
    let ok = wait_until(timeout, || {
        sinks(env)
            .iter()
            .all(|s| s["lag"] == 0 && s["state"] == "ok")
    });
    assert!(ok, "sinks did not drain: {:#?}\n{}", sinks(env), c.log());
}

fn statuses(env: &Env, trigger: &str) -> HashMap<String, String> {
    env.instances_of(trigger)
        .into_iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ids(instances: &[Value]) -> BTreeSet<String> {
    instances
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// `sensorctl key set NAME 1` and the id of the create instance it made.
fn key_event(env: &Env, name: &str) -> String {
    let out = env.sensorctl(&["key", "set", name, "1"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    // The create event is an internal trigger: stored by the next group
    // commit, not before `key set` answers. Poll for it.
    let mut found = None;
    wait_until(Duration::from_secs(10), || {
        found = env
            .instances_of(KV_CREATE)
            .into_iter()
            .find(|i| i["payload"]["object"]["name"] == name);
        found.is_some()
    });
    let found = found.unwrap_or_else(|| panic!("no {KV_CREATE} instance for key {name}"));
    found["id"].as_str().unwrap().to_string()
}

fn status_of(env: &Env, id: &str) -> String {
    let v = env.sensorctl_json(&["trigger-instance", "get", id, "--json"]);
    v["status"].as_str().unwrap_or_default().to_string()
}

/// An HTTP peer, and a registered workspace whose config has one sink:
/// `sink` (YAML flow-mapping fields, without `url`) posting to `/in`.
fn http_sink_env(sink: &str) -> (HttpPeer, Env) {
    let http = HttpPeer::start();
    let env = Env::new(&["tests/packs"]);
    env.write_config(&format!(
        "sinks:\n- {{{sink}, url: '{}'}}\n",
        http.url("/in")
    ));
    env.register();
    (http, env)
}

#[test]
fn file_http_and_nats_sinks_deliver_everything_and_recover_from_an_outage() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let mut http = HttpPeer::start();
    let env = Env::new(&["tests/packs"]);
    let file = env.out.join("instances.jsonl");
    env.write_config(&format!(
        "sinks:\n\
         - {{name: archive, type: file, path: {}}}\n\
         - {{name: web, type: http, url: '{}', batch_max: 20, {FAST}}}\n\
         - {{name: bus, type: nats, url: '{}', create_stream: {{name: SC, duplicate_window: 2m}}}}\n",
        file.display(),
        http.url("/events"),
        nats.url()
    ));
    env.register();
    let mut c = env.start_container(&["--sensor-ref", BURST]);
    burst(&env, &mut c, 300, 300);
    wait_drained(&env, &c, Duration::from_secs(60));

    let all = env.instances();
    let want = ids(&all);
    assert!(want.len() >= 300, "{} instances", want.len());
    let in_file: BTreeSet<String> = ndjson(&std::fs::read(&file).unwrap())
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(in_file, want, "the file holds every instance");
    let posted: BTreeSet<String> = http.delivered_ids().into_iter().collect();
    assert_eq!(posted, want, "the HTTP server got every instance");
    let in_seq_order: Vec<String> = all
        .iter()
        .rev()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        http.delivered_ids(),
        in_seq_order,
        "in log order, once each"
    );
    let in_stream = nats.stream_ids("SC");
    assert_eq!(
        in_stream.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "the stream holds every instance"
    );
    assert_eq!(in_stream.len(), want.len(), "each once");
    assert!(
        all.iter().all(|i| i["status"] == "processed"),
        "all processed"
    );
    let list = sinks(&env);
    assert_eq!(list.len(), 3);
    for s in &list {
        assert_eq!(s["lag"], 0, "{s}");
        assert_eq!(s["dead_letters"], 0, "{s}");
    }

    // The HTTP server goes away: that sink retries, its head is processing.
    http.stop();
    burst(&env, &mut c, 20, 320);
    assert!(
        wait_until(Duration::from_secs(30), || sink(&env, "web")["state"]
            == "retrying"),
        "web never retrying: {}",
        sink(&env, "web")
    );
    assert!(sink(&env, "web")["last_error"]
        .as_str()
        .unwrap()
        .contains("POST"));
    let st = statuses(&env, "testpack.burst");
    assert!(
        st.values().any(|s| s == "processing"),
        "some instance processing: {st:?}"
    );
    // The others are unaffected.
    assert!(wait_until(Duration::from_secs(30), || {
        let l = sinks(&env);
        l.iter()
            .filter(|s| s["name"] != "web")
            .all(|s| s["lag"] == 0)
    }));
    http.restart();
    wait_drained(&env, &c, Duration::from_secs(60));
    let st = statuses(&env, "testpack.burst");
    assert_eq!(st.len(), 320);
    assert!(st.values().all(|s| s == "processed"), "{st:?}");

    // Re-emit: a new id, same trigger and payload, a trace tag naming it.
    let orig = env.instances_of("testpack.burst").pop().unwrap();
    let orig_id = orig["id"].as_str().unwrap();
    let v = env.sensorctl_json(&["trigger-instance", "re-emit", orig_id, "--json"]);
    let new_id = v["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, orig_id);
    let got = env.sensorctl_json(&["trigger-instance", "get", &new_id, "--json"]);
    assert_eq!(got["trigger"], orig["trigger"]);
    assert_eq!(got["payload"], orig["payload"]);
    assert_eq!(got["trace_tag"], format!("re-emit-of-{orig_id}"));
    assert!(wait_until(Duration::from_secs(30), || http
        .delivered_ids()
        .contains(&new_id)));
    wait_drained(&env, &c, Duration::from_secs(30));
    let got = env.sensorctl_json(&["trigger-instance", "get", &new_id, "--json"]);
    assert_eq!(got["status"], "processed");
    for s in ["archive", "web", "bus"] {
        assert_eq!(got["delivery"][s], "delivered", "{got}");
    }
}

#[test]
fn retry_then_success_is_delivered_once_with_three_retries() {
    let (http, env) = http_sink_env(&format!(
        "name: web, type: http, triggers: ['core.st2.key_value_pair.*'], {FAST}"
    ));
    let c = env.start_container_with(
        &["--sensor-ref", BURST],
        &[("SENSORCONTAINER_API_LISTEN", "127.0.0.1:0")],
    );
    http.script(&[503, 503, 503]);
    let id = key_event(&env, "k1");
    assert!(
        wait_until(Duration::from_secs(30), || http
            .delivered_ids()
            .contains(&id)),
        "{}",
        c.log()
    );
    wait_drained(&env, &c, Duration::from_secs(30));
    let got: Vec<u16> = http.received().iter().map(|r| r.status).collect();
    assert_eq!(got, vec![503, 503, 503, 200]);
    assert_eq!(http.delivered_ids(), vec![id.clone()], "delivered once");
    let s = sink(&env, "web");
    assert_eq!(s["retries"], 3, "{s}");
    assert_eq!(s["delivered"], 1, "{s}");
    assert_eq!(status_of(&env, &id), "processed");
    let posted: Value = serde_json::from_slice(&http.received()[3].body).unwrap();
    assert_eq!(posted["id"], id.as_str());
    assert_eq!(posted["trigger"], KV_CREATE);

    // The same figures in /metrics.
    let base = c.http_base();
    let body = ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && s.labels.get("sink") == Some("web"))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(ref h) => {
                    h.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                _ => 0.0,
            })
            .sum()
    };
    assert_eq!(value("sensorcontainer_sink_delivered_total"), 1.0, "{body}");
    assert_eq!(value("sensorcontainer_sink_retries_total"), 3.0);
    assert_eq!(value("sensorcontainer_sink_lag"), 0.0);
    assert_eq!(value("sensorcontainer_sink_dead_lettered_total"), 0.0);
    assert_eq!(
        value("sensorcontainer_sink_delivery_latency_seconds"),
        1.0,
        "one observation"
    );
}

#[test]
fn permanent_400_dead_letters_moves_on_and_sink_retry_redelivers() {
    let (http, env) = http_sink_env(&format!(
        "name: web, type: http, triggers: ['{KV_CREATE}'], {FAST}"
    ));
    let c = env.start_container(&["--sensor-ref", BURST]);
    http.set_mode(Mode::Status(400));
    let bad = key_event(&env, "bad");
    assert!(wait_until(Duration::from_secs(30), || sink(&env, "web")
        ["dead_letters"]
        == 1));
    assert!(
        c.log().contains("dead-lettered 1 instance(s)"),
        "{}",
        c.log()
    );
    assert_eq!(status_of(&env, &bad), "processing_failed");
    let list = env.sensorctl_json(&[
        "trigger-instance",
        "list",
        "--status",
        "processing_failed",
        "--json",
    ]);
    assert_eq!(list["id"], bad.as_str(), "NDJSON of one: {list}");
    let letters = env.sensorctl_json(&["sink", "dead-letters", "web", "--json"]);
    let l = &letters[0];
    assert_eq!(l["id"], bad.as_str());
    assert_eq!(l["reason"], "permanent");
    assert_eq!(l["attempts"], 1);
    assert!(l["last_error"].as_str().unwrap().contains("400"), "{l}");

    // The cursor moved on: the next instance is delivered.
    http.set_mode(Mode::Ok);
    let good = key_event(&env, "good");
    assert!(wait_until(Duration::from_secs(30), || http
        .delivered_ids()
        .contains(&good)));
    assert_eq!(status_of(&env, &good), "processed");
    assert_eq!(status_of(&env, &bad), "processing_failed");

    // Fixed: retry re-delivers it.
    let out = env.sensorctl(&["sink", "retry", "web", "--id", &bad]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stdout(&out).contains("1 dead letter(s)"));
    assert!(wait_until(Duration::from_secs(30), || http
        .delivered_ids()
        .contains(&bad)));
    assert!(wait_until(Duration::from_secs(10), || sink(&env, "web")
        ["dead_letters"]
        == 0));
    assert_eq!(status_of(&env, &bad), "processed");
    assert_eq!(http.delivered_ids(), vec![good, bad]);
    // Retrying what is not there says so.
    let out = env.sensorctl(&["sink", "retry", "web", "--id", "nope"]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("no dead letter"),
        "{}",
        common::stderr(&out)
    );
    let out = env.sensorctl(&["sink", "retry", "nosuch", "--all"]);
    assert!(
        common::stderr(&out).contains("sink 'nosuch' is not configured"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn filters_select_by_trigger_and_sensor_globs() {
    let http = HttpPeer::start();
    let env = Env::new(&["tests/packs"]);
    env.write_config(&format!(
        "sinks:\n\
         - {{name: bursts, type: http, url: '{}', triggers: ['testpack.*']}}\n\
         - {{name: by-sensor, type: http, url: '{}', sensors: ['testpack.Burst*'], batch_max: 10}}\n\
         - {{name: keys, type: http, url: '{}', triggers: ['core.st2.key_value_pair.*']}}\n",
        http.url("/bursts"),
        http.url("/by-sensor"),
        http.url("/keys"),
    ));
    env.register();
    let mut c = env.start_container(&["--sensor-ref", BURST]);
    burst(&env, &mut c, 25, 25);
    let key = key_event(&env, "f1");
    wait_drained(&env, &c, Duration::from_secs(30));
    let by_path = |p: &str| -> BTreeSet<String> {
        http.received()
            .iter()
            .filter(|r| r.path == p)
            .flat_map(|r| {
                let v: Value = serde_json::from_slice(&r.body).unwrap();
                match v {
                    Value::Array(a) => a,
                    o => vec![o],
                }
            })
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    let bursts = ids(&env.instances_of("testpack.burst"));
    assert_eq!(bursts.len(), 25);
    assert_eq!(by_path("/bursts"), bursts);
    assert_eq!(by_path("/by-sensor"), bursts);
    assert_eq!(by_path("/keys"), [key.clone()].into());
    // batch_max 10: arrays of at most 10.
    assert!(http
        .received()
        .iter()
        .filter(|r| r.path == "/by-sensor")
        .all(|r| serde_json::from_slice::<Value>(&r.body)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
            <= 10));
    let got = env.sensorctl_json(&["trigger-instance", "get", &key, "--json"]);
    let delivery = got["delivery"].as_object().unwrap();
    assert_eq!(delivery.len(), 1, "only the keys sink selects it: {got}");
    assert_eq!(delivery["keys"], "delivered");
}

#[test]
fn st2_format_posts_the_webhook_body_and_headers_st2_expects() {
    let http = HttpPeer::start();
    let env = Env::new(&["tests/packs"]);
    env.write_config(&format!(
        "sinks:\n- {{name: st2, type: http, format: st2, url: '{}/', api_key: k123, headers: {{X-Extra: yes}}, triggers: ['{KV_CREATE}']}}\n",
        http.url("")
    ));
    env.register();
    let c = env.start_container(&["--sensor-ref", BURST]);
    let id = key_event(&env, "st2key");
    assert!(
        wait_until(Duration::from_secs(30), || !http.received().is_empty()),
        "{}",
        c.log()
    );
    let r = &http.received()[0];
    assert_eq!(r.path, "/api/v1/webhooks/st2");
    assert_eq!(r.headers["st2-api-key"], "k123");
    assert_eq!(r.headers["st2-trace-tag"], id);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["x-extra"], "yes");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    let inst = env.sensorctl_json(&["trigger-instance", "get", &id, "--json"]);
    assert_eq!(
        body,
        serde_json::json!({"trigger": KV_CREATE, "payload": inst["payload"]}),
        "exactly st2's webhook body"
    );
}

#[test]
fn nats_dedupes_what_a_kill_9_makes_us_publish_again() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let env = Env::new(&["tests/packs"]);
    env.write_config(&format!(
        "sinks:\n- {{name: bus, type: nats, url: '{}', batch_max: 256, triggers: ['testpack.*'], create_stream: {{name: DEDUPE, duplicate_window: 5m}}}}\n",
        nats.url()
    ));
    env.register();
    let mut c = env.start_container(&["--sensor-ref", BURST]);
    std::fs::write(env.out.join("burst.request"), "20000").unwrap();
    // Kill once the sink is delivering mid-stream.
    assert!(wait_until(Duration::from_secs(60), || {
        sink(&env, "bus")["delivered"].as_u64().unwrap_or(0) > 500
    }));
    c.signal(libc::SIGKILL);
    c.wait_exit(Duration::from_secs(10));
    let mut c = env.start_container(&["--sensor-ref", BURST]);
    wait_drained(&env, &c, Duration::from_secs(120));
    let want = ids(&env.instances_of("testpack.burst"));
    let got = nats.stream_ids("DEDUPE");
    assert_eq!(
        got.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "none lost"
    );
    assert_eq!(got.len(), want.len(), "each id once");
    c.terminate(Duration::from_secs(30));
}

#[test]
fn a_sink_added_by_reload_starts_and_a_removed_one_lets_go_of_its_cursor() {
    let http = HttpPeer::start();
    let env = Env::new(&["tests/packs"]);
    env.register();
    let c = env.start_container(&["--sensor-ref", BURST]);
    let first = key_event(&env, "before");
    assert!(sinks(&env).is_empty());
    env.write_config(&format!(
        "sinks:\n- {{name: late, type: http, url: '{}', start: earliest, triggers: ['{KV_CREATE}']}}\n",
        http.url("/late")
    ));
    let out = env.sensorctl(&["reload"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stdout(&out).contains("Sinks: added late"),
        "{}",
        common::stdout(&out)
    );
    assert!(
        wait_until(Duration::from_secs(30), || http
            .delivered_ids()
            .contains(&first)),
        "{}",
        c.log()
    );
    let stats = env.sensorctl_json(&["log", "stats", "--json"]);
    assert!(stats.to_string().contains("sink.late"), "{stats}");
    // A bad sinks: changes nothing.
    env.write_config("sinks:\n- {name: late, type: http}\n");
    let out = env.sensorctl(&["reload"]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("sinks[0] ('late').url"),
        "{}",
        common::stderr(&out)
    );
    // (sensorctl reads the config file too: put a good one back to ask.)
    env.write_config("log_level: info\n");
    assert_eq!(sinks(&env).len(), 1, "the running sink is untouched");
    // Removed.
    env.write_config("sinks: []\n");
    let out = env.sensorctl(&["reload"]);
    assert!(
        common::stdout(&out).contains("removed late"),
        "{}",
        common::stdout(&out)
    );
    assert!(sinks(&env).is_empty());
    let stats = env.sensorctl_json(&["log", "stats", "--json"]);
    assert!(!stats.to_string().contains("sink.late"), "{stats}");
}

#[test]
fn a_dead_sink_with_reject_retention_refuses_dispatch_naming_it_then_recovers() {
    let mut http = HttpPeer::start();
    http.stop();
    let env = Env::new(&["tests/packs"]);
    env.write_config(&format!(
        "log:\n  segment_bytes: 8KiB\n  retention: {{max_bytes: 32KiB, on_full: reject}}\n\
         sinks:\n- {{name: web, type: http, url: '{}', triggers: ['testpack.*'], {FAST}}}\n",
        http.url("/in")
    ));
    env.register();
    let mut c = env.start_container(&["--sensor-ref", BURST]);
    // Far more than 32 KiB of instances: the log fills up behind the sink.
    burst(&env, &mut c, 400, 400);
    assert!(
        wait_until(Duration::from_secs(30), || {
            env.sensorctl_json(&["log", "stats", "--json"])["refusing"]
                .as_str()
                .is_some_and(|r| r.contains("sink 'web'"))
        }),
        "{}",
        env.sensorctl_json(&["log", "stats", "--json"])
    );
    let stored = env.instances_of("testpack.burst");
    assert!(stored.len() < 400, "some dispatches were refused");
    let one = stored[0]["id"].as_str().unwrap().to_string();
    let out = env.sensorctl(&["trigger-instance", "re-emit", &one]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("sink 'web'"),
        "{}",
        common::stderr(&out)
    );
    // It comes back: the sink drains, retention frees space, dispatch works.
    http.restart();
    wait_drained(&env, &c, Duration::from_secs(60));
    assert!(wait_until(Duration::from_secs(30), || {
        env.sensorctl_json(&["log", "stats", "--json"])["refusing"].is_null()
    }));
    // (Retention may have deleted every burst by now: re-emit a new one.)
    let newest = key_event(&env, "after");
    let out = env.sensorctl(&["trigger-instance", "re-emit", &newest]);
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[test]
fn nothing_is_lost_over_20_random_kill_points_with_http_and_nats_sinks() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let http = HttpPeer::start();
    let env = Env::new(&["tests/packs"]);
    env.write_config(&format!(
        "sinks:\n\
         - {{name: web, type: http, url: '{}', batch_max: 50, triggers: ['testpack.*'], {FAST}}}\n\
         - {{name: bus, type: nats, url: '{}', batch_max: 128, triggers: ['testpack.*'], create_stream: {{name: KILLS, duplicate_window: 10m}}}}\n",
        http.url("/in"),
        nats.url()
    ));
    env.register();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20 {
        let mut c = env.start_container(&["--sensor-ref", BURST]);
        std::fs::write(env.out.join("burst.request"), "2000").unwrap();
        std::thread::sleep(Duration::from_millis(100 + next() % 600));
        c.signal(libc::SIGKILL);
        c.wait_exit(Duration::from_secs(10));
    }
    let c = env.start_container(&["--sensor-ref", BURST]);
    wait_drained(&env, &c, Duration::from_secs(180));
    let want = ids(&env.instances_of("testpack.burst"));
    assert!(want.len() > 1000, "{} instances", want.len());
    let posted: BTreeSet<String> = http.delivered_ids().into_iter().collect();
    let lost_http: Vec<_> = want.difference(&posted).collect();
    assert!(
        lost_http.is_empty(),
        "{} lost by the HTTP sink",
        lost_http.len()
    );
    let streamed = nats.stream_ids("KILLS");
    let streamed_set: BTreeSet<String> = streamed.iter().cloned().collect();
    let lost_nats: Vec<_> = want.difference(&streamed_set).collect();
    assert!(
        lost_nats.is_empty(),
        "{} lost by the NATS sink",
        lost_nats.len()
    );
    assert_eq!(streamed.len(), streamed_set.len(), "the stream deduped");
}

#[test]
fn pause_holds_a_sink_back_across_a_restart_and_resume_drains_it() {
    let (http, env) = http_sink_env(&format!(
        "name: web, type: http, triggers: ['{KV_CREATE}'], {FAST}"
    ));
    let mut c = env.start_container(&["--sensor-ref", BURST]);
    let out = env.sensorctl(&["sink", "pause", "web"]);
    assert!(
        common::stdout(&out).contains("paused"),
        "{}",
        common::stderr(&out)
    );
    let id = key_event(&env, "held");
    std::thread::sleep(Duration::from_millis(500));
    assert!(http.received().is_empty(), "a paused sink delivers nothing");
    assert_eq!(sink(&env, "web")["state"], "paused");
    assert_eq!(status_of(&env, &id), "pending");
    // Remembered across a restart; without a container, sink list still
    // shows the stored state.
    c.terminate(Duration::from_secs(30));
    let offline = sink(&env, "web");
    assert_eq!(offline["state"], "paused", "{offline}");
    assert_eq!(
        offline["lag"].as_u64().map(|l| l >= 1),
        Some(true),
        "{offline}"
    );
    let c = env.start_container(&["--sensor-ref", BURST]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink(&env, "web")["state"], "paused");
    assert!(http.received().is_empty());
    env.sensorctl(&["sink", "resume", "web"]);
    assert!(
        wait_until(Duration::from_secs(30), || http.delivered_ids()
            == vec![id.clone()]),
        "{}",
        c.log()
    );
    wait_drained(&env, &c, Duration::from_secs(30));
    assert_eq!(status_of(&env, &id), "processed");
}

#[test]
fn timeouts_and_closed_connections_are_retried_until_delivered() {
    let (http, env) = http_sink_env(&format!(
        "name: web, type: http, request_timeout: 300ms, triggers: ['{KV_CREATE}'], {FAST}"
    ));
    let c = env.start_container(&["--sensor-ref", BURST]);
    http.set_mode(Mode::Hang);
    let id = key_event(&env, "slow");
    assert!(wait_until(Duration::from_secs(30), || {
        sink(&env, "web")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within"))
    }));
    assert_eq!(sink(&env, "web")["state"], "retrying");
    assert_eq!(status_of(&env, &id), "processing");
    http.set_mode(Mode::Close);
    assert!(wait_until(Duration::from_secs(30), || {
        sink(&env, "web")["last_error"]
            .as_str()
            .is_some_and(|e| !e.contains("no answer within"))
    }));
    http.set_mode(Mode::Ok);
    assert!(wait_until(Duration::from_secs(30), || http
        .delivered_ids()
        .contains(&id)));
    wait_drained(&env, &c, Duration::from_secs(30));
    assert_eq!(status_of(&env, &id), "processed");
    assert!(sink(&env, "web")["retries"].as_u64().unwrap() >= 2);
    assert_eq!(sink(&env, "web")["dead_letters"], 0);
}

#[test]
fn an_st2_sink_feeds_another_containers_st2_webhook() {
    // The receiving side: our own implementation of StackStorm's
    // /api/v1/webhooks/st2, with an API key.
    let receiver = Env::new(&["tests/packs"]);
    receiver.register();
    let r = receiver.start_container_with(
        &["--sensor-ref", BURST],
        &[("SENSORCONTAINER_API_LISTEN", "127.0.0.1:0")],
    );
    let base = r.http_base();
    let out = receiver.sensorctl(&["apikey", "create", "--name", "sink"]);
    let key = common::stdout(&out).trim().to_string();
    assert!(key.starts_with("sck_"), "{}", common::stderr(&out));

    let sender = Env::new(&["tests/packs"]);
    sender.write_config(&format!(
        "sinks:\n- {{name: st2, type: http, format: st2, url: '{base}', api_key: '{key}', triggers: ['{KV_CREATE}'], {FAST}}}\n"
    ));
    sender.register();
    let s = sender.start_container(&["--sensor-ref", BURST]);
    let id = key_event(&sender, "crossing");
    let sent = sender.sensorctl_json(&["trigger-instance", "get", &id, "--json"]);
    let arrived = || {
        receiver
            .instances_of(KV_CREATE)
            .into_iter()
            .find(|i| i["trace_tag"] == id.as_str())
    };
    assert!(
        wait_until(Duration::from_secs(30), || arrived().is_some()),
        "sender:\n{}\nreceiver:\n{}",
        s.log(),
        r.log()
    );
    let got = arrived().unwrap();
    assert_eq!(got["payload"], sent["payload"]);
    assert_ne!(
        got["id"], sent["id"],
        "a new instance on the receiving side"
    );
    wait_drained(&sender, &s, Duration::from_secs(30));
    assert_eq!(status_of(&sender, &id), "processed");
}
