//! Unit tests: the SDK against a tiny in-test container on a real
//! socketpair.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{codes, Frame, FrameReader};
use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::client::Client;
use crate::*;

const T: Duration = Duration::from_secs(5);

/// The container's end of the pipe.
struct Peer {
    rd: FrameReader<BufReader<OwnedReadHalf>>,
    wr: OwnedWriteHalf,
}

impl Peer {
    fn pair() -> (UnixStream, Peer) {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let (rd, wr) = b.into_split();
        (
            a,
            Peer {
                rd: FrameReader::new(BufReader::new(rd), 1 << 24),
                wr,
            },
        )
    }

    /// The next frame, parsed; panics after 5 s.
    async fn next(&mut self) -> Value {
        self.try_next(T).await.expect("a frame from the sensor")
    }

    async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        match tokio::time::timeout(wait, self.rd.next_frame()).await {
            Ok(Ok(Some(Frame::Line(l)))) => Some(serde_json::from_slice(&l).expect("JSON")),
            Ok(other) => panic!("unexpected read result {other:?}"),
            Err(_) => None,
        }
    }

    /// The next frame, which must be a request or notification of `method`.
    async fn expect(&mut self, method: &str) -> Value {
        let f = self.next().await;
        assert_eq!(f["method"], method, "{f}");
        assert_eq!(f["jsonrpc"], "2.0");
        f
    }

    async fn send(&mut self, v: Value) {
        let mut line = serde_json::to_vec(&v).unwrap();
        line.push(b'\n');
        self.wr.write_all(&line).await.unwrap();
    }

    async fn reply(&mut self, req: &Value, result: Value) {
        self.send(json!({"jsonrpc": "2.0", "id": req["id"], "result": result}))
            .await;
    }

    async fn reply_err(&mut self, req: &Value, code: i64, message: &str) {
        self.send(
            json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": code, "message": message}}),
        )
        .await;
    }

    async fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// Answer `init` with a context for `pack.Class`.
    async fn init(&mut self, extra: Value) {
        let req = self.expect("init").await;
        let mut info = json!({
            "ref": "pack.Class", "pack": "pack", "class_name": "Class",
            "entry_point": "/x/sensor", "poll_interval": null,
            "config": {"greeting": "hi"}, "trigger_types": ["pack.event"],
            "triggers": [], "max_frame_bytes": 1048576,
        });
        for (k, v) in extra.as_object().unwrap() {
            info[k] = v.clone();
        }
        self.reply(&req, info).await;
    }
}

fn trigger(name: &str) -> Value {
    json!({"id": format!("id-{name}"), "uid": format!("trigger:pack:{name}:x"), "ref": format!("pack.{name}"),
           "name": name, "pack": "pack", "type": "pack.event", "parameters": {}})
}

fn service(stream: UnixStream, window: usize) -> SensorService {
    let (client, _events) = Client::start(stream, window);
    SensorService::new(
        client,
        SensorInfo {
            sensor_ref: "pack.Class".into(),
            pack: "pack".into(),
            class_name: "Class".into(),
            ..SensorInfo::default()
        },
    )
}

fn quiet() -> Options {
    Options {
        log_level: None,
        ..Options::default()
    }
}

#[tokio::test]
async fn dispatch_is_pipelined_within_the_window_and_flush_waits_for_every_ack() {
    let (stream, mut peer) = Peer::pair();
    let svc = service(stream, 4);
    let sender = svc.clone();
    let task = tokio::spawn(async move {
        let mut handles = vec![];
        for i in 0..10 {
            handles.push(
                sender
                    .dispatch("pack.event", json!({"i": i}))
                    .await
                    .unwrap(),
            );
        }
        sender.flush().await.unwrap();
        handles
    });
    // Four frames arrive without any ack; the fifth waits for one.
    let mut reqs = vec![];
    for _ in 0..4 {
        reqs.push(peer.expect("dispatch").await);
    }
    assert!(peer.try_next(Duration::from_millis(200)).await.is_none());
    assert_eq!(svc.stats().in_flight, 4);
    assert_eq!(
        reqs[0]["params"],
        json!({"trigger": "pack.event", "payload": {"i": 0}})
    );
    let mut n = 0;
    while n < 10 {
        let req = if reqs.is_empty() {
            peer.expect("dispatch").await
        } else {
            reqs.remove(0)
        };
        assert_eq!(req["params"]["payload"]["i"], n);
        peer.reply(&req, json!({"id": format!("inst-{n}")})).await;
        n += 1;
    }
    let handles = tokio::time::timeout(T, task).await.unwrap().unwrap();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.ack().await.unwrap(), format!("inst-{i}"));
    }
    assert_eq!(
        svc.stats(),
        DispatchStats {
            dispatched: 10,
            acked: 10,
            failed: 0,
            lost: 0,
            in_flight: 0
        }
    );
}

