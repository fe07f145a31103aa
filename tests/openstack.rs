//! The Senlin and Masakari front doors against the real `sensorcontainer`:
//! the real openstacksdk client end to end, then raw HTTP for every status
//! code of `../shared/INGRESS.md` A and B, paging, the duplicate window,
//! the lifecycle, signatures, expiry, `sensorctl`, and kill -9 after a 202.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::http::{apikey, request, start, Answer};
use common::{wait_until, Env};
use serde_json::{json, Value};

const RECEIVER_TRIGGER: &str = "core.receiver.trigger";
const NOTIFICATION: &str = "core.notification";
const NOTIFICATION_STATUS: &str = "core.notification.status";

/// A registered workspace, a container with TCP, an API key.
struct Front {
    env: Env,
    c: common::Container,
    base: String,
    key: String,
}

impl Front {
    fn start() -> Front {
        Front::with_config("")
    }

    fn with_config(yaml: &str) -> Front {
        let env = Env::new(&["tests/packs"]);
        if !yaml.is_empty() {
            env.write_config(yaml);
        }
        env.register();
        let key = apikey(&env);
        let (c, base) = start(&env, &[]);
        Front { env, c, base, key }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| b.to_string());
        request(
            method,
            &format!("{}{path}", self.base),
            &[
                ("X-Auth-Token", &self.key),
                ("Content-Type", "application/json"),
            ],
            body.as_deref(),
        )
    }

    fn raw(&self, method: &str, path: &str, body: &str) -> Answer {
        request(
            method,
            &format!("{}{path}", self.base),
            &[("X-Auth-Token", &self.key)],
            Some(body),
        )
    }

    /// POST without any credentials (a webhook trigger's caller).
    fn public_post(&self, url: &str, body: &str) -> Answer {
        request(
            "POST",
            url,
            &[("Content-Type", "application/json")],
            Some(body),
        )
    }

    fn receiver(&self, name: &str, params: Value) -> Value {
        let a = self.call(
            "POST",
            "/v1/receivers",
            Some(json!({"receiver": {"name": name, "cluster_id": "c1", "action": "CLUSTER_SCALE_OUT", "params": params}})),
        );
        assert_eq!(a.status, 201, "{}", a.body);
        a.json()["receiver"].clone()
    }

    /// A segment (enabled or not) with one host; the host's uuid.
    fn host(&self, segment: &str, host: &str, enabled: bool) -> String {
        let s = self.call(
            "POST",
            "/v1/segments",
            Some(json!({"segment": {"name": segment, "recovery_method": "auto", "service_type": "COMPUTE", "enabled": enabled}})),
        );
        assert_eq!(s.status, 201, "{}", s.body);
        let seg = s.json()["segment"]["uuid"].as_str().unwrap().to_string();
        let h = self.call(
            "POST",
            &format!("/v1/segments/{seg}/hosts"),
            Some(json!({"host": {"name": host, "type": "COMPUTE", "control_attributes": "ssh"}})),
        );
        assert_eq!(h.status, 201, "{}", h.body);
        h.json()["host"]["uuid"].as_str().unwrap().to_string()
    }

    fn notify(&self, host: &str, time: &str, payload: Value) -> Answer {
        self.call(
            "POST",
            "/v1/notifications",
            Some(json!({"notification": {"type": "PROCESS", "hostname": host, "generated_time": time, "payload": payload}})),
        )
    }
}

fn stopped() -> Value {
    json!({"process_name": "nova-compute", "event": "STOPPED"})
}

