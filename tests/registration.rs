//! End-to-end: `sensorctl reload` and the registry read commands, run as
//! the real binary against real pack directories.

mod common;

use std::fs;
use std::path::Path;

use common::{stderr, stdout, Env};
use serde_json::Value;

fn refs(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["ref"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn registers_core_examples_and_openstack_and_lists_them() {
    let env = Env::new(&["packs"]);
    let out = env.sensorctl(&["reload", "--register-all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Registered 3 packs,"), "{text}");
    assert!(
        text.contains(" sensors,")
            && text.contains(" trigger types,")
            && text.contains(" configs."),
        "{text}"
    );

    let packs = refs(&env.sensorctl_json(&["pack", "list", "--json"]));
    assert_eq!(packs, vec!["core", "examples", "openstack"]);

    let sensors = env.sensorctl_json(&["sensor", "list", "--json"]);
    let by_ref = |r: &str| {
        sensors
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["ref"] == r)
            .cloned()
    };
    let poller = by_ref("examples.SamplePollingSensor").expect("polling sensor listed");
    assert_eq!(poller["enabled"], true);
    assert_eq!(poller["poll_interval"], 5);
    assert!(poller["trigger_types"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "examples.poll_event"));
    let passive = by_ref("examples.SampleSensor").expect("passive sensor listed");
    assert_eq!(passive["poll_interval"], Value::Null);
    assert_eq!(passive["trigger_types"][0], "examples.event");
    assert!(by_ref("examples.FileWatchSensor").is_some());
    // Shipped disabled: it needs a broker and a build.
    let listener = by_ref("openstack.NotificationListener").expect("listener listed");
    assert_eq!(listener["enabled"], false);
    assert_eq!(listener["trigger_types"][0], "openstack.notification");
    for s in sensors.as_array().unwrap() {
        assert!(Path::new(s["entry_point"].as_str().unwrap()).is_absolute());
        assert!(s["pack"] == "examples" || s["pack"] == "openstack", "{s}");
    }

    let types = refs(&env.sensorctl_json(&["trigger-type", "list", "--json"]));
    for t in [
        "core.st2.sensor.process_spawn",
        "core.st2.sensor.process_exit",
        "core.st2.key_value_pair.create",
        "core.st2.key_value_pair.update",
        "core.st2.key_value_pair.value_change",
        "core.st2.key_value_pair.delete",
        "core.st2.webhook",
        "examples.event",
        "examples.poll_event",
        "examples.file_watch.line",
        "openstack.notification",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    let fw = env.sensorctl_json(&["trigger-type", "get", "examples.file_watch.line", "--json"]);
    assert!(fw["parameters_schema"].is_object());
    let one = env.sensorctl_json(&["sensor", "get", "examples.SampleSensor", "--json"]);
    assert_eq!(one["class_name"], "SampleSensor");

    // Human tables too.
    let table = stdout(&env.sensorctl(&["sensor", "list"]));
    assert!(table.starts_with("REF"), "{table}");
    assert!(table.contains("examples.SamplePollingSensor"), "{table}");
}

#[test]
fn core_is_registered_even_when_not_on_the_packs_path() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let packs = refs(&env.sensorctl_json(&["pack", "list", "--json"]));
    assert_eq!(packs, vec!["core", "testpack"]);
}

#[test]
fn reregistration_is_idempotent_and_keeps_operator_choices() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(
        &common::repo().join("packs/examples"),
        &dir.path().join("examples"),
    );
    let env = Env::new(&[dir.path().to_str().unwrap()]);
    env.register();
    let before = env.sensorctl_json(&["sensor", "list", "--json"]);
    let out = env.sensorctl(&["sensor", "disable", "examples.SampleSensor"]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.register();
    env.register();
    let after = env.sensorctl_json(&["sensor", "list", "--json"]);
    assert_eq!(
        before.as_array().unwrap().len(),
        after.as_array().unwrap().len()
    );
    let sample = after
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ref"] == "examples.SampleSensor")
        .unwrap();
    assert_eq!(
        sample["enabled"], false,
        "operator disable must survive reload"
    );
    assert_eq!(sample["enabled_in_metadata"], true);
    let triggers_before = env.sensorctl_json(&["trigger-type", "list", "--json"]);

    // Remove one sensor's YAML: the sensor goes away on the next reload.
    let sensors_dir = dir.path().join("examples/sensors");
    let yaml = fs::read_dir(&sensors_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && fs::read_to_string(p)
                    .unwrap()
                    .contains("class_name: SamplePollingSensor")
        })
        .expect("polling sensor yaml");
    fs::remove_file(yaml).unwrap();
    let out = env.sensorctl(&["reload", "--register-all"]);
    assert!(
        stdout(&out).contains("Removed 0 packs, 1 sensors"),
        "{}",
        stdout(&out)
    );
    let after = refs(&env.sensorctl_json(&["sensor", "list", "--json"]));
    assert!(
        !after.contains(&"examples.SamplePollingSensor".to_string()),
        "{after:?}"
    );
    let triggers_after = refs(&env.sensorctl_json(&["trigger-type", "list", "--json"]));
    assert!(!triggers_after.contains(&"examples.poll_event".to_string()));
    assert_eq!(
        triggers_after.len() + 1,
        triggers_before.as_array().unwrap().len()
    );

    // Re-enable works and persists.
    env.sensorctl(&["sensor", "enable", "examples.SampleSensor"]);
    let s = env.sensorctl_json(&["sensor", "get", "examples.SampleSensor", "--json"]);
    assert_eq!(s["enabled"], true);
    let missing = env.sensorctl(&["sensor", "disable", "examples.Nope"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("examples.Nope"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn yaml_enabled_false_disables() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let s = env.sensorctl_json(&["sensor", "get", "testpack.ValidatingSensor", "--json"]);
    assert_eq!(s["enabled"], false);
    let s = env.sensorctl_json(&["sensor", "get", "testpack.PollingCounter", "--json"]);
    assert_eq!(s["enabled"], true, "`enabled: yes` is YAML 1.1 true");
}

/// A minimal valid pack in `root/<dir>`, returning its path.
fn write_pack(root: &Path, dir: &str, pack_yaml: &str) -> std::path::PathBuf {
    let p = root.join(dir);
    fs::create_dir_all(p.join("sensors")).unwrap();
    fs::write(p.join("pack.yaml"), pack_yaml).unwrap();
    p
}

const GOOD_PACK: &str = "name: mypack\ndescription: d\nversion: 1.0.0\nauthor: me\n";

fn good_sensor(pack: &Path) {
    fs::write(pack.join("sensors/good.py"), "class Good: pass\n").unwrap();
    fs::write(
        pack.join("sensors/good.yaml"),
        "class_name: Good\nentry_point: good.py\ntrigger_types:\n  - name: ev\n",
    )
    .unwrap();
}

/// Every bad input fails fast naming the file and the cause, registers
/// nothing, and with --register-no-fail-on-failure is a warning while the
/// rest registers.
#[test]
fn bad_content_fails_clearly_and_registers_nothing() {
    struct Case {
        name: &'static str,
        setup: fn(&Path),
        expect: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "missing class_name",
            setup: |p| fs::write(p.join("sensors/bad.yaml"), "entry_point: good.py\n").unwrap(),
            expect: &["bad.yaml", "class_name"],
        },
        Case {
            name: "missing entry_point",
            setup: |p| fs::write(p.join("sensors/bad.yaml"), "class_name: Bad\n").unwrap(),
            expect: &["bad.yaml", "entry_point"],
        },
        Case {
            name: "entry point file missing",
            setup: |p| {
                fs::write(
                    p.join("sensors/bad.yaml"),
                    "class_name: Bad\nentry_point: nope.py\n",
                )
                .unwrap()
            },
            expect: &["bad.yaml", "entry_point", "nope.py"],
        },
        Case {
            name: "poll_interval below 4",
            setup: |p| {
                fs::write(
                    p.join("sensors/bad.yaml"),
                    "class_name: Bad\nentry_point: good.py\npoll_interval: 2\n",
                )
                .unwrap()
            },
            expect: &["bad.yaml", "poll_interval"],
        },
        Case {
            name: "pack field differs",
            setup: |p| {
                fs::write(
                    p.join("sensors/bad.yaml"),
                    "class_name: Bad\nentry_point: good.py\npack: other\n",
                )
                .unwrap()
            },
            expect: &["bad.yaml", "pack", "other"],
        },
        Case {
            name: "malformed yaml",
            setup: |p| {
                fs::write(
                    p.join("sensors/bad.yaml"),
                    "class_name: Bad\nentry_point: [good.py\n",
                )
                .unwrap()
            },
            expect: &["bad.yaml", "line"],
        },
        Case {
            name: "config violates schema",
            setup: |p| {
                fs::write(
                    p.join("config.schema.yaml"),
                    "port:\n  type: integer\n  required: true\n",
                )
                .unwrap();
                let configs = p.parent().unwrap().parent().unwrap().join("configs");
                fs::write(configs.join("mypack.yaml"), "port: not-a-number\n").unwrap();
            },
            expect: &["mypack.yaml", "port"],
        },
        Case {
            name: "empty config schema",
            setup: |p| fs::write(p.join("config.schema.yaml"), "").unwrap(),
            expect: &["config.schema.yaml", "empty"],
        },
    ];
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        let packs = dir.path().join("packs");
        fs::create_dir_all(dir.path().join("configs")).unwrap();
        let pack = write_pack(&packs, "mypack", GOOD_PACK);
        good_sensor(&pack);
        (case.setup)(&pack);
        let mut env = Env::new(&[packs.to_str().unwrap()]);
        env.configs = dir.path().join("configs");
        let out = env.sensorctl(&["reload", "--register-all"]);
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "{}: expected failure, got success: {}",
            case.name,
            stdout(&out)
        );
        for needle in case.expect {
            assert!(
                err.contains(needle),
                "{}: error should mention {needle:?}: {err}",
                case.name
            );
        }
        assert!(
            err.contains("nothing was registered"),
            "{}: {err}",
            case.name
        );
        let packs_listed = env.sensorctl_json(&["pack", "list", "--json"]);
        assert_eq!(
            packs_listed,
            Value::Array(vec![]),
            "{}: nothing may be registered",
            case.name
        );

        let out = env.sensorctl(&["reload", "--register-all", "--register-no-fail-on-failure"]);
        assert!(
            out.status.success(),
            "{}: no-fail must exit 0: {}",
            case.name,
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("warning"),
            "{}: {}",
            case.name,
            stderr(&out)
        );
        let sensors = refs(&env.sensorctl_json(&["sensor", "list", "--json"]));
        assert!(
            sensors.contains(&"mypack.Good".to_string()),
            "{}: the good sensor registers: {sensors:?}",
            case.name
        );
    }
}

