//! Property-based fuzzing of the YAML loader, schema compilation and
//! default filling on random input: never a panic, and defaults never
//! remove or change a value that was there. `FUZZ_CASES` sets the number
//! of cases (default 2,000; README's dedicated run uses 1,000,000).

use std::path::Path;

use serde_json::{json, Map, Value};

fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn rng() -> fastrand::Rng {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    fastrand::Rng::with_seed(seed)
}

const YAML_TOKENS: &[&str] = &[
    "a",
    "b",
    ":",
    " ",
    "  ",
    "\n",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "&x",
    "*x",
    "<<: *x",
    "!!str",
    "!!binary",
    "#",
    "|",
    ">",
    "~",
    "null",
    "yes",
    "no",
    "1e3",
    "0x1f",
    "---",
    "...",
    "?",
    "\t",
    "%YAML 1.1",
    "é",
    "\\",
    "\u{0}",
];

#[test]
fn random_yaml_never_panics_the_loader() {
    let mut r = rng();
    for _ in 0..cases() {
        let mut doc = String::new();
        for _ in 0..r.usize(0..40) {
            doc.push_str(YAML_TOKENS[r.usize(0..YAML_TOKENS.len())]);
        }
        let _ = content::yaml_to_json(doc.as_bytes(), Path::new("fuzz.yaml"));
    }
}

fn value(r: &mut fastrand::Rng, depth: u32) -> Value {
    let keys = [
        "type",
        "properties",
        "items",
        "default",
        "required",
        "additionalProperties",
        "a",
        "b",
        "additionalItems",
        "enum",
    ];
    match (depth, r.u8(0..8)) {
        (0, _) | (_, 0) => json!(null),
        (_, 1) => json!(r.bool()),
        (_, 2) => json!(r.i64(-3..3)),
        (_, 3) => json!(["object", "array", "string", "integer", "x"][r.usize(0..5)]),
        (_, 4) => Value::Array((0..r.usize(0..3)).map(|_| value(r, depth - 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..r.usize(0..4) {
                m.insert(keys[r.usize(0..keys.len())].into(), value(r, depth - 1));
            }
            Value::Object(m)
        }
    }
}

/// Every value present in `before` is still there, unchanged, in `after`.
fn kept(before: &Value, after: &Value) -> bool {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            b.iter().all(|(k, v)| a.get(k).is_some_and(|w| kept(v, w)))
        }
        (Value::Array(b), Value::Array(a)) => {
            b.len() == a.len() && b.iter().zip(a).all(|(v, w)| kept(v, w))
        }
        (b, a) => b == a,
    }
}

#[test]
fn random_schemas_and_values_never_panic_and_defaults_only_add() {
    let mut r = rng();
    for case in 0..cases() {
        let schema = value(&mut r, 4);
        let instance = value(&mut r, 4);
        let mut filled = instance.clone();
        content::schema::fill_defaults(&schema, &mut filled);
        assert!(
            kept(&instance, &filled),
            "case {case}: {schema} changed {instance} into {filled}"
        );
        if let Ok(compiled) = content::CompiledSchema::compile(&schema) {
            let _ = compiled.validate(&instance);
            let _ = compiled.with_defaults(&instance);
        }
        let _ = content::CompiledSchema::compile_config(&schema);
    }
}