/// The error message of a Senlin answer, checking its shape.
fn senlin_error(a: &Answer, status: u16) -> String {
    assert_eq!(a.status, status, "{}", a.body);
    let v = a.json();
    assert_eq!(v["code"], status, "{v}");
    assert_eq!(v["error"]["code"], status, "{v}");
    assert!(
        v["title"].is_string() && v["explanation"].is_string(),
        "{v}"
    );
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The error message of a Masakari answer (`{"<fault>": {code, message}}`).
fn masakari_error(a: &Answer, status: u16, fault: &str) -> String {
    assert_eq!(a.status, status, "{}", a.body);
    let v = a.json();
    assert_eq!(v[fault]["code"], status, "{v}");
    v[fault]["message"].as_str().unwrap_or_default().to_string()
}

/// Instances of `trigger`, oldest first (`trigger-instance list` shows
/// the newest first).
fn instances_of(env: &Env, trigger: &str) -> Vec<Value> {
    let mut v = env.instances_of(trigger);
    v.sort_by_key(|i| i["seq"].as_u64());
    v
}

#[test]
fn the_real_openstacksdk_drives_receivers_and_notifications() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Some(python) = common::pip_python(
        "openstacksdk-venv",
        &["openstacksdk==4.22.0"],
        "import openstack",
    ) else {
        assert!(!ci, "could not install openstacksdk from PyPI in CI");
        eprintln!("SKIP: openstacksdk could not be installed (no PyPI?)");
        return;
    };
    let f = Front::start();
    let out = std::process::Command::new(&python)
        .arg(common::repo().join("tests/openstack/sdk_client.py"))
        .env("BASE", &f.base)
        .env("KEY", &f.key)
        .output()
        .expect("run the openstacksdk client");
    assert!(
        out.status.success(),
        "openstacksdk client failed:\n{}\ncontainer log:\n{}",
        common::stderr(&out),
        f.c.log()
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("client output not JSON ({e}): {}", common::stdout(&out)));
    assert_eq!(v["sorted_asc"], json!(["alpha", "mid", "zeta"]));
    assert_eq!(v["sorted_desc"], json!(["zeta", "mid", "alpha"]));
    let id = v["created"]["id"].as_str().unwrap();
    assert_eq!(
        v["created"]["channel"]["alarm_url"],
        format!("{}/v1/webhooks/{id}/trigger?V=2&count=1&zone=a", f.base)
    );
    assert_eq!(
        v["got"],
        json!({"id": id, "cluster_id": "c1", "action": "CLUSTER_SCALE_OUT", "type": "webhook"})
    );
    assert_eq!(v["found_by_name"], id);
    assert_eq!(v["found_by_short_id"], id);
    assert_eq!(v["find_missing"], Value::Null);
    assert_eq!(v["get_missing"], "NotFoundException");
    assert_eq!(
        v["updated"],
        json!({"name": "web-2", "params": {"count": "2"}})
    );
    assert_eq!(v["after_update"], "web-2");
    assert_eq!(v["after_delete"], Value::Null);
    let uuid = v["notification"]["uuid"].as_str().unwrap();
    assert_eq!(v["notification"]["status"], "new");
    assert_eq!(v["notification"]["source_host_uuid"], v["host"]["uuid"]);
    assert_eq!(v["duplicate"], "ConflictException");
    assert_eq!(v["listed_new"], json!([uuid]));
    assert_eq!(v["listed_filtered"], json!([uuid]));
    assert_eq!(v["listed_since_later"], json!([]));
    assert_eq!(v["got_notification"]["payload"], stopped());

    // POSTing the receiver's alarm_url (no key: the URL is the credential)
    // stores an instance with the merged params.
    let url = v["keep_alarm_url"].as_str().unwrap();
    let a = f.public_post(url, r#"{"count": "3", "extra": true}"#);
    assert_eq!(a.status, 202, "{}", a.body);
    let action = a.json()["action"].as_str().unwrap().to_string();
    assert_eq!(
        a.header("Location"),
        Some(format!("/v1/actions/{action}").as_str())
    );
    let i = f
        .env
        .sensorctl_json(&["trigger-instance", "get", &action, "--json"]);
    assert_eq!(i["trigger"], RECEIVER_TRIGGER);
    assert_eq!(
        i["payload"]["params"],
        json!({"count": "3", "strict": "yes", "extra": true})
    );
    assert_eq!(i["payload"]["action"], "CLUSTER_RESIZE");
    assert_eq!(i["payload"]["cluster_id"], "c9");
    assert_eq!(i["payload"]["receiver_name"], "keep");

    // The notification was an instance before its 202; its status moves
    // to running then finished, each change an instance too.
    let n = instances_of(&f.env, NOTIFICATION);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0]["payload"]["notification_uuid"], uuid);
    for status in ["running", "finished"] {
        let a = f.call(
            "PATCH",
            &format!("/v1/notifications/{uuid}"),
            Some(json!({"status": status})),
        );
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.json()["notification"]["status"], status);
    }
    let changes: Vec<(String, String)> = instances_of(&f.env, NOTIFICATION_STATUS)
        .iter()
        .map(|i| (s(&i["payload"]["old_status"]), s(&i["payload"]["status"])))
        .collect();
    assert_eq!(
        changes,
        vec![
            ("new".into(), "running".into()),
            ("running".into(), "finished".into())
        ]
    );
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

