//! StackStorm's bus (issue 16, first part): a private RabbitMQ node and a
//! kombu consumer standing in for st2's rules engine (`accept=["pickle"]`,
//! a durable queue on `st2.trigger_instances_dispatch`). Checks that the
//! bodies `sinks::st2::message` makes are what that consumer decodes, as
//! persistent messages that survive a broker restart.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::rabbit::RabbitServer;
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
