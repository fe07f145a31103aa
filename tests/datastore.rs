//! End-to-end: the datastore through real Python sensors, the real
//! container and `sensorctl key`.

mod common;

use std::time::Duration;

use common::{stderr, stdout, Env};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);
const SECRET: &str = "PLAINTEXT-SECRET-7f3a9c";

fn time_of(instance: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        instance["occurrence_time"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

/// Every file under `dir`, searched for `needle` as raw bytes.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut hits = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                hits.push(p);
            }
        }
    }
    hits
}

#[test]
fn a_counting_sensor_continues_its_count_across_restarts() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    for expected in [5, 10] {
        let mut c = env.start_container(&["--sensor-ref", "testpack.CounterSensor"]);
        env.wait_marker(&format!("counter.{expected}"), T, &mut c);
        assert!(c.terminate(T).success(), "{}", c.log());
    }
    let mut counts: Vec<i64> = env
        .instances_of("testpack.counted")
        .iter()
        .map(|i| i["payload"]["count"].as_i64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        (1..=10).collect::<Vec<_>>(),
        "no event lost or repeated across the restart"
    );
    let out = env.sensorctl(&["key", "get", "testpack.CounterSensor:count"]);
    assert_eq!(stdout(&out).trim(), "10", "{}", stderr(&out));
}

#[test]
fn ttl_secrets_scopes_and_protocol_checks() {
    let env = Env::new(&["tests/packs"]);
    let key = env.crypto_key("crypto.json");
    env.register();
    let mut c = env.start_container(&[
        "--sensor-ref",
        "testpack.DatastoreProbe",
        "--encryption-key-path",
        key.to_str().unwrap(),
    ]);
    env.wait_marker("probe.json", T, &mut c);
    // The sweeper deletes the expired key and says so.
    c.wait_log("datastore key expired and was deleted", T);
    assert!(c.terminate(T).success(), "{}", c.log());
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(env.marker("probe.json")).unwrap()).unwrap();

    // TTL: visible before, invisible at 2 s (StackStorm may show it for a minute).
    assert_eq!(r["set_ttl"], true);
    assert_eq!(r["before_expiry"], "lived");
    let gone = r["ttl_gone_after"].as_f64().unwrap();
    assert!(
        (1.9..2.6).contains(&gone),
        "ttl=2 key vanished after {gone}s"
    );
    let name = "testpack.DatastoreProbe:short";
    let created = env.instances_of("core.st2.key_value_pair.create");
    let created = created
        .iter()
        .find(|i| i["payload"]["object"]["name"] == name)
        .expect("create event");
    let deletes = env.instances_of("core.st2.key_value_pair.delete");
    let deleted = deletes
        .iter()
        .find(|i| i["payload"]["object"]["name"] == name)
        .expect("delete event");
    let lag = time_of(deleted) - time_of(created);
    assert!(
        lag >= time::Duration::seconds(2) && lag <= time::Duration::seconds(3),
        "delete event after {lag}"
    );

    // Setting again without a ttl cleared the expiry.
    let sticky = env.sensorctl_json(&["key", "get", "testpack.DatastoreProbe:sticky", "--json"]);
    assert_eq!(sticky["value"], "b");
    assert_eq!(sticky["expire_timestamp"], Value::Null);
    let changes = env.instances_of("core.st2.key_value_pair.value_change");
    assert!(changes
        .iter()
        .any(|i| i["payload"]["old_object"]["value"] == "a"
            && i["payload"]["new_object"]["value"] == "b"));

    // Secrets: ciphertext without decrypt, plaintext with it, and nowhere on disk or in logs.
    let cipher = r["cipher"].as_str().unwrap();
    assert_ne!(cipher, SECRET);
    assert!(
        cipher.len() > 40 && cipher.chars().all(|c| c.is_ascii_hexdigit()),
        "{cipher}"
    );
    assert_eq!(r["plain"], true);
    assert!(
        files_containing(&env.data, SECRET.as_bytes()).is_empty(),
        "plaintext found in the data dir"
    );
    assert!(!c.log().contains(SECRET), "plaintext in the container log");
    for i in env.instances() {
        assert!(
            !i.to_string().contains(SECRET),
            "plaintext in a trigger instance: {i}"
        );
    }
    let secret_events: Vec<Value> = env
        .instances_of("core.st2.key_value_pair.create")
        .into_iter()
        .filter(|i| i["payload"]["object"]["name"] == "testpack.DatastoreProbe:secret")
        .collect();
    assert_eq!(secret_events[0]["payload"]["object"]["value"], "********");
    let out = env.sensorctl(&[
        "--encryption-key-path",
        key.to_str().unwrap(),
        "key",
        "get",
        "--decrypt",
        "testpack.DatastoreProbe:secret",
    ]);
    assert_eq!(stdout(&out).trim(), SECRET, "{}", stderr(&out));

    // StackStorm semantics and the raw protocol's error codes.
    assert_eq!(r["global"], true);
    common::assert_datastore_probe_semantics(&r);
    assert!(r["scope_error"].as_str().unwrap().contains("user"));
    assert_eq!(r["user_info"]["username"], "stanley");
}

#[test]
fn encrypting_without_a_key_is_a_clear_error_and_writes_nothing() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let mut c = env.start_container(&["--sensor-ref", "testpack.DatastoreProbe"]);
    env.wait_marker("probe.json", T, &mut c);
    assert!(c.terminate(T).success());
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(env.marker("probe.json")).unwrap()).unwrap();
    assert!(
        r["encrypt_error"]
            .as_str()
            .unwrap()
            .contains("no encryption key is configured"),
        "{r}"
    );
    let out = env.sensorctl(&["key", "get", "testpack.DatastoreProbe:secret"]);
    assert!(!out.status.success(), "nothing may be stored");
}