#[tokio::test]
async fn flush_returns_only_after_outstanding_acks() {
    let (stream, mut peer) = Peer::pair();
    let svc = service(stream, 1024);
    for i in 0..3 {
        let _ = svc.dispatch("pack.event", json!({"i": i})).await.unwrap();
    }
    let flusher = svc.clone();
    let flush = tokio::spawn(async move { flusher.flush().await });
    let mut reqs = vec![];
    for _ in 0..3 {
        reqs.push(peer.expect("dispatch").await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !flush.is_finished(),
        "flush returned with 3 acks outstanding"
    );
    for r in &reqs[..2] {
        peer.reply(r, json!({"id": "x"})).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !flush.is_finished(),
        "flush returned with 1 ack outstanding"
    );
    peer.reply(&reqs[2], json!({"id": "x"})).await;
    tokio::time::timeout(T, flush)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn rejected_dispatches_report_the_error_code() {
    let (stream, mut peer) = Peer::pair();
    let svc = service(stream, 16);
    let h = svc.dispatch("pack.nope", json!({})).await.unwrap();
    let dropped = svc.dispatch("pack.event", json!({"bad": 1})).await.unwrap();
    drop(dropped);
    let r1 = peer.expect("dispatch").await;
    let r2 = peer.expect("dispatch").await;
    peer.reply_err(&r1, codes::UNKNOWN_TRIGGER, "unknown trigger 'pack.nope'")
        .await;
    peer.reply_err(&r2, codes::VALIDATION_FAILED, "bad payload")
        .await;
    let err = h.ack().await.unwrap_err();
    assert_eq!(err.code(), Some(codes::UNKNOWN_TRIGGER));
    assert!(err.to_string().contains("unknown trigger"), "{err}");
    svc.flush().await.unwrap();
    let s = svc.stats();
    assert_eq!((s.acked, s.failed, s.in_flight), (0, 2, 0));
}

#[tokio::test]
async fn trace_tag_and_context_and_trigger_objects_are_sent_as_documented() {
    let (stream, mut peer) = Peer::pair();
    let svc = service(stream, 16);
    let _ = svc
        .dispatch_with_trace_tag("pack.event", json!({"a": 1}), "tag-1")
        .await
        .unwrap();
    let _ = svc
        .dispatch_with_trace_tag("pack.event", Value::Null, "")
        .await
        .unwrap();
    let ctx = json!({"trace_tag": "t", "id": "abc"});
    let _ = svc
        .dispatch_with_context("pack.event", json!({}), &ctx)
        .await
        .unwrap();
    let t: Trigger = serde_json::from_value(trigger("event")).unwrap();
    let _ = svc.dispatch(&t, json!({})).await.unwrap();
    assert_eq!(
        peer.expect("dispatch").await["params"],
        json!({"trigger": "pack.event", "payload": {"a": 1}, "trace_tag": "tag-1"})
    );
    assert_eq!(
        peer.expect("dispatch").await["params"],
        json!({"trigger": "pack.event", "payload": null})
    );
    assert_eq!(
        peer.expect("dispatch").await["params"]["trace_context"],
        ctx
    );
    assert_eq!(
        peer.expect("dispatch").await["params"]["trigger"],
        trigger("event")
    );
}

#[tokio::test]
async fn datastore_calls_use_stackstorm_names_and_shapes() {
    let (stream, mut peer) = Peer::pair();
    let svc = service(stream, 16);
    let s = svc.clone();
    let calls = tokio::spawn(async move {
        let got = s.get_value("count", true, false).await.unwrap();
        let missing = s.get_value("global.key", false, true).await.unwrap();
        let set = s
            .set_value("count", 42, Some(30), true, false)
            .await
            .unwrap();
        let set_no_ttl = s.set_value("g", "v", Some(0), false, true).await.unwrap();
        let deleted = s.delete_value("count", true).await.unwrap();
        let listed = s.list_values(true, Some("c")).await.unwrap();
        let all = s.list_values_page(false, None, Some(5), 2).await.unwrap();
        (got, missing, set, set_no_ttl, deleted, listed, all)
    });
    let key = |name: &str, value: &str| {
        json!({"name": name, "value": value, "secret": false, "encrypted": false,
               "scope": "st2kv.system", "expire_timestamp": null})
    };
    let r = peer.expect("kv.get").await;
    assert_eq!(
        r["params"],
        json!({"name": "pack.Class:count", "decrypt": false, "scope": "system"})
    );
    peer.reply(&r, key("pack.Class:count", "7")).await;
    let r = peer.expect("kv.get").await;
    assert_eq!(r["params"]["name"], "global.key");
    assert_eq!(r["params"]["decrypt"], true);
    peer.reply(&r, Value::Null).await;
    let r = peer.expect("kv.set").await;
    assert_eq!(
        r["params"],
        json!({"name": "pack.Class:count", "value": "42", "ttl": 30, "encrypt": false, "scope": "system"})
    );
    peer.reply(&r, json!(true)).await;
    let r = peer.expect("kv.set").await;
    assert_eq!(
        r["params"],
        json!({"name": "g", "value": "v", "encrypt": true, "scope": "system"})
    );
    peer.reply(&r, json!(true)).await;
    let r = peer.expect("kv.delete").await;
    assert_eq!(
        r["params"],
        json!({"name": "pack.Class:count", "scope": "system"})
    );
    peer.reply(&r, json!(false)).await;
    let r = peer.expect("kv.list").await;
    assert_eq!(
        r["params"],
        json!({"prefix": "pack.Class:c", "limit": null, "offset": 0, "scope": "system"})
    );
    peer.reply(&r, json!([key("pack.Class:c1", "a")])).await;
    let r = peer.expect("kv.list").await;
    assert_eq!(
        r["params"],
        json!({"prefix": null, "limit": 5, "offset": 2, "scope": "system"})
    );
    peer.reply(&r, json!([])).await;
    let (got, missing, set, set_no_ttl, deleted, listed, all) =
        tokio::time::timeout(T, calls).await.unwrap().unwrap();
    assert_eq!(got.as_deref(), Some("7"));
    assert_eq!(missing, None);
    assert!(set && set_no_ttl);
    assert!(!deleted);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "pack.Class:c1");
    assert!(all.is_empty());
}

#[tokio::test]
async fn datastore_errors_carry_the_code() {
    let (stream, mut peer) = Peer::pair();
    let svc = service(stream, 16);
    let s = svc.clone();
    let call = tokio::spawn(async move { s.set_value("x", "v", None, true, true).await });
    let r = peer.expect("kv.set").await;
    peer.reply_err(&r, codes::DATASTORE_ERROR, "no encryption key")
        .await;
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some(codes::DATASTORE_ERROR));
    assert!(
        err.to_string()
            .starts_with("kv.set failed: no encryption key"),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_frames_are_refused_before_sending() {
    let (stream, mut peer) = Peer::pair();
    let (client, _events) = Client::start(stream, 16);
    client.set_max_frame_bytes(200);
    let svc = SensorService::new(client, SensorInfo::default());
    let big = "x".repeat(300);
    let err = svc
        .dispatch("pack.event", json!({ "big": big }))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::FrameTooLarge { limit: 200, .. }),
        "{err}"
    );
    let err = svc
        .set_value("k", &big, None, true, false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FrameTooLarge { .. }), "{err}");
    // Nothing was sent, nothing is in flight, and the pipe still works.
    assert_eq!(svc.stats().dispatched, 0);
    let _ = svc.dispatch("pack.event", json!({})).await.unwrap();
    assert_eq!(
        peer.expect("dispatch").await["params"]["payload"],
        json!({})
    );
}

