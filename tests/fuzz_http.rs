//! Property-based fuzzing of the HTTP API's request bodies, in process:
//! the real router (control operations, StackStorm webhooks, Senlin and
//! Masakari routes) over a real store and log in a temp dir, fed random and
//! mutated bodies. Properties: never a panic, never a 5xx (bad input is the
//! client's error), and every answer says what it is (JSON when it claims
//! to be). `FUZZ_CASES` sets the number of cases (default 1,000; README's
//! dedicated run uses 1,000,000).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

/// Operations that are cheap and local (not `reload`, `sensor.check`,
/// `trigger-instance.tail`: those read packs, run Python or stream).
const OPS: &[&str] = &[
    "apikey.create",
    "apikey.delete",
    "apikey.list",
    "key.delete",
    "key.export",
    "key.get",
    "key.list",
    "key.load",
    "key.set",
    "log.stats",
    "pack.list",
    "sensor.get",
    "sensor.list",
    "sensor.restart",
    "sensor.enable",
    "sensor.disable",
    "trigger-instance.get",
    "trigger-instance.list",
    "trigger-instance.re-emit",
    "trigger-type.get",
    "trigger-type.list",
    "trigger.create",
    "trigger.delete",
    "trigger.get",
    "trigger.list",
    "trigger.update",
    "receiver.list",
    "notification.list",
    "no.such.op",
];

const KEYS: &[&str] = &[
    "name",
    "value",
    "ttl",
    "scope",
    "encrypt",
    "decrypt",
    "limit",
    "offset",
    "prefix",
    "ref",
    "type",
    "parameters",
    "payload",
    "trigger",
    "id",
    "keys",
    "trigger_type",
    "since",
    "order",
    "body",
    "messages",
    "cluster",
    "action",
    "params",
    "notification",
    "hostname",
    "generated_time",
    "receiver",
    "segment",
    "service_type",
    "recovery_method",
    "status",
    "pack",
    "sensor",
];

const PATHS: &[(&str, &str)] = &[
    ("POST", "/api/v1/webhooks/st2"),
    ("POST", "/api/v1/webhooks/sample"),
    ("POST", "/api/v1/webhooks/x/../y"),
    ("POST", "/v1/receivers"),
    ("GET", "/v1/receivers"),
    (
        "POST",
        "/v1/receivers/00000000-0000-0000-0000-000000000000/notify",
    ),
    ("POST", "/v1/webhooks/abc/trigger"),
    ("POST", "/v1/notifications"),
    ("GET", "/v1/notifications"),
    ("POST", "/v1/segments"),
    ("GET", "/v1/segments"),
    ("POST", "/v1/segments/1/hosts"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
];

fn value(rng: &mut fastrand::Rng, depth: u32) -> Value {
    match rng.u8(0..if depth > 3 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.bool()),
        2 => json!(rng.i64(..)),
        3 => json!(rng.f64() * 1e6 - 5e5),
        4 => json!(["a", "", "x.y", "sensor.0", "st2kv.system.k", "\u{0}", "é"][rng.usize(0..7)]),
        5 => json!("v".repeat(rng.usize(0..300))),
        6 | 7 => {
            let mut m = Map::new();
            for _ in 0..rng.usize(0..6) {
                m.insert(KEYS[rng.usize(0..KEYS.len())].into(), value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::Array(
            (0..rng.usize(0..4))
                .map(|_| value(rng, depth + 1))
                .collect(),
        ),
    }
}

/// A body: random JSON, sometimes mutated into something that is not.
fn body(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut b = serde_json::to_vec(&value(rng, 0)).unwrap_or_default();
    match rng.u8(0..10) {
        0 if !b.is_empty() => b.truncate(rng.usize(0..b.len())),
        1 if !b.is_empty() => {
            let i = rng.usize(0..b.len());
            b[i] = rng.u8(..);
        }
        2 => b.extend_from_slice(b"99999999999999999999999"),
        3 => b = (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect(),
        _ => {}
    }
    b
}

#[test]
fn random_bodies_never_panic_nor_answer_5xx() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("sensorcontainer.yaml");
    std::fs::write(&config, "log_level: error\n").unwrap();
    let packs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/packs");
    let opts = sc_cli::config::GlobalOpts {
        config: Some(config),
        data_dir: Some(tmp.path().join("data")),
        packs_path: Some(packs.into()),
        ..Default::default()
    };
    let settings = sc_cli::config::Settings::resolve(&opts).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Arc::new(sc_cli::sensorctl::open_store(&settings).unwrap());
        let log = sc_cli::instances::open(&settings, &store, &|_| {}).unwrap();
        let ops = Arc::new(
            sc_cli::ops::Ops::local(store.clone(), log.clone(), settings.clone()).unwrap(),
        );
        let dispatcher =
            Arc::new(container::dispatcher::Dispatcher::open(&store, log.clone()).unwrap());
        let openstack = api::openstack::OpenStack::new(
            store.openstack.clone(),
            dispatcher.clone(),
            settings.openstack.clone(),
        );
        let ctx = api::ApiContext::new(
            ops,
            dispatcher,
            log,
            store.api_keys.clone(),
            None,
            settings.api.clone(),
            vec![],
            openstack,
        );
        let router = api::router(ctx).layer(axum::Extension(api::server::Transport::Unix));
        let mut rng = fastrand::Rng::with_seed(
            std::env::var("FUZZ_SEED")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(5),
        );
        let n = cases();
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        for case in 0..n {
            let (method, uri) = if rng.bool() {
                (
                    "POST",
                    format!("/v1/control/{}", OPS[rng.usize(0..OPS.len())]),
                )
            } else {
                let (m, p) = PATHS[rng.usize(0..PATHS.len())];
                (m, p.to_string())
            };
            let b = body(&mut rng);
            let ctype = [
                "application/json",
                "application/x-www-form-urlencoded",
                "text/plain",
            ][rng.usize(0..3)];
            let req = Request::builder()
                .method(method)
                .uri(&uri)
                .header("content-type", ctype)
                .header(
                    "openstack-api-version",
                    ["clustering 1.10", "instance-ha 1.0", "x"][rng.usize(0..3)],
                )
                .body(Body::from(b.clone()))
                .unwrap();
            let resp = router.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            *statuses.entry(status.as_u16()).or_default() += 1;
            let is_json = resp
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
                .await
                .unwrap();
            let shown = || {
                format!(
                    "case {case}: {method} {uri} ({ctype}) body {:?} → {status} {}",
                    String::from_utf8_lossy(&b),
                    String::from_utf8_lossy(&bytes)
                )
            };
            assert!(status < StatusCode::INTERNAL_SERVER_ERROR, "{}", shown());
            if is_json {
                assert!(
                    serde_json::from_slice::<Value>(&bytes).is_ok(),
                    "{}",
                    shown()
                );
            }
            if (case + 1) % 100_000 == 0 {
                eprintln!("{} cases", case + 1);
            }
        }
        eprintln!("{n} HTTP cases, 0 failures; answers by status: {statuses:?}");
        // The cases reached the handlers: some were accepted, most refused.
        let ok: usize = statuses.range(200..300).map(|(_, c)| c).sum();
        let refused: usize = statuses.range(400..500).map(|(_, c)| c).sum();
        assert!(ok > n / 50 && refused > n / 4, "{statuses:?}");
    });
}