#[test]
fn bad_pack_yaml_fails_clearly() {
    let cases: [(&str, &str, &[&str]); 7] = [
        (
            "missing name",
            "description: d\nversion: 1.0.0\nauthor: me\nref: mypack\n",
            &["pack.yaml", "name"],
        ),
        (
            "missing version",
            "name: mypack\ndescription: d\nauthor: me\n",
            &["pack.yaml", "version"],
        ),
        (
            "missing author",
            "name: mypack\ndescription: d\nversion: 1.0.0\n",
            &["pack.yaml", "author"],
        ),
        (
            "missing description",
            "name: mypack\nversion: 1.0.0\nauthor: me\n",
            &["pack.yaml", "description"],
        ),
        (
            "non-semver version",
            "name: mypack\ndescription: d\nversion: one\nauthor: me\n",
            &["pack.yaml", "version"],
        ),
        (
            "invalid ref",
            "name: My Pack\ndescription: d\nversion: 1.0.0\nauthor: me\n",
            &["pack.yaml", "ref"],
        ),
        ("malformed", "name: [mypack\n", &["pack.yaml", "line"]),
    ];
    for (name, yaml, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let packs = dir.path().join("packs");
        let dirname = if name == "invalid ref" {
            "My-Pack"
        } else {
            "mypack"
        };
        write_pack(&packs, dirname, yaml);
        let env = Env::new(&[packs.to_str().unwrap()]);
        let out = env.sensorctl(&["reload", "--register-all"]);
        assert!(!out.status.success(), "{name}: expected failure");
        for needle in expect {
            assert!(
                stderr(&out).contains(needle),
                "{name}: should mention {needle:?}: {}",
                stderr(&out)
            );
        }
        assert_eq!(
            env.sensorctl_json(&["pack", "list", "--json"]),
            Value::Array(vec![]),
            "{name}"
        );
    }
}

