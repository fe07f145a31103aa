//! Sensor metadata and trigger types.

use super::*;

/// Load pack `p` with one sensor file `s.yaml` holding `yaml`.
fn load_one(yaml: &str) -> (Fixture, LoadReport) {
    let f = Fixture::new();
    f.pack("p");
    f.sensor("p", "s.yaml", yaml);
    let report = f.load();
    (f, report)
}

/// Load one bad sensor; assert one error naming `s.yaml` and `field`, and
/// that the pack itself still loaded without the sensor.
fn bad_sensor(yaml: &str, field: &str) -> String {
    let (_f, report) = load_one(yaml);
    let err = only_error(&report);
    assert_names(err, "p/sensors/s.yaml", field);
    assert_eq!(report.packs.len(), 1, "the pack still loads");
    assert!(report.packs[0].sensors.is_empty());
    assert!(report.failed_packs.is_empty());
    err.to_string()
}

#[test]
fn missing_class_name_is_an_error() {
    let msg = bad_sensor("entry_point: sensor.py\n", "class_name");
    assert!(
        msg.contains("pack 'p'") && msg.contains("required field is missing"),
        "{msg}"
    );
}

#[test]
fn missing_entry_point_is_an_error() {
    bad_sensor("class_name: S\n", "entry_point");
}

#[test]
fn entry_point_that_does_not_exist_is_an_error() {
    let msg = bad_sensor("class_name: S\nentry_point: nope.py\n", "entry_point");
    assert!(
        msg.contains("nope.py") && msg.contains("does not exist"),
        "{msg}"
    );
}

#[test]
fn poll_interval_below_4_is_an_error() {
    let msg = bad_sensor(
        "class_name: S\nentry_point: sensor.py\npoll_interval: 3\n",
        "poll_interval",
    );
    assert!(msg.contains("at least 4 seconds, found 3"), "{msg}");
    let (_f, ok) = load_one("class_name: S\nentry_point: sensor.py\npoll_interval: 4\n");
    assert!(ok.errors.is_empty());
    assert_eq!(ok.packs[0].sensors[0].poll_interval, Some(4));
}

#[test]
fn non_integer_poll_interval_is_an_error() {
    bad_sensor(
        "class_name: S\nentry_point: sensor.py\npoll_interval: '10'\n",
        "poll_interval",
    );
}

#[test]
fn pack_field_differing_from_directory_is_an_error() {
    let msg = bad_sensor(
        "class_name: S\nentry_point: sensor.py\npack: other\n",
        "pack",
    );
    assert!(msg.contains("'other'") && msg.contains("'p'"), "{msg}");
    let (_f, ok) = load_one("class_name: S\nentry_point: sensor.py\npack: p\n");
    assert!(ok.errors.is_empty());
}