#[tokio::test]
async fn a_closed_pipe_fails_pending_calls_and_dispatches() {
    let (stream, mut peer) = Peer::pair();
    let svc = service(stream, 16);
    let h = svc.dispatch("pack.event", json!({})).await.unwrap();
    let s = svc.clone();
    let call = tokio::spawn(async move { s.get_value("k", true, false).await });
    peer.expect("dispatch").await;
    peer.expect("kv.get").await;
    drop(peer);
    assert!(call.await.unwrap().unwrap_err().is_closed());
    assert!(h.ack().await.unwrap_err().is_closed());
    assert!(svc.flush().await.unwrap_err().is_closed());
    assert!(svc.is_closed());
    assert!(svc
        .dispatch("pack.event", json!({}))
        .await
        .unwrap_err()
        .is_closed());
    assert_eq!(svc.stats().lost, 1);
}

/// Records what the lifecycle called, in order.
#[derive(Default, Clone)]
struct Recorder {
    calls: Arc<Mutex<Vec<String>>>,
    svc: Arc<Mutex<Option<SensorService>>>,
}

impl Recorder {
    fn push(&self, s: impl Into<String>) {
        self.calls.lock().unwrap().push(s.into());
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// A sensor whose behaviour each test picks.
struct Scripted {
    rec: Recorder,
    fail_setup: bool,
    run: &'static str,
}

impl Sensor for Scripted {
    async fn setup(&self, svc: &SensorService) -> Result<(), BoxError> {
        *self.rec.svc.lock().unwrap() = Some(svc.clone());
        self.rec.push(format!("setup {}", svc.config()["greeting"]));
        if self.fail_setup {
            return Err("setup exploded".into());
        }
        Ok(())
    }

    async fn run(&self, svc: &SensorService) -> Result<(), BoxError> {
        self.rec.push("run");
        match self.run {
            "dispatch_and_wait" => {
                for i in 0..3 {
                    let _ = svc.dispatch("pack.event", json!({ "i": i })).await?;
                }
                std::future::pending::<()>().await;
            }
            "dispatch_and_return" => {
                for i in 0..5 {
                    let _ = svc.dispatch("pack.event", json!({ "i": i })).await?;
                }
            }
            "fail" => return Err("run exploded".into()),
            "panic" => panic!("run panicked on purpose"),
            _ => std::future::pending::<()>().await,
        }
        Ok(())
    }

    async fn cleanup(&self, svc: &SensorService) -> Result<(), BoxError> {
        self.rec.push("cleanup");
        svc.log("info", "cleaned up");
        Ok(())
    }

    async fn add_trigger(&self, svc: &SensorService, t: Trigger) -> Result<(), BoxError> {
        self.rec.push(format!("add {}", t.trigger_ref));
        svc.log("info", &format!("added {}", t.trigger_ref));
        Ok(())
    }

    async fn update_trigger(&self, _svc: &SensorService, t: Trigger) -> Result<(), BoxError> {
        self.rec.push(format!("update {}", t.trigger_ref));
        Ok(())
    }

    async fn remove_trigger(&self, svc: &SensorService, t: Trigger) -> Result<(), BoxError> {
        self.rec.push(format!("remove {}", t.trigger_ref));
        svc.log("info", &format!("removed {}", t.trigger_ref));
        Ok(())
    }
}

fn scripted(run: &'static str) -> (Scripted, Recorder) {
    let rec = Recorder::default();
    (
        Scripted {
            rec: rec.clone(),
            fail_setup: false,
            run,
        },
        rec,
    )
}

#[tokio::test]
async fn lifecycle_init_triggers_setup_ready_run_notifications_shutdown() {
    let (stream, mut peer) = Peer::pair();
    let (sensor, rec) = scripted("dispatch_and_wait");
    let sdk = tokio::spawn(serve_on(sensor, quiet(), stream));
    peer.init(json!({"triggers": [trigger("a")]})).await;
    // add_trigger for the existing trigger comes before setup.
    assert_eq!(
        peer.expect("log").await["params"]["message"],
        "added pack.a"
    );
    peer.expect("ready").await;
    let mut reqs = vec![];
    for _ in 0..3 {
        reqs.push(peer.expect("dispatch").await);
    }
    peer.notify("trigger.add", json!({"trigger": trigger("b")}))
        .await;
    peer.notify("trigger.update", json!({"trigger": trigger("b")}))
        .await;
    peer.notify("trigger.remove", json!({"trigger": trigger("b")}))
        .await;
    assert_eq!(
        peer.expect("log").await["params"]["message"],
        "added pack.b"
    );
    assert_eq!(
        peer.expect("log").await["params"]["message"],
        "removed pack.b"
    );
    // Shutdown with 3 acks outstanding: the sdk waits for them.
    peer.notify("shutdown", json!({"reason": "test"})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!sdk.is_finished(), "exited before its acks arrived");
    for r in &reqs {
        peer.reply(r, json!({"id": "i"})).await;
    }
    let outcome = tokio::time::timeout(T, sdk).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Stopped);
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(
        rec.calls(),
        [
            "add pack.a",
            "setup \"hi\"",
            "run",
            "add pack.b",
            "update pack.b",
            "remove pack.b",
            "cleanup"
        ]
    );
    let svc = rec.svc.lock().unwrap().clone().unwrap();
    assert_eq!(svc.sensor_ref(), "pack.Class");
    assert_eq!(svc.stats().acked, 3);
    assert!(svc.is_stopping());
}

#[tokio::test]
async fn run_returning_waits_for_acks_then_finishes() {
    let (stream, mut peer) = Peer::pair();
    let (sensor, rec) = scripted("dispatch_and_return");
    let sdk = tokio::spawn(serve_on(sensor, quiet(), stream));
    peer.init(json!({})).await;
    peer.expect("ready").await;
    let mut reqs = vec![];
    for _ in 0..5 {
        reqs.push(peer.expect("dispatch").await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!sdk.is_finished());
    for r in &reqs {
        peer.reply(r, json!({"id": "i"})).await;
    }
    assert_eq!(
        tokio::time::timeout(T, sdk).await.unwrap().unwrap(),
        Outcome::Finished
    );
    assert_eq!(rec.calls().last().unwrap(), "cleanup");
    let svc = rec.svc.lock().unwrap().clone().unwrap();
    assert_eq!(svc.stats().acked, 5);
}

#[tokio::test]
async fn setup_failure_cleans_up_and_fails() {
    let (stream, mut peer) = Peer::pair();
    let (mut sensor, rec) = scripted("idle");
    sensor.fail_setup = true;
    let sdk = tokio::spawn(serve_on(sensor, quiet(), stream));
    peer.init(json!({})).await;
    let log = peer.expect("log").await;
    assert_eq!(log["params"]["level"], "error");
    assert!(
        log["params"]["message"]
            .as_str()
            .unwrap()
            .contains("setup() failed: setup exploded"),
        "{log}"
    );
    let outcome = tokio::time::timeout(T, sdk).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(rec.calls(), ["setup \"hi\"", "cleanup"]);
    // What cleanup logged reaches the container too.
    let log = peer.expect("log").await;
    assert_eq!(log["params"]["message"], "cleaned up");
}

#[tokio::test]
async fn run_errors_and_panics_fail() {
    for (mode, needle) in [
        ("fail", "run exploded"),
        ("panic", "run panicked on purpose"),
    ] {
        let (stream, mut peer) = Peer::pair();
        let (sensor, rec) = scripted(mode);
        let sdk = tokio::spawn(serve_on(sensor, quiet(), stream));
        peer.init(json!({})).await;
        peer.expect("ready").await;
        let log = peer.expect("log").await;
        assert!(
            log["params"]["message"].as_str().unwrap().contains(needle),
            "{log}"
        );
        assert_eq!(
            tokio::time::timeout(T, sdk).await.unwrap().unwrap(),
            Outcome::Failed
        );
        assert_eq!(rec.calls(), ["setup \"hi\"", "run", "cleanup"]);
    }
}

#[tokio::test]
async fn eof_ends_the_sensor_after_cleanup() {
    let (stream, mut peer) = Peer::pair();
    let (sensor, rec) = scripted("idle");
    let sdk = tokio::spawn(serve_on(sensor, quiet(), stream));
    peer.init(json!({})).await;
    peer.expect("ready").await;
    drop(peer);
    assert_eq!(
        tokio::time::timeout(T, sdk).await.unwrap().unwrap(),
        Outcome::ConnectionClosed
    );
    assert_eq!(rec.calls(), ["setup \"hi\"", "run", "cleanup"]);
}

#[tokio::test]
async fn shutdown_before_init_is_answered_stops_cleanly() {
    let (stream, mut peer) = Peer::pair();
    let (sensor, rec) = scripted("idle");
    let sdk = tokio::spawn(serve_on(sensor, quiet(), stream));
    peer.expect("init").await;
    peer.notify("shutdown", json!({})).await;
    assert_eq!(
        tokio::time::timeout(T, sdk).await.unwrap().unwrap(),
        Outcome::Stopped
    );
    assert!(rec.calls().is_empty());
}

#[tokio::test]
async fn init_error_fails() {
    let (stream, mut peer) = Peer::pair();
    let (sensor, _rec) = scripted("idle");
    let sdk = tokio::spawn(serve_on(sensor, quiet(), stream));
    let r = peer.expect("init").await;
    peer.reply_err(&r, codes::INTERNAL_ERROR, "boom").await;
    assert_eq!(
        tokio::time::timeout(T, sdk).await.unwrap().unwrap(),
        Outcome::Failed
    );
}

struct Poller {
    polls: Arc<AtomicUsize>,
}

impl PollingSensor for Poller {
    async fn setup(&self, svc: &SensorService) -> Result<(), BoxError> {
        // The metadata set none: StackStorm's default applies.
        assert_eq!(svc.get_poll_interval(), Some(DEFAULT_POLL_INTERVAL));
        svc.set_poll_interval(Duration::from_millis(20));
        Ok(())
    }

    async fn poll(&self, svc: &SensorService) -> Result<(), BoxError> {
        let n = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 3 {
            // Takes effect at the next sleep: no fourth poll for a while.
            svc.set_poll_interval(Duration::from_secs(30));
            svc.log("info", "third poll");
        }
        Ok(())
    }
}

#[tokio::test]
async fn polling_sensor_polls_at_the_interval_and_set_takes_effect_at_the_next_sleep() {
    let (stream, mut peer) = Peer::pair();
    let polls = Arc::new(AtomicUsize::new(0));
    let sdk = tokio::spawn(serve_on(
        Polling(Poller {
            polls: polls.clone(),
        }),
        quiet(),
        stream,
    ));
    peer.init(json!({})).await;
    peer.expect("ready").await;
    assert_eq!(peer.expect("log").await["params"]["message"], "third poll");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(polls.load(Ordering::SeqCst), 3);
    peer.notify("shutdown", json!({"reason": "done"})).await;
    assert_eq!(
        tokio::time::timeout(T, sdk).await.unwrap().unwrap(),
        Outcome::Stopped
    );
}

#[tokio::test]
async fn the_metadata_poll_interval_is_the_initial_value() {
    let (stream, mut peer) = Peer::pair();
    let (sensor, rec) = scripted("idle");
    let sdk = tokio::spawn(serve_on(sensor, quiet(), stream));
    peer.init(json!({"poll_interval": 30})).await;
    peer.expect("ready").await;
    let svc = rec.svc.lock().unwrap().clone().unwrap();
    assert_eq!(svc.get_poll_interval(), Some(Duration::from_secs(30)));
    peer.notify("shutdown", json!({})).await;
    tokio::time::timeout(T, sdk).await.unwrap().unwrap();
}

#[test]
fn tracing_events_become_log_notifications() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (stream, mut peer) = Peer::pair();
        let (client, _events) = Client::start(stream, 16);
        crate::logging::attach(Some(client.clone()));
        let bridge = crate::logging::tests_bridge(tracing::Level::INFO);
        tracing::subscriber::with_default(bridge, || {
            tracing::info!(count = 3, "hello {}", "world");
            tracing::debug!("not forwarded");
            tracing::warn!(target: "my_sensor", "careful");
        });
        crate::logging::attach(None);
        let a = peer.expect("log").await;
        assert_eq!(
            a["params"],
            json!({"level": "info", "message": "hello world count=3", "logger": "sdk::tests"})
        );
        let b = peer.expect("log").await;
        assert_eq!(
            b["params"],
            json!({"level": "warning", "message": "careful", "logger": "my_sensor"})
        );
    });
}