#[test]
fn receivers_answer_every_senlin_status_code() {
    let f = Front::start();
    // Management needs a key; 401 in st2's shape without one.
    let a = request("GET", &format!("{}/v1/receivers", f.base), &[], None);
    assert_eq!(a.status, 401);
    // The version document is public.
    let d = request("GET", &format!("{}/v1/", f.base), &[], None);
    assert_eq!(d.status, 200);
    assert_eq!(d.json()["version"]["status"], "CURRENT");

    let post = |body: Value| f.call("POST", "/v1/receivers", Some(body));
    let r = |fields: Value| json!({ "receiver": fields });
    for (body, status, needle) in [
        (json!({"name": "x"}), 400, "missing 'receiver' key"),
        (r(json!({"cluster_id": "c", "action": "A"})), 400, "'name'"),
        (
            r(json!({"name": "bad name", "cluster_id": "c", "action": "A"})),
            400,
            "'name'",
        ),
        (
            r(json!({"name": "n".repeat(256), "cluster_id": "c", "action": "A"})),
            400,
            "between 1 and 255",
        ),
        (
            r(json!({"name": "x", "type": "pull", "cluster_id": "c", "action": "A"})),
            400,
            "not acceptable for field 'type'",
        ),
        (
            r(json!({"name": "x", "action": "A"})),
            400,
            "Cluster identity is required",
        ),
        (
            r(json!({"name": "x", "cluster_id": "c"})),
            400,
            "Action name is required",
        ),
        (
            r(json!({"name": "x", "cluster_id": "c", "action": "CLUSTER_CREATE"})),
            400,
            "CLUSTER_CREATE",
        ),
        (
            r(json!({"name": "x", "cluster_id": "c", "action": "A", "colour": "red"})),
            400,
            "'colour' was unexpected",
        ),
        (
            r(json!({"name": "x", "cluster_id": "c", "action": "A", "params": [1]})),
            400,
            "'params'",
        ),
    ] {
        let a = post(body.clone());
        let m = senlin_error(&a, status);
        assert!(m.contains(needle), "{body} → {m}");
    }
    let bad_json = f.raw("POST", "/v1/receivers", "{nope");
    assert!(senlin_error(&bad_json, 400).contains("not valid JSON"));

    let one = f.receiver("one", json!({"count": 1, "zone": "a b"}));
    let id = one["id"].as_str().unwrap().to_string();
    assert_eq!(one["type"], "webhook");
    assert_eq!(one["actor"], json!({}));
    // 128 random bits as a UUID: not a v4 layout every time, but always 36 chars.
    assert_eq!(id.len(), 36);
    let url = one["channel"]["alarm_url"].as_str().unwrap().to_string();
    assert_eq!(
        url,
        format!("{}/v1/webhooks/{id}/trigger?V=2&count=1&zone=a+b", f.base)
    );
    // A message receiver needs neither cluster nor action.
    let m = post(r(json!({"name": "mq", "type": "message"})));
    assert_eq!(m.status, 201, "{}", m.body);
    let mq = m.json()["receiver"].clone();
    assert_eq!(
        mq["channel"]["queue_name"],
        format!("senlin-receiver-{}", mq["id"].as_str().unwrap())
    );

    // Get by id, name, short id; ambiguous → 400; unknown → 404.
    for ident in [id.as_str(), "one", &id[..6]] {
        let a = f.call("GET", &format!("/v1/receivers/{ident}"), None);
        assert_eq!(a.status, 200, "{ident}: {}", a.body);
        assert_eq!(a.json()["receiver"]["id"], id.as_str());
    }
    f.receiver("twin", json!({}));
    f.receiver("twin", json!({}));
    assert!(
        senlin_error(&f.call("GET", "/v1/receivers/twin", None), 400).contains("Multiple results")
    );
    assert!(
        senlin_error(&f.call("GET", "/v1/receivers/ghost", None), 404)
            .contains("could not be found")
    );

    // List: filters, unknown parameter, bad sort, bad limit, bad marker.
    let l = f.call("GET", "/v1/receivers?name=twin&name=one", None);
    assert_eq!(l.json()["receivers"].as_array().unwrap().len(), 3);
    let l = f.call("GET", "/v1/receivers?type=message", None);
    assert_eq!(l.json()["receivers"][0]["name"], "mq");
    assert!(
        senlin_error(&f.call("GET", "/v1/receivers?colour=red", None), 400)
            .contains("Invalid parameter colour")
    );
    assert!(
        senlin_error(&f.call("GET", "/v1/receivers?sort=colour", None), 400)
            .contains("Unsupported sort key")
    );
    assert!(senlin_error(
        &f.call("GET", "/v1/receivers?sort=name:sideways", None),
        400
    )
    .contains("sort dir"));
    assert!(senlin_error(&f.call("GET", "/v1/receivers?limit=-1", None), 400).contains("limit"));
    assert!(senlin_error(&f.call("GET", "/v1/receivers?marker=zz", None), 400).contains("marker"));
    let ghost = "00000000-0000-0000-0000-000000000000";
    assert!(senlin_error(
        &f.call("GET", &format!("/v1/receivers?marker={ghost}"), None),
        400
    )
    .contains("Marker"));

    // Update: only name/action/params, nothing different → 400.
    let up = |body: Value| {
        f.call(
            "PATCH",
            &format!("/v1/receivers/{id}"),
            Some(json!({"receiver": body})),
        )
    };
    assert!(senlin_error(&up(json!({"name": "one"})), 400).contains("No property needs an update."));
    assert!(
        senlin_error(&up(json!({"cluster_id": "c2"})), 400).contains("'cluster_id' was unexpected")
    );
    let a = up(json!({"name": "uno", "params": {"count": 2}}));
    assert_eq!(a.status, 200, "{}", a.body);
    let after = a.json()["receiver"].clone();
    assert_eq!(
        after["params"],
        json!({"count": 2}),
        "params are replaced, not merged"
    );
    assert_eq!(after["created_at"], one["created_at"]);
    assert!(after["updated_at"].is_string());
    assert!(after["channel"]["alarm_url"]
        .as_str()
        .unwrap()
        .ends_with("?V=2&count=2"));
    assert!(senlin_error(
        &f.call(
            "PATCH",
            "/v1/receivers/ghost",
            Some(json!({"receiver": {"name": "x"}}))
        ),
        404
    )
    .contains("ghost"));

    // Trigger: V mandatory, unknown id 404, V=1 takes body.params, V=2 the
    // whole body, merged over the receiver's params with the body winning.
    let trigger = |q: &str, body: &str| {
        f.public_post(&format!("{}/v1/webhooks/{id}/trigger{q}", f.base), body)
    };
    assert!(senlin_error(&trigger("", "{}"), 400).contains("V query parameter is required"));
    let a = f.public_post(&format!("{}/v1/webhooks/{ghost}/trigger?V=2", f.base), "{}");
    senlin_error(&a, 404);
    assert!(senlin_error(&trigger("?V=2", "[1]"), 400).contains("JSON object"));
    let v1 = trigger(
        "?V=1",
        r#"{"params": {"count": 5, "new": "x"}, "ignored": 1}"#,
    );
    assert_eq!(v1.status, 202, "{}", v1.body);
    let v2 = trigger("?V=2&count=99", r#"{"params": {"count": 5}, "zone": "b"}"#);
    assert_eq!(v2.status, 202, "{}", v2.body);
    let v1_micro = request(
        "POST",
        &format!("{}/v1/webhooks/{id}/trigger?V=1", f.base),
        &[("OpenStack-API-Version", "clustering 1.10")],
        Some(r#"{"params": {"p": 1}}"#),
    );
    assert_eq!(v1_micro.status, 202);
    let params_of = |a: &Answer| {
        let id = a.json()["action"].as_str().unwrap().to_string();
        f.env
            .sensorctl_json(&["trigger-instance", "get", &id, "--json"])["payload"]
            .clone()
    };
    let p1 = params_of(&v1);
    assert_eq!(p1["params"], json!({"count": 5, "new": "x"}));
    assert_eq!(p1["receiver_id"], id.as_str());
    assert_eq!(p1["receiver_name"], "uno");
    assert_eq!(p1["type"], "webhook");
    assert_eq!(
        params_of(&v2)["params"],
        json!({"count": 2, "params": {"count": 5}, "zone": "b"})
    );
    assert_eq!(
        params_of(&v1_micro)["params"],
        json!({"count": 2, "params": {"p": 1}})
    );
    // A webhook receiver cannot be notified, a message receiver can.
    let a = f.raw("POST", &format!("/v1/receivers/{id}/notify"), "{}");
    assert!(senlin_error(&a, 400).contains("only message receivers"));
    let mq_id = mq["id"].as_str().unwrap();
    let bad = f.raw(
        "POST",
        &format!("/v1/receivers/{mq_id}/notify"),
        r#"{"messages": [{"body": {"cluster": "c"}}]}"#,
    );
    assert!(senlin_error(&bad, 400).contains("messages[0].body.action"));
    let ok = f.raw(
        "POST",
        &format!("/v1/receivers/{mq_id}/notify"),
        r#"{"messages": [{"body": {"cluster": "c1", "action": "CLUSTER_SCALE_IN", "params": {"count": 1}}}, {"body": {"cluster": "c2", "action": "CLUSTER_SCALE_OUT"}}]}"#,
    );
    assert_eq!(ok.status, 204, "{}", ok.body);
    let msgs: Vec<(String, String)> = instances_of(&f.env, RECEIVER_TRIGGER)
        .iter()
        .filter(|i| i["payload"]["type"] == "message")
        .map(|i| (s(&i["payload"]["cluster_id"]), s(&i["payload"]["action"])))
        .collect();
    assert_eq!(
        msgs,
        vec![
            ("c1".into(), "CLUSTER_SCALE_IN".into()),
            ("c2".into(), "CLUSTER_SCALE_OUT".into())
        ]
    );

    // Delete: 204, then the URL is dead.
    assert_eq!(
        f.call("DELETE", &format!("/v1/receivers/{id}"), None)
            .status,
        204
    );
    senlin_error(&f.call("DELETE", &format!("/v1/receivers/{id}"), None), 404);
    senlin_error(&trigger("?V=2", "{}"), 404);
}

#[test]
fn receivers_page_with_sort_limit_and_marker_over_25() {
    let f = Front::start();
    let mut expected = Vec::new();
    for n in 0..25 {
        // Names out of order; five share a name so the id breaks the tie.
        let name = format!("r{:02}", (n * 7) % 20);
        let r = f.receiver(&name, json!({}));
        expected.push((name, s(&r["id"])));
    }
    expected.sort();
    let mut got = Vec::new();
    let mut marker: Option<String> = None;
    for _page in 0..10 {
        let q = match &marker {
            Some(m) => format!("?sort=name:asc&limit=10&marker={m}"),
            None => "?sort=name:asc&limit=10".into(),
        };
        let a = f.call("GET", &format!("/v1/receivers{q}"), None);
        assert_eq!(a.status, 200, "{}", a.body);
        let page = a.json()["receivers"].as_array().unwrap().clone();
        assert!(page.len() <= 10);
        if page.is_empty() {
            break;
        }
        marker = Some(s(&page.last().unwrap()["id"]));
        got.extend(page.iter().map(|r| (s(&r["name"]), s(&r["id"]))));
    }
    assert_eq!(got, expected, "three pages of 10, 10, 5 in name, id order");
    // Descending, and by created_at.
    let a = f.call("GET", "/v1/receivers?sort=name:desc&limit=3", None);
    let names: Vec<String> = a.json()["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| s(&r["name"]))
        .collect();
    assert_eq!(names, vec!["r19", "r18", "r17"]);
    let a = f.call("GET", "/v1/receivers?sort=created_at:asc,name", None);
    assert_eq!(a.json()["receivers"].as_array().unwrap().len(), 25);
    // limit=0 is an empty page.
    let a = f.call("GET", "/v1/receivers?limit=0", None);
    assert_eq!(a.json()["receivers"], json!([]));
}

#[test]
fn notifications_answer_every_masakari_status_code_and_keep_the_lifecycle() {
    let f = Front::with_config("notifications:\n  duplicate_detection_interval: 180s\n");
    let host = f.host("seg", "compute-1", true);
    let off_host = f.host("seg-off", "compute-off", false);

    // Schema failures are 400 naming the field.
    let post = |body: Value| f.call("POST", "/v1/notifications", Some(body));
    let n = |fields: Value| json!({ "notification": fields });
    let base = json!({"type": "PROCESS", "hostname": "compute-1", "generated_time": "2026-12-01T10:00:00", "payload": stopped()});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        n(b)
    };
    for (body, needle) in [
        (json!({"notif": {}}), "'notification'"),
        (with("type", json!("DISK")), "type"),
        (with("hostname", json!("bad host")), "hostname"),
        (with("generated_time", json!("tuesday")), "generated_time"),
        (
            with("payload", json!({"process_name": "x", "event": "stopped"})),
            "payload/event",
        ),
        (with("payload", json!({"event": "STOPPED"})), "process_name"),
        (with("host_name", json!("compute-1")), "host_name"),
    ] {
        let a = post(body.clone());
        let m = masakari_error(&a, 400, "badRequest");
        assert!(m.contains(needle), "{body} → {m}");
    }
    // Unknown host 400.
    let a = f.notify("compute-9", "2026-12-01T10:00:00", stopped());
    assert!(masakari_error(&a, 400, "badRequest").contains("compute-9"));

    // Accepted: 202 with the stored notification.
    let a = f.notify("compute-1", "2026-12-01T10:00:00", stopped());
    assert_eq!(a.status, 202, "{}", a.body);
    let first = a.json()["notification"].clone();
    assert_eq!(first["status"], "new");
    assert_eq!(first["source_host_uuid"], host.as_str());
    assert_eq!(first["generated_time"], "2026-12-01T10:00:00.000000");
    assert!(first["failover_segment_uuid"].is_string() && first["id"].is_u64());
    let uuid = s(&first["notification_uuid"]);

    // Duplicate: same type, host, payload, generated_time within 180 s of
    // a stored one's (client time, no upper bound) → 409; outside → 202.
    let dup = f.notify("compute-1", "2026-12-01T10:03:00", stopped());
    assert!(masakari_error(&dup, 409, "conflictingRequest").contains("is duplicate"));
    let earlier = f.notify("compute-1", "2026-12-01T09:59:00", stopped());
    masakari_error(&earlier, 409, "conflictingRequest");
    let other_payload = f.notify(
        "compute-1",
        "2026-12-01T10:00:30",
        json!({"process_name": "nova-compute", "event": "STARTED"}),
    );
    assert_eq!(other_payload.status, 202, "{}", other_payload.body);
    let outside = f.notify("compute-1", "2026-12-01T10:03:01", stopped());
    assert_eq!(outside.status, 202, "181 s after: {}", outside.body);

    // Host on maintenance → 409.
    let segs = f.call("GET", "/v1/segments?name=seg", None).json();
    let seg = s(&segs["segments"][0]["uuid"]);
    let a = f.call(
        "PUT",
        &format!("/v1/segments/{seg}/hosts/{host}"),
        Some(json!({"host": {"on_maintenance": true}})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let m = f.notify("compute-1", "2026-12-01T12:00:00", stopped());
    assert!(masakari_error(&m, 409, "conflictingRequest").contains("under maintenance"));
    // Disabled segment → accepted but ignored on arrival.
    let ig = f.notify("compute-off", "2026-12-01T10:00:00", stopped());
    assert_eq!(ig.status, 202, "{}", ig.body);
    let ig = ig.json()["notification"].clone();
    assert_eq!(ig["status"], "ignored");
    assert_eq!(ig["source_host_uuid"], off_host.as_str());
    assert!(s(&ig["message"]).contains("disabled"));

    // Get: non-UUID → 404, unknown → 404.
    masakari_error(
        &f.call("GET", "/v1/notifications/nope", None),
        404,
        "itemNotFound",
    );
    masakari_error(
        &f.call(
            "GET",
            "/v1/notifications/00000000-0000-0000-0000-000000000000",
            None,
        ),
        404,
        "itemNotFound",
    );
    let g = f.call("GET", &format!("/v1/notifications/{uuid}"), None);
    assert_eq!(g.json()["notification"]["payload"], stopped());

    // List: filters, generated-since (both spellings), sort, limit, marker.
    let list = |q: &str| {
        let a = f.call("GET", &format!("/v1/notifications{q}"), None);
        assert_eq!(a.status, 200, "{q}: {}", a.body);
        a.json()["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| s(&n["generated_time"]))
            .collect::<Vec<_>>()
    };
    assert_eq!(list("").len(), 4);
    assert_eq!(list("?status=ignored"), vec!["2026-12-01T10:00:00.000000"]);
    assert_eq!(
        list(&format!(
            "?source_host_uuid={host}&sort_key=generated_time&sort_dir=asc"
        )),
        vec![
            "2026-12-01T10:00:00.000000",
            "2026-12-01T10:00:30.000000",
            "2026-12-01T10:03:01.000000"
        ]
    );
    assert_eq!(list("?generated-since=2026-12-01T10:00:30").len(), 2);
    assert_eq!(
        list("?generated_since=2026-12-01T10:00:30Z&type=PROCESS").len(),
        2
    );
    assert_eq!(list("?type=VM").len(), 0);
    // Parameters Masakari does not know are ignored, as Masakari does.
    assert_eq!(list("?hostname=compute-9").len(), 4);
    let all = f
        .call(
            "GET",
            "/v1/notifications?sort_key=generated_time&sort_dir=asc&limit=2",
            None,
        )
        .json();
    let page: Vec<Value> = all["notifications"].as_array().unwrap().clone();
    assert_eq!(page.len(), 2);
    let marker = page[1]["id"].to_string();
    let rest = list(&format!(
        "?sort_key=generated_time&sort_dir=asc&limit=2&marker={marker}"
    ));
    assert_eq!(
        rest,
        vec!["2026-12-01T10:00:30.000000", "2026-12-01T10:03:01.000000"]
    );
    for (q, needle) in [
        ("?generated-since=whenever", "Invalid generated-since value"),
        ("?limit=-1", "limit"),
        ("?marker=999999999", "Marker"),
        ("?sort_key=colour", "sort_key"),
        ("?sort_dir=up", "sort_dir"),
    ] {
        let m = masakari_error(
            &f.call("GET", &format!("/v1/notifications{q}"), None),
            400,
            "badRequest",
        );
        assert!(m.contains(needle), "{q} → {m}");
    }

    // Lifecycle: each legal transition is 200 and an instance; illegal 409.
    let patch = |id: &str, st: &str| {
        f.call(
            "PATCH",
            &format!("/v1/notifications/{id}"),
            Some(json!({"status": st})),
        )
    };
    masakari_error(&patch(&uuid, "finished"), 409, "conflictingRequest");
    for st in ["running", "error", "running"] {
        let a = patch(&uuid, st);
        assert_eq!(a.status, 200, "{st}: {}", a.body);
        assert_eq!(a.json()["notification"]["status"], st);
    }
    // The one retry is used: the next error is failed, and final.
    let a = patch(&uuid, "error");
    assert_eq!(a.json()["notification"]["status"], "failed", "{}", a.body);
    assert!(masakari_error(&patch(&uuid, "running"), 409, "conflictingRequest").contains("final"));
    masakari_error(&patch(&uuid, "done"), 400, "badRequest");
    let other = s(&other_payload.json()["notification"]["notification_uuid"]);
    for st in ["running", "finished"] {
        assert_eq!(patch(&other, st).status, 200);
    }
    masakari_error(&patch(&other, "running"), 409, "conflictingRequest");
    let ig_uuid = s(&ig["notification_uuid"]);
    masakari_error(&patch(&ig_uuid, "running"), 409, "conflictingRequest");

    let changes: Vec<String> = instances_of(&f.env, NOTIFICATION_STATUS)
        .iter()
        .map(|i| {
            format!(
                "{}>{}",
                s(&i["payload"]["old_status"]),
                s(&i["payload"]["status"])
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            "new>ignored",
            "new>running",
            "running>error",
            "error>running",
            "running>failed",
            "new>running",
            "running>finished"
        ]
    );
    let accepted: BTreeSet<String> = instances_of(&f.env, NOTIFICATION)
        .iter()
        .map(|i| s(&i["payload"]["notification_uuid"]))
        .collect();
    assert_eq!(
        accepted.len(),
        4,
        "one instance per accepted notification, none for refused ones"
    );
}

#[test]
fn a_notification_answered_202_survives_kill_9_with_its_instance() {
    let mut f = Front::start();
    f.host("seg", "compute-1", true);
    let a = f.notify("compute-1", "2026-12-01T10:00:00", stopped());
    assert_eq!(a.status, 202, "{}", a.body);
    let uuid = s(&a.json()["notification"]["notification_uuid"]);
    f.c.signal(libc::SIGKILL);
    f.c.wait_exit(Duration::from_secs(10));
    // Without a container sensorctl reads the database and log itself.
    let n = f
        .env
        .sensorctl_json(&["notification", "get", &uuid, "--json"]);
    assert_eq!(n["status"], "new");
    let inst = instances_of(&f.env, NOTIFICATION);
    assert_eq!(inst.len(), 1);
    assert_eq!(inst[0]["payload"]["notification_uuid"], uuid.as_str());
    // And after a restart the duplicate rule still sees it.
    let (_c, base) = start(&f.env, &[]);
    let again = request(
        "POST",
        &format!("{base}/v1/notifications"),
        &[("X-Auth-Token", &f.key)],
        Some(&json!({"notification": {"type": "PROCESS", "hostname": "compute-1", "generated_time": "2026-12-01T10:00:00", "payload": stopped()}}).to_string()),
    );
    assert_eq!(again.status, 409, "{}", again.body);
}

#[test]
fn signed_receivers_refuse_unsigned_triggers() {
    use hmac::{Hmac, Mac};
    let f = Front::with_config("api:\n  receivers:\n    require_signature: true\n  public_url: http://events.example:8777/v1\n");
    let r = f.receiver("signed", json!({"a": "1"}));
    let secret = s(&r["channel"]["signature_secret"]);
    assert_eq!(secret.len(), 64);
    let id = s(&r["id"]);
    assert_eq!(
        r["channel"]["alarm_url"],
        format!("http://events.example:8777/v1/webhooks/{id}/trigger?V=2&a=1")
    );
    // The secret is shown once: never in get or list.
    let g = f.call("GET", &format!("/v1/receivers/{id}"), None).json();
    assert!(
        g["receiver"]["channel"].get("signature_secret").is_none(),
        "{g}"
    );
    assert!(!f.call("GET", "/v1/receivers", None).body.contains(&secret));
    let url = format!("{}/v1/webhooks/{id}/trigger?V=2", f.base);
    let body = r#"{"b": "2"}"#;
    let sign = |b: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(b.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    senlin_error(&f.public_post(&url, body), 403);
    let wrong = request(
        "POST",
        &url,
        &[("X-Receiver-Signature", &sign("{}"))],
        Some(body),
    );
    senlin_error(&wrong, 403);
    let good = request(
        "POST",
        &url,
        &[("X-Receiver-Signature", &sign(body))],
        Some(body),
    );
    assert_eq!(good.status, 202, "{}", good.body);
    let i = instances_of(&f.env, RECEIVER_TRIGGER);
    assert_eq!(i.len(), 1);
    assert_eq!(i[0]["payload"]["params"], json!({"a": "1", "b": "2"}));
}

#[test]
fn sensorctl_manages_receivers_and_notifications_with_or_without_a_container() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    // No container: sensorctl opens the database itself.
    let ok = |args: &[&str]| env.sensorctl_ok(args);
    let fails = |args: &[&str], needle: &str| {
        let out = env.sensorctl(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            common::stderr(&out).contains(needle),
            "{args:?}: {}",
            common::stderr(&out)
        );
    };
    let created: Value = serde_json::from_str(&ok(&[
        "receiver",
        "create",
        "hook-1",
        "--cluster-id",
        "c1",
        "--action",
        "CLUSTER_SCALE_OUT",
        "-P",
        "count=2",
        "--json",
    ]))
    .unwrap();
    let id = s(&created["id"]);
    fails(
        &["receiver", "create", "hook-2", "--action", "A"],
        "Cluster identity is required",
    );
    fails(
        &[
            "receiver",
            "create",
            "bad name",
            "--cluster-id",
            "c",
            "--action",
            "A",
        ],
        "'name'",
    );
    fails(
        &["receiver", "update", "hook-1", "--name", "hook-1"],
        "No property needs an update.",
    );
    fails(&["receiver", "get", "ghost"], "could not be found");
    let key = apikey(&env);
    let (c, base) = start(&env, &[]);
    // The container's URL is the one shown now, whoever created it.
    let got = ok(&["receiver", "get", "hook-1"]);
    assert!(
        got.contains(&format!("{base}/v1/webhooks/{id}/trigger?V=2&count=2")),
        "{got}"
    );
    assert!(ok(&["receiver", "list"]).contains("hook-1"));
    let up: Value = serde_json::from_str(&ok(&[
        "receiver",
        "update",
        &id[..8],
        "--name",
        "hook-x",
        "-P",
        "count=3",
        "--json",
    ]))
    .unwrap();
    assert_eq!(up["params"], json!({"count": "3"}));
    let a = request(
        "POST",
        &format!("{base}/v1/webhooks/{id}/trigger?V=2"),
        &[],
        Some("{}"),
    );
    assert_eq!(a.status, 202);
    // Notifications: a host through the API, then sensorctl walks the lifecycle.
    let seg = request(
        "POST",
        &format!("{base}/v1/segments"),
        &[("X-Auth-Token", &key)],
        Some(r#"{"segment": {"name": "s", "recovery_method": "auto", "service_type": "COMPUTE"}}"#),
    )
    .json();
    let seg = s(&seg["segment"]["uuid"]);
    let h = request(
        "POST",
        &format!("{base}/v1/segments/{seg}/hosts"),
        &[("X-Auth-Token", &key)],
        Some(r#"{"host": {"name": "h1", "type": "COMPUTE", "control_attributes": "x"}}"#),
    );
    assert_eq!(h.status, 201, "{}", h.body);
    let n = request(
        "POST",
        &format!("{base}/v1/notifications"),
        &[("X-Auth-Token", &key)],
        Some(
            r#"{"notification": {"type": "COMPUTE_HOST", "hostname": "h1", "generated_time": "2026-12-01T10:00:00Z", "payload": {"event": "STOPPED", "host_status": "NORMAL"}}}"#,
        ),
    );
    assert_eq!(n.status, 202, "{}", n.body);
    let uuid = s(&n.json()["notification"]["notification_uuid"]);
    let listed = ok(&["notification", "list", "--status", "new"]);
    assert!(listed.contains(&uuid), "{listed}");
    assert!(ok(&["notification", "set-status", &uuid, "running"]).contains("is running"));
    fails(
        &["notification", "set-status", &uuid, "new"],
        "cannot change from running to new",
    );
    assert!(ok(&[
        "notification",
        "set-status",
        &uuid,
        "finished",
        "--message",
        "evacuated"
    ])
    .contains("is finished"));
    let g: Value = serde_json::from_str(&ok(&["notification", "get", &uuid, "--json"])).unwrap();
    assert_eq!(
        (s(&g["status"]), s(&g["message"])),
        ("finished".into(), "evacuated".into())
    );
    assert!(ok(&["receiver", "delete", "hook-x"]).contains("deleted"));
    drop(c);
}

#[test]
fn unfinished_notifications_expire_to_failed() {
    let f = Front::with_config(
        "notifications:\n  expired_interval: 1h\n  check_expired_interval: 1s\n",
    );
    f.host("seg", "compute-1", true);
    let old = f.notify("compute-1", "2020-01-01T00:00:00", stopped());
    assert_eq!(old.status, 202);
    let fresh_time = common_now_iso();
    let fresh = f.notify("compute-1", &fresh_time, stopped());
    assert_eq!(fresh.status, 202, "{}", fresh.body);
    let (old_id, fresh_id) = (
        s(&old.json()["notification"]["notification_uuid"]),
        s(&fresh.json()["notification"]["notification_uuid"]),
    );
    let status = |id: &str| {
        s(&f.call("GET", &format!("/v1/notifications/{id}"), None)
            .json()["notification"]["status"])
    };
    assert!(
        wait_until(Duration::from_secs(15), || status(&old_id) == "failed"),
        "{}",
        f.c.log()
    );
    assert_eq!(status(&fresh_id), "new");
    let n = f
        .call("GET", &format!("/v1/notifications/{old_id}"), None)
        .json();
    assert!(s(&n["notification"]["message"]).contains("expired"), "{n}");
    let changes = instances_of(&f.env, NOTIFICATION_STATUS);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["payload"]["status"], "failed");
}

/// Now, as an ISO 8601 UTC time.
fn common_now_iso() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
