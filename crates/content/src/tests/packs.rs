//! `pack.yaml`, pack refs and the search path.

use super::*;

const GOOD_SENSOR: &str = "class_name: S\nentry_point: sensor.py\n";

/// A pack directory `dir` whose pack.yaml is `yaml`.
fn pack_with(f: &Fixture, dir: &str, yaml: &str) -> PathBuf {
    f.write(&format!("packs/{dir}/pack.yaml"), yaml)
}

fn assert_pack_failed(f: &Fixture, dir: &str, yaml: &str, field: &str, failed_ref: &str) -> String {
    pack_with(f, dir, yaml);
    let report = f.load();
    let err = only_error(&report);
    assert_names(err, &format!("{dir}/pack.yaml"), field);
    assert!(report.packs.is_empty());
    assert_eq!(report.failed_packs, vec![failed_ref.to_string()]);
    err.to_string()
}

#[test]
fn valid_pack_loads_with_sensor_and_trigger_types() {
    let f = Fixture::new();
    pack_with(
        &f,
        "demo",
        "name: Demo\ndescription: d\nversion: 1.2.3\nauthor: me\nemail: me@example.com\n\
         keywords: [a]\npython_versions: ['3']\n",
    );
    f.write("packs/demo/actions/a.yaml", "not: [a sensor");
    f.write("packs/demo/rules/r.yaml", "{{{");
    f.write("packs/demo/icon.png", "png");
    f.sensor(
        "demo",
        "watch.yaml",
        "class_name: FileWatchSensor\nentry_point: sensor.py\ndescription: watches\npoll_interval: 30\n\
         trigger_types:\n  - name: file_watch.line\n    description: a line\n    payload_schema:\n      \
         type: object\n      properties:\n        line: {type: string}\n    tags: [files]\n",
    );
    let report = f.load();
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let [loaded] = report.packs.as_slice() else {
        panic!("one pack expected")
    };
    assert_eq!(loaded.pack.pack_ref, "demo");
    assert_eq!(loaded.pack.name, "Demo");
    assert_eq!(loaded.pack.version, "1.2.3");
    assert_eq!(loaded.pack.email.as_deref(), Some("me@example.com"));
    assert!(loaded.pack.path.is_absolute());
    let [sensor] = loaded.sensors.as_slice() else {
        panic!("one sensor expected")
    };
    assert_eq!(sensor.sensor_ref, "demo.FileWatchSensor");
    assert_eq!(sensor.poll_interval, Some(30));
    assert!(sensor.enabled);
    assert_eq!(sensor.runner_type, crate::RunnerType::Python);
    assert_eq!(
        sensor.entry_point,
        f.path("packs/demo/sensors/sensor.py")
            .canonicalize()
            .unwrap()
    );
    assert_eq!(
        sensor.trigger_types,
        vec!["demo.file_watch.line".to_string()]
    );
    assert_eq!(sensor.content_hash.len(), 32);
    let [tt] = loaded.trigger_types.as_slice() else {
        panic!("one trigger type expected")
    };
    assert_eq!(tt.type_ref, "demo.file_watch.line");
    assert_eq!(tt.tags, vec!["files".to_string()]);
    assert_eq!(tt.parameters_schema, None);
    assert_eq!(loaded.config, None);
    assert_eq!(loaded.config_schema, None);
}

#[test]
fn missing_name_is_an_error() {
    let f = Fixture::new();
    let msg = assert_pack_failed(
        &f,
        "p",
        "description: d\nversion: 0.1.0\nauthor: a\n",
        "name",
        "p",
    );
    assert!(
        msg.contains("pack 'p'") && msg.contains("required field is missing"),
        "{msg}"
    );
}

#[test]
fn missing_description_is_an_error() {
    let f = Fixture::new();
    assert_pack_failed(
        &f,
        "p",
        "name: p\nversion: 0.1.0\nauthor: a\n",
        "description",
        "p",
    );
}

#[test]
fn missing_version_is_an_error() {
    let f = Fixture::new();
    assert_pack_failed(
        &f,
        "p",
        "name: p\ndescription: d\nauthor: a\n",
        "version",
        "p",
    );
}

#[test]
fn missing_author_is_an_error() {
    let f = Fixture::new();
    assert_pack_failed(
        &f,
        "p",
        "name: p\ndescription: d\nversion: 0.1.0\n",
        "author",
        "p",
    );
}

#[test]
fn non_semver_version_is_an_error() {
    let f = Fixture::new();
    let msg = assert_pack_failed(
        &f,
        "p",
        "name: p\ndescription: d\nversion: 'one'\nauthor: a\n",
        "version",
        "p",
    );
    assert!(msg.contains("'one' is not a semantic version"), "{msg}");
}

#[test]
fn bare_number_version_is_read_as_text_and_rejected() {
    for (yaml_version, text) in [("0.1", "'0.1'"), ("1.0", "'1.0'"), ("1", "'1'")] {
        let f = Fixture::new();
        let yaml = format!("name: p\ndescription: d\nversion: {yaml_version}\nauthor: a\n");
        let msg = assert_pack_failed(&f, "p", &yaml, "version", "p");
        assert!(msg.contains(text), "{msg}");
    }
}