#[test]
fn unknown_trigger_type_keys_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let pack = write_pack(&dir.path().join("packs"), "mypack", GOOD_PACK);
    fs::write(pack.join("sensors/good.py"), "class Good: pass\n").unwrap();
    fs::write(
        pack.join("sensors/good.yaml"),
        "class_name: Good\nentry_point: good.py\ntrigger_types:\n  - name: ev\n    payload_info: [a, b]\n    whatever: 1\n",
    )
    .unwrap();
    let env = Env::new(&[dir.path().join("packs").to_str().unwrap()]);
    env.register();
    let tt = env.sensorctl_json(&["trigger-type", "get", "mypack.ev", "--json"]);
    assert_eq!(tt["ref"], "mypack.ev");
}

#[test]
fn duplicate_pack_refs_first_path_wins_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_pack(&dir.path().join("a"), "mypack", GOOD_PACK);
    good_sensor(&first);
    let second = write_pack(&dir.path().join("b"), "mypack", GOOD_PACK);
    fs::write(second.join("sensors/other.py"), "class Other: pass\n").unwrap();
    fs::write(
        second.join("sensors/other.yaml"),
        "class_name: Other\nentry_point: other.py\n",
    )
    .unwrap();
    let env = Env::new(&[
        dir.path().join("a").to_str().unwrap(),
        dir.path().join("b").to_str().unwrap(),
    ]);
    let out = env.sensorctl(&["reload", "--register-all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(dir.path().join("b").to_str().unwrap()),
        "{}",
        stderr(&out)
    );
    let sensors = refs(&env.sensorctl_json(&["sensor", "list", "--json"]));
    assert_eq!(sensors, vec!["mypack.Good"]);
}

#[test]
fn help_text_on_every_command() {
    let env = Env::new(&["packs"]);
    for args in [
        vec!["--help"],
        vec!["reload", "--help"],
        vec!["sensor", "--help"],
        vec!["sensor", "list", "--help"],
        vec!["trigger-type", "get", "--help"],
        vec!["trigger-instance", "list", "--help"],
    ] {
        let out = env.sensorctl(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(stdout(&out).contains("Usage"), "{args:?}: {}", stdout(&out));
    }
}
