//! `config.schema.yaml` and `<configs_dir>/<pack>.yaml`.

use serde_json::json;

use super::*;

const SCHEMA: &str = "\
api_key:
  type: string
  required: true
  secret: true
api:
  type: object
  properties:
    host: {type: string, default: localhost}
    port: {type: integer, default: 8080}
    tls:
      type: object
      properties:
        verify: {type: boolean, default: true}
debug:
  type: boolean
  default: false
";

/// Pack `p` with a sensor, `SCHEMA` and, if given, a config file.
fn pack_with_config(config: Option<&str>) -> Fixture {
    let f = Fixture::new();
    f.pack("p");
    f.sensor("p", "s.yaml", "class_name: S\nentry_point: sensor.py\n");
    f.write("packs/p/config.schema.yaml", SCHEMA);
    if let Some(text) = config {
        f.write("configs/p.yaml", text);
    }
    f
}

/// One error naming `configs/p.yaml`; the pack and its sensor still load.
fn bad_config(config: &str, field: &str) -> String {
    let f = pack_with_config(Some(config));
    let report = f.load();
    let err = only_error(&report);
    assert_names(err, "configs/p.yaml", field);
    let [loaded] = report.packs.as_slice() else {
        panic!("pack still loads")
    };
    assert_eq!(loaded.sensors.len(), 1, "sensors still load");
    assert_eq!(loaded.config, None);
    assert!(loaded.config_schema.is_some());
    err.to_string()
}

#[test]
fn config_violating_schema_names_the_attribute_path() {
    let msg = bad_config("api_key: k\napi:\n  port: abc\n", "config.api.port");
    assert!(
        msg.ends_with(r#"field 'config.api.port': "abc" is not of type "integer""#),
        "{msg}"
    );
}

#[test]
fn required_key_missing_from_config_file_is_an_error() {
    let msg = bad_config("debug: true\n", "config");
    assert!(msg.contains(r#""api_key" is a required property"#), "{msg}");
}

#[test]
fn required_key_without_config_file_gives_defaults_only() {
    let f = pack_with_config(None);
    let report = f.load();
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    let config = report.packs[0]
        .config
        .as_ref()
        .expect("defaults-only config");
    assert_eq!(config.file, None);
    assert_eq!(config.pack, "p");
    assert_eq!(
        config.values,
        json!({"api": {"host": "localhost", "port": 8080, "tls": {"verify": true}}, "debug": false})
    );
}

#[test]
fn nested_defaults_are_filled_into_a_config_file() {
    let f = pack_with_config(Some("api_key: k\napi:\n  host: example.org\nextra: kept\n"));
    let report = f.load();
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    let config = report.packs[0].config.as_ref().expect("config");
    assert!(config
        .file
        .as_ref()
        .is_some_and(|p| p.ends_with("configs/p.yaml")));
    assert_eq!(
        config.values,
        json!({
            "api_key": "k",
            "api": {"host": "example.org", "port": 8080, "tls": {"verify": true}},
            "debug": false,
            "extra": "kept"
        })
    );
}

#[test]
fn yaml11_booleans_in_config_follow_the_schema() {
    let f = pack_with_config(Some(
        "api_key: k\ndebug: yes\napi:\n  tls:\n    verify: Off\n",
    ));
    let report = f.load();
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    let values = &report.packs[0].config.as_ref().expect("config").values;
    assert_eq!(values["debug"], json!(true));
    assert_eq!(values["api"]["tls"]["verify"], json!(false));
}

#[test]
fn optional_config_key_may_be_null() {
    let f = pack_with_config(Some("api_key: k\ndebug: null\n"));
    let report = f.load();
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    assert_eq!(
        report.packs[0].config.as_ref().expect("config").values["debug"],
        json!(null)
    );
}

#[test]
fn empty_config_schema_is_an_error() {
    for text in ["", "---\n", "~\n", "[]\n", "{}\n"] {
        let f = Fixture::new();
        f.pack("p");
        f.sensor("p", "s.yaml", "class_name: S\nentry_point: sensor.py\n");
        f.write("packs/p/config.schema.yaml", text);
        let report = f.load();
        let err = only_error(&report);
        let msg = err.to_string();
        assert!(err.file().ends_with("p/config.schema.yaml"), "{msg}");
        assert!(
            msg.contains("pack 'p'") && msg.contains("config schema is empty and invalid"),
            "{text:?}: {msg}"
        );
        assert_eq!(report.packs[0].sensors.len(), 1);
        assert_eq!(report.packs[0].config, None);
        assert_eq!(report.packs[0].config_schema, None);
    }
}

#[test]
fn invalid_config_schema_is_an_error() {
    let f = Fixture::new();
    f.pack("p");
    f.write(
        "packs/p/config.schema.yaml",
        "port:\n  type: integer\n  minimum: low\n",
    );
    let report = f.load();
    let msg = only_error(&report).to_string();
    assert!(
        msg.contains("config.schema.yaml") && msg.contains("invalid config schema"),
        "{msg}"
    );
}

#[test]
fn config_without_schema_is_accepted_as_is() {
    let f = Fixture::new();
    f.pack("p");
    f.write("configs/p.yaml", "anything: [1, 2]\nflag: yes\n");
    let report = f.load();
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    let config = report.packs[0].config.as_ref().expect("config");
    assert_eq!(config.values, json!({"anything": [1, 2], "flag": "yes"}));
    assert_eq!(report.packs[0].config_schema, None);
}

#[test]
fn no_schema_and_no_config_file_means_no_config() {
    let f = Fixture::new();
    f.pack("p");
    let report = f.load();
    assert_eq!(report.packs[0].config, None);
}

#[test]
fn malformed_config_yaml_reports_line_and_column() {
    let f = pack_with_config(Some("api_key: k\napi: {port: 1\n"));
    let report = f.load();
    let err = only_error(&report);
    let msg = err.to_string();
    assert!(err.file().ends_with("configs/p.yaml"), "{msg}");
    assert!(
        matches!(
            err,
            ContentError::Yaml {
                line: Some(_),
                column: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(msg.contains("line ") && msg.contains("column "), "{msg}");
    assert_eq!(report.packs[0].sensors.len(), 1);
    assert_eq!(report.packs[0].config, None);
}

#[test]
fn config_that_is_not_a_mapping_is_an_error() {
    let f = pack_with_config(Some("- a\n- b\n"));
    let report = f.load();
    let msg = only_error(&report).to_string();
    assert!(
        msg.contains("configs/p.yaml") && msg.contains("expected a mapping"),
        "{msg}"
    );
}