#[test]
fn dir_and_name_not_valid_refs_is_an_error() {
    let f = Fixture::new();
    let msg = assert_pack_failed(
        &f,
        "My-Pack",
        "name: My Pack\ndescription: d\nversion: 0.1.0\nauthor: a\n",
        "ref",
        "My-Pack",
    );
    assert!(
        msg.contains("'My-Pack'") && msg.contains("'My Pack'"),
        "{msg}"
    );
}

#[test]
fn explicit_invalid_ref_is_an_error() {
    let f = Fixture::new();
    let msg = assert_pack_failed(
        &f,
        "good",
        "ref: Bad-Ref\nname: good\ndescription: d\nversion: 0.1.0\nauthor: a\n",
        "ref",
        "good",
    );
    assert!(msg.contains("'Bad-Ref' is not a valid pack ref"), "{msg}");
}

#[test]
fn ref_rules_follow_stackstorm() {
    let f = Fixture::new();
    // Explicit ref wins over a valid directory name.
    pack_with(
        &f,
        "hello",
        "ref: hello_st2\nname: Hello StackStorm\ndescription: d\nversion: 0.1.0\nauthor: a\n",
    );
    // Directory name is used when valid, before `name`.
    pack_with(
        &f,
        "by_dir",
        "name: other_name\ndescription: d\nversion: 0.1.0\nauthor: a\n",
    );
    // `name` is the last resort.
    pack_with(
        &f,
        "By-Name",
        "name: by_name\ndescription: d\nversion: 0.1.0\nauthor: a\n",
    );
    let report = f.load();
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    let refs: Vec<_> = report
        .packs
        .iter()
        .map(|p| p.pack.pack_ref.as_str())
        .collect();
    assert_eq!(refs, ["by_name", "by_dir", "hello_st2"]);
}

#[test]
fn malformed_pack_yaml_reports_line_and_column() {
    let f = Fixture::new();
    pack_with(&f, "p", "name: p\ndescription: [unclosed\nversion: 0.1.0\n");
    let report = f.load();
    let err = only_error(&report);
    let msg = err.to_string();
    assert!(err.file().ends_with("p/pack.yaml"), "{msg}");
    assert!(
        msg.contains("invalid YAML") && msg.contains("line ") && msg.contains("column "),
        "{msg}"
    );
    let ContentError::Yaml {
        line: Some(_),
        column: Some(_),
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(report.failed_packs, ["p"]);
}

#[test]
fn pack_yaml_that_is_not_a_mapping_is_an_error() {
    let f = Fixture::new();
    pack_with(&f, "p", "- just\n- a list\n");
    let report = f.load();
    let msg = only_error(&report).to_string();
    assert!(
        msg.contains("expected a mapping") && msg.contains("pack.yaml"),
        "{msg}"
    );
}

#[test]
fn duplicate_pack_refs_across_paths_first_wins_with_warning() {
    let f = Fixture::new();
    f.write(
        "first/dup/pack.yaml",
        "name: dup\ndescription: first\nversion: 0.1.0\nauthor: a\n",
    );
    f.write(
        "second/dup/pack.yaml",
        "name: dup\ndescription: second\nversion: 0.2.0\nauthor: a\n",
    );
    f.write(
        "second/other/pack.yaml",
        "name: other\ndescription: d\nversion: 0.1.0\nauthor: a\n",
    );
    let report = f.load_paths(&["first", "second"]);
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    let descriptions: Vec<_> = report
        .packs
        .iter()
        .map(|p| p.pack.description.as_str())
        .collect();
    assert_eq!(descriptions, ["first", "d"]);
    let [warning] = report.warnings.as_slice() else {
        panic!("{:?}", report.warnings)
    };
    assert!(
        warning.contains("first/dup") && warning.contains("second/dup"),
        "{warning}"
    );
}

#[test]
fn broken_first_copy_still_owns_the_ref() {
    let f = Fixture::new();
    f.write(
        "first/dup/pack.yaml",
        "name: dup\ndescription: first\nauthor: a\n",
    );
    f.write(
        "second/dup/pack.yaml",
        "name: dup\ndescription: second\nversion: 0.2.0\nauthor: a\n",
    );
    let report = f.load_paths(&["first", "second"]);
    assert_names(only_error(&report), "first/dup/pack.yaml", "version");
    assert!(report.packs.is_empty());
    assert_eq!(report.failed_packs, ["dup"]);
    assert_eq!(report.warnings.len(), 1);
}

#[test]
fn missing_packs_path_is_a_warning() {
    let f = Fixture::new();
    f.pack("p");
    let report = f.load_paths(&["nowhere", "packs"]);
    assert!(report.errors.is_empty());
    assert_eq!(report.packs.len(), 1);
    assert!(
        report.warnings[0].contains("nowhere"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn packs_are_sorted_and_dirs_without_pack_yaml_ignored() {
    let f = Fixture::new();
    f.pack("zeta");
    f.pack("alpha");
    f.write("packs/not_a_pack/README.md", "hi");
    f.sensor("alpha", "s.yaml", GOOD_SENSOR);
    let report = f.load();
    let refs: Vec<_> = report
        .packs
        .iter()
        .map(|p| p.pack.pack_ref.as_str())
        .collect();
    assert_eq!(refs, ["alpha", "zeta"]);
}