#[test]
fn options_come_from_the_wrapper_environment_variables() {
    assert_eq!(parse_level("WARNING"), Some(tracing::Level::WARN));
    assert_eq!(parse_level("critical"), Some(tracing::Level::ERROR));
    assert_eq!(parse_level("loud"), None);
    let d = Options::default();
    assert_eq!(d.window, 1024);
    assert_eq!(d.stop_timeout, Duration::from_secs(4));
}

#[test]
fn triggers_round_trip_the_wire_shape() {
    let t: Trigger = serde_json::from_value(trigger("x")).unwrap();
    assert_eq!(t.trigger_ref, "pack.x");
    assert_eq!(t.type_ref, "pack.event");
    assert_eq!(serde_json::to_value(&t).unwrap(), trigger("x"));
}

/// Not a test: the SDK's own dispatch ceiling against a peer that acks at
/// once and stores nothing.
/// `cargo test -p sc-sdk --release -- --ignored --nocapture sdk_side_throughput`
#[test]
#[ignore]
fn sdk_side_throughput() {
    use tokio::io::AsyncReadExt;
    const N: u64 = 500_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let peer = tokio::spawn(async move {
            let (mut rd, mut wr) = b.into_split();
            let mut buf = vec![0u8; 256 * 1024];
            let mut pending: Vec<u8> = Vec::new();
            let mut out: Vec<u8> = Vec::with_capacity(256 * 1024);
            let mut acked = 0u64;
            while acked < N {
                let n = rd.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&buf[..n]);
                let mut start = 0;
                while let Some(pos) = pending[start..].iter().position(|b| *b == b'\n') {
                    let line = &pending[start..start + pos];
                    // "id":<digits>
                    let at = line.windows(5).position(|w| w == b"\"id\":").unwrap() + 5;
                    let end = at + line[at..].iter().position(|b| !b.is_ascii_digit()).unwrap();
                    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
                    out.extend_from_slice(&line[at..end]);
                    out.extend_from_slice(
                        b",\"result\":{\"id\":\"0190a0b0-0000-7000-8000-000000000000\"}}\n",
                    );
                    acked += 1;
                    start += pos + 1;
                }
                pending.drain(..start);
                wr.write_all(&out).await.unwrap();
                out.clear();
            }
        });
        let svc = service(a, 1024);
        #[derive(serde::Serialize)]
        struct Event {
            seq: u64,
            greeting: &'static str,
        }
        let start = std::time::Instant::now();
        for seq in 0..N {
            let _ = svc
                .dispatch(
                    "bench.flood",
                    Event {
                        seq,
                        greeting: "hello from the benchmark",
                    },
                )
                .await
                .unwrap();
        }
        svc.flush().await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(svc.stats().acked, N);
        println!(
            "sdk side: {N} acked dispatches in {secs:.3}s = {:.0}/s",
            N as f64 / secs
        );
        peer.await.unwrap();
    });
}