#[test]
fn concurrent_set_value_from_several_sensors_loses_nothing() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    for s in [
        "testpack.ConcurrentA",
        "testpack.ConcurrentB",
        "testpack.ConcurrentC",
    ] {
        assert!(env.sensorctl(&["sensor", "enable", s]).status.success());
    }
    let mut c = env.start_container(&[]);
    for m in [
        "concurrent.ConcurrentA",
        "concurrent.ConcurrentB",
        "concurrent.ConcurrentC",
    ] {
        env.wait_marker(m, T, &mut c);
    }
    assert!(c.terminate(T).success());
    let keys = env.sensorctl_json(&[
        "key",
        "list",
        "--prefix",
        "shared.Concurrent",
        "--limit",
        "0",
        "--json",
    ]);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 600);
    for k in keys {
        let name = k["name"].as_str().unwrap();
        let i: u64 = name.rsplit('.').next().unwrap().parse().unwrap();
        assert_eq!(k["value"], i.to_string(), "{name}");
    }
    assert_eq!(
        env.instances_of("core.st2.key_value_pair.create").len(),
        601
    );
}

#[test]
fn sensorctl_key_commands() {
    let env = Env::new(&["tests/packs"]);
    let key = env.dir.path().join("k.json");
    let kp = key.to_str().unwrap();
    let ok = |args: &[&str]| env.sensorctl_ok(args);
    let fails = |args: &[&str], needle: &str| {
        let out = env.sensorctl(args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr(&out).contains(needle),
            "{args:?}: expected {needle:?} in {}",
            stderr(&out)
        );
    };
    ok(&["key", "generate-crypto-key", "--path", kp]);
    fails(
        &["key", "generate-crypto-key", "--path", kp],
        "refusing to overwrite",
    );
    ok(&["key", "set", "a", "1"]);
    ok(&["key", "set", "b", "2", "--ttl", "100"]);
    ok(&[
        "--encryption-key-path",
        kp,
        "key",
        "set",
        "pw",
        SECRET,
        "--encrypt",
    ]);
    ok(&["key", "set", "--scope", "user", "u", "3"]);
    assert_eq!(ok(&["key", "get", "a"]).trim(), "1");
    assert_ne!(ok(&["key", "get", "pw"]).trim(), SECRET);
    assert_eq!(
        ok(&["--encryption-key-path", kp, "key", "get", "pw", "--decrypt"]).trim(),
        SECRET
    );
    let listed = env.sensorctl_json(&["key", "list", "--json"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "b", "pw"]);
    assert!(listed[1]["expire_timestamp"].is_string());
    assert_eq!(
        env.sensorctl_json(&["key", "list", "--scope", "user", "--json"])[0]["name"],
        "u"
    );
    assert!(ok(&["key", "list"]).contains("NAME"));

    // Bad input.
    fails(&["key", "set", "x", "1", "--ttl", "-1"], "--ttl");
    fails(&["key", "set", "x", "1", "--ttl", "1.5"], "--ttl");
    fails(&["key", "set", "", "1"], "must not be empty");
    fails(&["key", "set", &"n".repeat(2000), "1"], "limit is 1024");
    fails(
        &["key", "set", "x", "1", "--encrypt"],
        "no encryption key is configured",
    );
    fails(&["key", "get", "--scope", "tenant", "a"], "unknown scope");
    let other = env.dir.path().join("other.json");
    ok(&[
        "key",
        "generate-crypto-key",
        "--path",
        other.to_str().unwrap(),
    ]);
    fails(
        &[
            "--encryption-key-path",
            other.to_str().unwrap(),
            "key",
            "get",
            "pw",
            "--decrypt",
        ],
        "wrong encryption key or corrupted ciphertext",
    );
    let junk = env.dir.path().join("junk.json");
    std::fs::write(&junk, "{}").unwrap();
    fails(
        &[
            "--encryption-key-path",
            junk.to_str().unwrap(),
            "key",
            "list",
        ],
        "junk.json",
    );

    // Export / load round trip; secrets stay encrypted; a corrupted
    // ciphertext loads but does not decrypt.
    let export = ok(&["key", "export"]);
    assert!(!export.contains(SECRET));
    ok(&["key", "delete", "a"]);
    fails(&["key", "delete", "a"], "not found");
    fails(&["key", "get", "a"], "not found");
    let mut items: Vec<Value> = serde_json::from_str(&export).unwrap();
    assert_eq!(items.len(), 4);
    let file = env.dir.path().join("export.json");
    std::fs::write(&file, serde_json::to_string(&items).unwrap()).unwrap();
    assert!(ok(&["key", "load", file.to_str().unwrap()]).contains("loaded 4 keys"));
    assert_eq!(ok(&["key", "get", "a"]).trim(), "1");
    assert_eq!(
        ok(&["--encryption-key-path", kp, "key", "get", "pw", "--decrypt"]).trim(),
        SECRET
    );
    let pw = items.iter_mut().find(|i| i["name"] == "pw").unwrap();
    let v = pw["value"].as_str().unwrap().to_string();
    let flipped = if v.ends_with('0') {
        format!("{}1", &v[..v.len() - 1])
    } else {
        format!("{}0", &v[..v.len() - 1])
    };
    pw["value"] = Value::String(flipped);
    std::fs::write(&file, serde_json::to_string(&items).unwrap()).unwrap();
    ok(&["key", "load", file.to_str().unwrap()]);
    fails(
        &["--encryption-key-path", kp, "key", "get", "pw", "--decrypt"],
        "wrong encryption key or corrupted ciphertext",
    );
    std::fs::write(&file, "[{\"oops\": 1}]").unwrap();
    fails(&["key", "load", file.to_str().unwrap()], "export.json");
}