#[test]
fn malformed_sensor_yaml_reports_line_and_column() {
    let (_f, report) = load_one("class_name: S\nentry_point: sensor.py\n  bad: indent\n");
    let err = only_error(&report);
    let msg = err.to_string();
    assert!(err.file().ends_with("sensors/s.yaml"), "{msg}");
    let ContentError::Yaml {
        line: Some(line),
        column: Some(column),
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert!(
        msg.contains(&format!("line {line} column {column}")),
        "{msg}"
    );
    assert_eq!(*line, 3, "{msg}");
    assert_eq!(report.packs.len(), 1);
}

#[test]
fn yaml11_booleans_for_enabled() {
    let f = Fixture::new();
    f.pack("p");
    let cases = [
        ("a", "yes", true),
        ("b", "No", false),
        ("c", "OFF", false),
        ("d", "on", true),
        ("e", "True", true),
        ("f", "false", false),
    ];
    for (name, word, _) in cases {
        f.sensor(
            "p",
            &format!("{name}.yaml"),
            &format!("class_name: {name}\nentry_point: sensor.py\nenabled: {word}\n"),
        );
    }
    f.sensor("p", "g.yaml", "class_name: g\nentry_point: sensor.py\n");
    let report = f.load();
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    let sensors = &report.packs[0].sensors;
    for ((name, word, expected), sensor) in cases.iter().zip(sensors) {
        assert_eq!(&sensor.class_name, name);
        assert_eq!(sensor.enabled, *expected, "enabled: {word}");
    }
    assert!(sensors[6].enabled, "default is enabled");
}

#[test]
fn enabled_that_is_not_a_boolean_is_an_error() {
    let msg = bad_sensor(
        "class_name: S\nentry_point: sensor.py\nenabled: maybe\n",
        "enabled",
    );
    assert!(msg.contains("'maybe'"), "{msg}");
}

#[test]
fn unknown_runner_type_is_an_error_listing_valid_ones() {
    let msg = bad_sensor(
        "class_name: S\nentry_point: sensor.py\nrunner_type: shell\n",
        "runner_type",
    );
    assert!(
        msg.contains("'shell'") && msg.contains("valid: python, exec"),
        "{msg}"
    );
    let (_f, ok) = load_one("class_name: S\nentry_point: sensor.py\nrunner_type: python\n");
    assert!(ok.errors.is_empty());
}

#[test]
fn exec_sensors_need_an_executable_and_take_args() {
    use std::os::unix::fs::PermissionsExt;
    let msg = bad_sensor(
        "class_name: S\nentry_point: sensor.py\nrunner_type: exec\n",
        "entry_point",
    );
    assert!(msg.contains("not executable"), "{msg}");
    let msg = bad_sensor("class_name: S\nentry_point: sensor.py\nargs: [a]\n", "args");
    assert!(msg.contains("only `runner_type: exec`"), "{msg}");

    let f = Fixture::new();
    f.pack("p");
    let yaml = f.sensor(
        "p",
        "s.yaml",
        "class_name: S\nentry_point: sensor.py\nrunner_type: exec\nargs: [--fast, '2']\n",
    );
    let exe = yaml.parent().unwrap().join("sensor.py");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let report = f.load();
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    let s = &report.packs[0].sensors[0];
    assert_eq!(s.runner_type, crate::RunnerType::Exec);
    assert_eq!(s.args, vec!["--fast", "2"]);
    let f2 = Fixture::new();
    f2.pack("p");
    f2.sensor(
        "p",
        "s.yaml",
        "class_name: S\nentry_point: sensor.py\nrunner_type: exec\nargs: [1]\n",
    );
    let bad = f2.load();
    assert_names(only_error(&bad), "p/sensors/s.yaml", "args[0]");
}

#[test]
fn trigger_type_unknown_keys_are_ignored() {
    let (_f, report) = load_one(
        "class_name: S\nentry_point: sensor.py\ntrigger_types:\n  - name: event\n    pack: whatever\n    \
         payload_info: [a, b]\n    parameters_schema:\n      type: object\n      properties:\n        \
         path: {type: string, required: true}\n",
    );
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    let tt = &report.packs[0].trigger_types[0];
    assert_eq!(tt.type_ref, "p.event");
    assert_eq!(tt.pack, "p");
    assert_eq!(tt.payload_schema, serde_json::json!({}));
    assert!(tt.parameters_schema.is_some());
}

#[test]
fn trigger_type_without_name_is_an_error() {
    bad_sensor(
        "class_name: S\nentry_point: sensor.py\ntrigger_types:\n  - name: ok\n  - description: no name\n",
        "trigger_types[1].name",
    );
}

#[test]
fn trigger_type_with_invalid_schema_is_an_error() {
    let msg = bad_sensor(
        "class_name: S\nentry_point: sensor.py\ntrigger_types:\n  - name: t\n    payload_schema:\n      type: nonsense\n",
        "trigger_types[0].payload_schema",
    );
    assert!(msg.contains("invalid schema"), "{msg}");
}

#[test]
fn duplicate_class_name_in_pack_rejects_the_second() {
    let f = Fixture::new();
    f.pack("p");
    f.sensor("p", "a.yaml", "class_name: S\nentry_point: sensor.py\n");
    f.sensor("p", "b.yml", "class_name: S\nentry_point: sensor.py\n");
    let report = f.load();
    assert_names(only_error(&report), "sensors/b.yml", "class_name");
    assert_eq!(report.packs[0].sensors.len(), 1);
    assert!(report.packs[0].sensors[0].metadata_file.ends_with("a.yaml"));
}

#[test]
fn bad_sensor_does_not_stop_the_rest_of_the_pack() {
    let f = Fixture::new();
    f.pack("p");
    f.sensor("p", "a.yaml", "class_name: A\nentry_point: sensor.py\n");
    f.sensor("p", "b.yaml", "class_name: B\n");
    f.sensor("p", "c.yml", "class_name: C\nentry_point: sensor.py\n");
    f.write("packs/p/sensors/notes.txt", "ignored");
    let report = f.load();
    assert_names(only_error(&report), "sensors/b.yaml", "entry_point");
    let names: Vec<_> = report.packs[0]
        .sensors
        .iter()
        .map(|s| s.class_name.as_str())
        .collect();
    assert_eq!(names, ["A", "C"]);
}

#[test]
fn content_hash_follows_metadata_and_entry_point() {
    let (f, first) = load_one("class_name: S\nentry_point: sensor.py\n");
    let hash = |r: &LoadReport| r.packs[0].sensors[0].content_hash.clone();
    let h1 = hash(&first);
    assert_eq!(h1, hash(&f.load()), "stable");
    f.write("packs/p/sensors/sensor.py", "class S: x = 1\n");
    let h2 = hash(&f.load());
    assert_ne!(h1, h2);
    f.write(
        "packs/p/sensors/s.yaml",
        "class_name: S\nentry_point: sensor.py\ndescription: new\n",
    );
    assert_ne!(h2, hash(&f.load()));
}

#[test]
fn standalone_trigger_types_are_loaded() {
    let f = Fixture::new();
    f.pack("p");
    f.write(
        "packs/p/triggers/b.yaml",
        "name: second\npayload_info: [x]\ntags: [{name: t, value: v}]\n",
    );
    f.write(
        "packs/p/triggers/a.yml",
        "name: first\nparameters_schema: {type: object}\n",
    );
    let report = f.load();
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    let refs: Vec<_> = report.packs[0]
        .trigger_types
        .iter()
        .map(|t| t.type_ref.as_str())
        .collect();
    assert_eq!(refs, ["p.first", "p.second"]);
    assert_eq!(report.packs[0].trigger_types[1].tags, ["t"]);
}

#[test]
fn a_trigger_type_declared_twice_registers_once_and_warns_only_when_they_differ() {
    let f = Fixture::new();
    f.pack("p");
    f.write("packs/p/triggers/a.yaml", "name: event\n");
    f.write("packs/p/triggers/b.yaml", "name: event\n");
    let schema = "payload_schema: {type: object, properties: {n: {type: integer}}}";
    f.sensor(
        "p",
        "s1.yaml",
        &format!("class_name: S1\nentry_point: sensor.py\ntrigger_types:\n  - name: shared\n    {schema}\n"),
    );
    f.sensor(
        "p",
        "s2.yaml",
        &format!("class_name: S2\nentry_point: sensor.py\ntrigger_types:\n  - name: shared\n    {schema}\n  - name: event\n    description: from s2\n"),
    );
    let report = f.load();
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    let pack = &report.packs[0];
    assert_eq!(pack.sensors.len(), 2);
    let refs: Vec<&str> = pack
        .trigger_types
        .iter()
        .map(|t| t.type_ref.as_str())
        .collect();
    assert_eq!(refs, vec!["p.event", "p.shared"]);
    // Identical declarations (a.yaml/b.yaml, s1/s2 'shared') say nothing;
    // s2's different 'event' wins and is named.
    assert_eq!(report.warnings.len(), 1, "{:#?}", report.warnings);
    let w = &report.warnings[0];
    assert!(
        w.contains("'p.event'") && w.contains("description") && w.contains("s2.yaml"),
        "{w}"
    );
    let event = pack
        .trigger_types
        .iter()
        .find(|t| t.type_ref == "p.event")
        .unwrap();
    assert_eq!(event.description.as_deref(), Some("from s2"));
    assert!(event.metadata_file.ends_with("sensors/s2.yaml"));
}

#[test]
fn entry_points_must_stay_inside_their_pack() {
    let f = Fixture::new();
    f.pack("p");
    f.write("outside.py", "class S: pass\n");
    f.sensor(
        "p",
        "a.yaml",
        "class_name: A\nentry_point: ../../../outside.py\n",
    );
    f.sensor(
        "p",
        "b.yaml",
        "class_name: B\nentry_point: /usr/bin/touch\nrunner_type: exec\n",
    );
    let link = f.path("packs/p/sensors/link.py");
    std::os::unix::fs::symlink(f.path("outside.py"), &link).unwrap();
    f.sensor("p", "c.yaml", "class_name: C\nentry_point: link.py\n");
    let report = f.load();
    let errs = messages(&report);
    assert_eq!(report.errors.len(), 3, "{errs:#?}");
    for e in &errs {
        assert!(
            e.contains("outside the pack directory") && e.contains("entry_point"),
            "{e}"
        );
    }
    assert!(report.packs[0].sensors.is_empty());
}
