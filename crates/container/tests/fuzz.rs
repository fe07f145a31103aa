//! Property-based fuzzing of config templates: random template text over a
//! real datastore never panics, and a rendered error never contains a
//! decrypted value. `FUZZ_CASES` sets the number of cases (default 2,000;
//! README's dedicated run uses 1,000,000).

use std::sync::Arc;

use container::config_template::render;
use serde_json::json;
use store::datastore::Scope;

const SECRET: &str = "s3cret-value";

const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    " ",
    "st2kv",
    ".",
    "system",
    "user",
    "pw",
    "port",
    "nope",
    "|",
    "decrypt_kv",
    "from_json_string",
    "upper",
    "'",
    "\"",
    "x",
    "1",
    "(",
    ")",
    "[",
    "]",
    "if",
    "else",
    "endif",
    "for",
    "in",
    "endfor",
    "set",
    "=",
    "~",
    "+",
    "-",
    ",",
    ":",
    "none",
];

#[test]
fn random_templates_never_panic_or_leak_a_secret_in_an_error() {
    let n: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(13);
    let mut r = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let st = store::Store::open(dir.path(), &store::StoreOptions::default()).unwrap();
    let key = dir.path().join("k.json");
    store::CryptoKey::generate(&key).unwrap();
    let ds = st
        .datastore
        .clone()
        .with_crypto(Some(Arc::new(store::CryptoKey::load(&key).unwrap())));
    ds.set(Scope::System, "pw", SECRET, None, true).unwrap();
    ds.set(Scope::System, "port", "8080", None, false).unwrap();
    let schema = json!({"a": {"type": "integer"}, "b": {"type": "string", "secret": true}});
    for case in 0..n {
        let mut t = String::new();
        for _ in 0..r.usize(0..16) {
            t.push_str(TOKENS[r.usize(0..TOKENS.len())]);
        }
        let key = ["a", "b", "c"][r.usize(0..3)];
        let values = json!({ key: t, "list": [t.clone(), {"k": t.clone()}] });
        if let Err(e) = render("p", &values, Some(&schema), &ds) {
            assert!(
                !e.to_string().contains(SECRET),
                "case {case}: {t:?} leaked: {e}"
            );
        }
    }
}
