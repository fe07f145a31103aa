use super::*;
use serde_json::json;

fn compile(schema: Value) -> CompiledSchema {
    CompiledSchema::compile(&schema).expect("schema compiles")
}

#[test]
fn required_true_is_enforced() {
    let s = compile(json!({"type": "object", "properties": {
        "name": {"type": "string", "required": true},
        "note": {"type": "string"}
    }}));
    assert_eq!(s.schema()["required"], json!(["name"]));
    assert!(s.schema()["properties"]["name"].get("required").is_none());
    let err = s.validate(&json!({"note": "x"})).unwrap_err();
    assert_eq!(err.path, "");
    assert!(
        err.reason.contains("\"name\" is a required property"),
        "{err:?}"
    );
    assert!(s.validate(&json!({"name": "a"})).is_ok());
}

#[test]
fn required_false_and_yaml11_required_are_understood() {
    let s = compile(json!({"properties": {
        "a": {"type": "string", "required": false},
        "b": {"type": "string", "required": "yes"}
    }}));
    assert_eq!(s.schema()["required"], json!(["b"]));
}

#[test]
fn optional_typed_properties_accept_null() {
    let s = compile(json!({"type": "object", "properties": {
        "name": {"type": "string", "required": true},
        "count": {"type": "integer"},
        "either": {"type": ["integer", "string"]},
        "nested": {"type": "object", "properties": {"deep": {"type": "boolean"}}}
    }}));
    assert!(s
        .validate(&json!({"name": "a", "count": null, "either": null}))
        .is_ok());
    assert!(s
        .validate(&json!({"name": "a", "nested": {"deep": null}}))
        .is_ok());
    // Required properties do not.
    let err = s.validate(&json!({"name": null})).unwrap_err();
    assert_eq!(err.path, "/name");
    assert!(s.validate(&json!({"name": "a", "count": "x"})).is_err());
}

#[test]
fn required_array_properties_do_not_accept_null() {
    let s = compile(
        json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}),
    );
    assert!(s.validate(&json!({"n": null})).is_err());
}

#[test]
fn additional_properties_false_rejects_extra_keys() {
    let s = compile(
        json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}),
    );
    assert!(s.validate(&json!({"a": "x"})).is_ok());
    let err = s.validate(&json!({"a": "x", "b": 1})).unwrap_err();
    assert!(
        err.reason.contains("Additional properties are not allowed"),
        "{err:?}"
    );
}

#[test]
fn defaults_satisfy_required_without_modifying_instance() {
    let s = compile(json!({"type": "object", "properties": {
        "port": {"type": "integer", "required": true, "default": 8080},
        "api": {"type": "object", "properties": {"host": {"type": "string", "required": true, "default": "h"}}}
    }}));
    let instance = json!({});
    assert!(s.validate(&instance).is_ok());
    assert_eq!(instance, json!({}));
    assert_eq!(
        s.with_defaults(&instance),
        json!({"port": 8080, "api": {"host": "h"}})
    );
}

#[test]
fn violation_path_is_a_json_pointer() {
    let s = compile(json!({"type": "object", "properties": {
        "api": {"type": "object", "properties": {"port": {"type": "integer"}}}
    }}));
    let err = s.validate(&json!({"api": {"port": "abc"}})).unwrap_err();
    assert_eq!(err.path, "/api/port");
    assert_eq!(err.reason, r#""abc" is not of type "integer""#);
}

#[test]
fn empty_schema_accepts_everything() {
    let s = compile(json!({}));
    assert!(s.is_empty());
    assert!(s.validate(&json!({"anything": [1, 2]})).is_ok());
    assert!(!compile(json!({"type": "object"})).is_empty());
}

#[test]
fn invalid_schemas_do_not_compile() {
    assert!(CompiledSchema::compile(&json!({"type": "no-such-type"})).is_err());
    assert!(CompiledSchema::compile(&json!({"properties": {"a": {"minimum": "x"}}})).is_err());
    assert!(CompiledSchema::compile(&json!("string")).is_err());
    assert!(CompiledSchema::compile(&json!(null)).is_err());
}

#[test]
fn format_is_not_checked_as_in_stackstorm() {
    let s = compile(json!({"properties": {"when": {"type": "string", "format": "date-time"}}}));
    assert!(s.validate(&json!({"when": "not a date"})).is_ok());
}

#[test]
fn fill_defaults_only_fills_missing_keys_recursively() {
    let schema = json!({"type": "object", "properties": {
        "a": {"type": "integer", "default": 1},
        "b": {"type": "integer", "default": 2},
        "deep": {"type": "object", "properties": {
            "x": {"type": "string", "default": "dx"},
            "inner": {"type": "object", "properties": {"y": {"default": [1]}}}
        }},
        "bare": {"type": "object", "properties": {"z": {"type": "string"}}}
    }});
    let mut v = json!({"b": null, "deep": {"x": "mine"}});
    fill_defaults(&schema, &mut v);
    assert_eq!(
        v,
        json!({"a": 1, "b": null, "deep": {"x": "mine", "inner": {"y": [1]}}})
    );

    let mut empty = json!({});
    fill_defaults(&schema, &mut empty);
    assert_eq!(
        empty,
        json!({"a": 1, "b": 2, "deep": {"x": "dx", "inner": {"y": [1]}}})
    );

    // Non-objects are left alone.
    let mut s = json!("text");
    fill_defaults(&schema, &mut s);
    assert_eq!(s, json!("text"));
}

#[test]
fn config_schema_wraps_top_level_keys() {
    let s = CompiledSchema::compile_config(&json!({
        "api_key": {"type": "string", "required": true, "secret": true},
        "timeout": {"type": "integer", "default": 5}
    }))
    .unwrap();
    assert!(s.validate(&json!({"api_key": "k", "extra": true})).is_ok());
    let err = s.validate(&json!({"extra": true})).unwrap_err();
    assert!(err.reason.contains("api_key"), "{err:?}");
    assert_eq!(s.with_defaults(&json!({})), json!({"timeout": 5}));
}

#[test]
fn empty_config_schema_is_an_error() {
    for bad in [json!(null), json!({}), json!([1]), json!("x")] {
        let err = CompiledSchema::compile_config(&bad).unwrap_err();
        assert!(
            err.contains("config schema is empty and invalid"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn fill_defaults_walks_array_items_tuples_and_additional_properties() {
    let schema = json!({"type": "object", "properties": {
        "repositories": {"type": "array", "items": {"type": "object", "properties": {
            "url": {"type": "string"},
            "branch": {"type": "string", "default": "master"}
        }}},
        "pair": {"type": "array",
            "items": [{"type": "object", "properties": {"a": {"default": 1}}}],
            "additionalItems": {"type": "object", "properties": {"b": {"default": 2}}}},
        "hosts": {"type": "object", "additionalProperties": {"type": "object", "properties": {
            "port": {"type": "integer", "default": 22}
        }}}
    }});
    let mut v = json!({
        "repositories": [{"url": "u1"}, {"url": "u2", "branch": "dev"}],
        "pair": [{}, {}, {"b": 3}],
        "hosts": {"web": {}, "db": {"port": 5432}}
    });
    fill_defaults(&schema, &mut v);
    assert_eq!(
        v,
        json!({
            "repositories": [{"url": "u1", "branch": "master"}, {"url": "u2", "branch": "dev"}],
            "pair": [{"a": 1}, {"b": 2}, {"b": 3}],
            "hosts": {"web": {"port": 22}, "db": {"port": 5432}}
        })
    );
}
