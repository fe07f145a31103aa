//! `sensorctl st2 check`: is the way to StackStorm open? The broker (and
//! its exchange, declared passively: nothing is created), st2's API and
//! key, which of the registered sensors' trigger types st2 knows (its
//! rules engine drops instances of the others), and whether st2's own
//! sensor container still consumes its trigger watch queues (then every
//! sensor would run twice).

use std::collections::BTreeSet;

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use sinks::spec::St2Spec;
use sinks::st2::api::{self, St2Api};
use sinks::st2::publisher::redact;
use sinks::st2::St2Sink;

use crate::config::Settings;
use crate::output::print_json;
use crate::sensorctl::{Backend, JsonFlag};

#[derive(Debug, Subcommand)]
pub enum St2Cmd {
    /// Check the broker and exchange, st2's API and key, which registered
    /// trigger types st2 knows, and whether st2sensorcontainer still runs;
    /// exits 1 when something needs doing
    Check(JsonFlag),
}

/// Run a `sensorctl st2` command.
pub async fn run(settings: &Settings, backend: &Backend, cmd: St2Cmd) -> Result<()> {
    let St2Cmd::Check(f) = cmd;
    let report = check(settings, backend).await?;
    let problems = report["problems"].as_array().map_or(0, Vec::len);
    if f.json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    if problems > 0 {
        bail!("st2 check: {problems} problem(s)");
    }
    Ok(())
}

async fn check(settings: &Settings, backend: &Backend) -> Result<Value> {
    let st2 = &settings.st2;
    let mut problems: Vec<String> = Vec::new();
    // The broker.
    let mut brokers = Vec::new();
    if st2.urls.is_empty() {
        problems.push(
            "no broker: set st2.url, or st2.config_path to an st2.conf with [messaging] url".into(),
        );
    } else {
        let spec = St2Spec {
            urls: st2.urls.clone(),
            prefix: st2.prefix.clone(),
            connect_timeout: st2.connect_timeout,
            ack_timeout: st2.connect_timeout,
            ca_cert: st2.ca_cert.clone(),
        };
        let sink = St2Sink::new(spec).map_err(|e| anyhow::anyhow!(e))?;
        for (url, r) in sink.probe().await {
            if let Err(e) = &r {
                problems.push(format!("broker {url}: {e}"));
            }
            brokers.push(json!({"url": url, "ok": r.is_ok(), "error": r.err()}));
        }
    }
    // The trigger types our sensors dispatch.
    let sensors = backend.call("sensor.list", json!({})).await?;
    let ours: BTreeSet<String> = sensors
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["trigger_types"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    // st2's API.
    let api_report: Value;
    let mut types = Vec::new();
    match &st2.api_url {
        None => {
            api_report = json!({"ok": null, "error": "st2.api_url is not set: which trigger types st2 knows is not checked"});
        }
        Some(url) => {
            let client = St2Api::new(
                url,
                st2.api_key.as_deref(),
                st2.ca_cert.as_deref(),
                st2.connect_timeout * 2,
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            match client.list("triggertypes").await {
                Ok(list) => {
                    let known: BTreeSet<String> = list
                        .iter()
                        .filter_map(|t| t["ref"].as_str().map(str::to_string))
                        .collect();
                    for t in &ours {
                        let k = known.contains(t);
                        if !k {
                            problems.push(format!(
                                "trigger type {t} is not known to st2: its rules engine drops these instances (register the pack in st2: st2ctl reload --register-triggers)"
                            ));
                        }
                        types.push(json!({"ref": t, "known_to_st2": k}));
                    }
                    api_report = json!({"url": client.url("triggertypes"), "ok": true, "trigger_types": known.len()});
                }
                Err(e) => {
                    problems.push(format!("st2 API: {e}"));
                    api_report = json!({"url": client.url("triggertypes"), "ok": false, "error": e});
                }
            }
        }
    }
    // st2's own sensor container.
    let watchers = match st2.urls.first() {
        None => json!({"known": false, "error": "no broker"}),
        Some(first) => {
            let mgmt = management_url(st2, first);
            match api::management_queues(first, &mgmt, st2.connect_timeout * 2).await {
                Ok(queues) => {
                    let busy: Vec<Value> = queues
                        .iter()
                        .filter(|q| api::is_st2_sensor_watch_queue(&q.name) && q.consumers > 0)
                        .map(|q| json!({"queue": q.name, "consumers": q.consumers}))
                        .collect();
                    if !busy.is_empty() {
                        problems.push(format!(
                            "st2sensorcontainer appears to run ({} trigger watch queue(s) with consumers): stop it, or every sensor runs twice (systemctl stop st2sensorcontainer)",
                            busy.len()
                        ));
                    }
                    json!({"known": true, "running": !busy.is_empty(), "queues": busy, "management_url": mgmt})
                }
                Err(e) => {
                    json!({"known": false, "error": e, "management_url": redact(&mgmt)})
                }
            }
        }
    };
    Ok(json!({
        "exchange": format!("{}.trigger_instances_dispatch", st2.prefix),
        "brokers": brokers,
        "api": api_report,
        "trigger_types": types,
        "st2sensorcontainer": watchers,
        "problems": problems,
    }))
}

/// `st2.management_url`, else `http://<first broker's host>:15672`.
fn management_url(st2: &crate::st2_config::St2Settings, first: &str) -> String {
    if let Some(u) = &st2.management_url {
        return u.clone();
    }
    let host = sinks::st2::publisher::parse_uri(first, st2.connect_timeout)
        .map(|u| u.authority.host)
        .unwrap_or_else(|_| "127.0.0.1".into());
    format!("http://{host}:15672")
}

fn print_report(r: &Value) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    println!("exchange: {}", s(&r["exchange"]));
    for b in r["brokers"].as_array().into_iter().flatten() {
        if b["ok"] == true {
            println!("broker {}: ok (the exchange exists)", s(&b["url"]));
        } else {
            println!("broker {}: FAILED: {}", s(&b["url"]), s(&b["error"]));
        }
    }
    let a = &r["api"];
    if a["ok"] == true {
        println!("st2 API {}: ok ({} trigger types)", s(&a["url"]), a["trigger_types"]);
    } else if a["ok"] == false {
        println!("st2 API {}: FAILED: {}", s(&a["url"]), s(&a["error"]));
    } else {
        println!("st2 API: not checked ({})", s(&a["error"]));
    }
    for t in r["trigger_types"].as_array().into_iter().flatten() {
        let state = if t["known_to_st2"] == true {
            "known to st2"
        } else {
            "NOT known to st2 (its instances are dropped)"
        };
        println!("  {:<40} {state}", s(&t["ref"]));
    }
    let w = &r["st2sensorcontainer"];
    if w["known"] != true {
        println!(
            "st2sensorcontainer: cannot tell ({}; RabbitMQ's management API lists the queues, set st2.management_url)",
            s(&w["error"])
        );
    } else if w["running"] == true {
        println!("st2sensorcontainer: APPEARS TO RUN: consumers on");
        for q in w["queues"].as_array().into_iter().flatten() {
            println!("  {} ({} consumer(s))", s(&q["queue"]), q["consumers"]);
        }
    } else {
        println!("st2sensorcontainer: not running (no consumer on st2's sensor trigger watch queues)");
    }
    let problems = r["problems"].as_array().map_or(0, Vec::len);
    if problems == 0 {
        println!("ok: nothing to do");
    } else {
        println!("{problems} problem(s):");
        for p in r["problems"].as_array().into_iter().flatten() {
            println!("  - {}", s(p));
        }
    }
}
