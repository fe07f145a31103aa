//! StackStorm's config templates: strings in a pack config (its file or
//! its schema defaults) holding Jinja, rendered with the datastore when the
//! sensor starts, as `ContentPackConfigLoader` does:
//!
//! - `{{ st2kv.system.NAME }}` and `{{ st2kv.user.NAME }}` are the key's
//!   value (a secret's ciphertext), dotted names included
//!   (`st2kv.system.aws.key` is the key `aws.key`);
//! - `{{ st2kv.system.NAME | decrypt_kv }}` is a secret's plaintext;
//! - under a config schema item with `secret: true`, values are decrypted
//!   without the filter (StackStorm decrypts those itself);
//! - a rendered value whose schema `type` is not a string is read as JSON
//!   when it parses as that type (`port: "{{ st2kv.system.port }}"` with
//!   `type: integer` becomes a number), then the whole config is checked
//!   against the schema again;
//! - objects and arrays are walked recursively.
//!
//! A missing key is an error naming the config path and the key; a
//! rendered value never appears in an error or a log line.

use std::fmt;
use std::sync::{Arc, Mutex};

use minijinja::value::{Object, Value as JValue};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::{Map, Value};
use store::datastore::{Datastore, Scope};

/// Why a pack config could not be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path} of pack '{pack}': {message}")]
pub struct TemplateError {
    /// The pack.
    pub pack: String,
    /// Where in the config: `config.api.token`, `config.hosts[1]`.
    pub path: String,
    /// What went wrong (never the value).
    pub message: String,
}

/// Shared by the objects of one render: the datastore, whether to decrypt
/// every lookup, and what went wrong.
struct Lookups {
    datastore: Datastore,
    decrypt_all: bool,
    problems: Mutex<Vec<String>>,
}

impl fmt::Debug for Lookups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lookups")
    }
}

impl Lookups {
    fn problem(&self, p: String) {
        let mut all = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        if !all.contains(&p) {
            all.push(p);
        }
    }

    /// A key's value (decrypted when asked); `None` after recording why.
    fn resolve(&self, scope: Scope, name: &str, decrypt: bool) -> Option<String> {
        let shown = format!("st2kv.{}.{name}", scope_name(scope));
        if name.is_empty() {
            self.problem(format!("st2kv.{} needs a key name", scope_name(scope)));
            return None;
        }
        match self.datastore.get(scope, name, decrypt || self.decrypt_all) {
            Ok(Some(kv)) => Some(kv.value),
            Ok(None) => {
                self.problem(format!(
                    "datastore key '{name}' ({shown}) does not exist (set it with `sensorctl key set{} {name} VALUE`)",
                    if scope == Scope::User { " --scope user" } else { "" }
                ));
                None
            }
            Err(e) => {
                self.problem(format!("cannot read {shown}: {e}"));
                None
            }
        }
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::System => "system",
        Scope::User => "user",
    }
}

/// `st2kv`: its attributes are the scopes.
#[derive(Debug)]
struct St2Kv(Arc<Lookups>);

impl Object for St2Kv {
    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let scope = match key.as_str()? {
            "system" => Scope::System,
            "user" => Scope::User,
            _ => return None,
        };
        Some(JValue::from_object(KeyRef {
            scope,
            name: String::new(),
            lookups: self.0.clone(),
        }))
    }
}

/// `st2kv.<scope>[.<name>...]`: rendered as the key's value; attributes
/// extend the (dotted) name.
#[derive(Debug)]
struct KeyRef {
    scope: Scope,
    name: String,
    lookups: Arc<Lookups>,
}

impl Object for KeyRef {
    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let part = key.as_str()?;
        let name = if self.name.is_empty() {
            part.to_string()
        } else {
            format!("{}.{part}", self.name)
        };
        Some(JValue::from_object(KeyRef {
            scope: self.scope,
            name,
            lookups: self.lookups.clone(),
        }))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        Self: Sized + 'static,
    {
        match self.lookups.resolve(self.scope, &self.name, false) {
            Some(v) => f.write_str(&v),
            None => Ok(()),
        }
    }
}

fn environment(lookups: &Arc<Lookups>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter(
        "decrypt_kv",
        |v: JValue| -> Result<String, minijinja::Error> {
            match v.downcast_object_ref::<KeyRef>() {
                Some(k) => Ok(k
                    .lookups
                    .resolve(k.scope, &k.name, true)
                    .unwrap_or_default()),
                None => Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    "decrypt_kv applies to a datastore value such as st2kv.system.NAME",
                )),
            }
        },
    );
    env.add_filter(
        "from_json_string",
        |s: String| -> Result<JValue, minijinja::Error> {
            serde_json::from_str::<Value>(&s)
                .map(JValue::from_serialize)
                .map_err(|e| {
                    minijinja::Error::new(ErrorKind::InvalidOperation, format!("not JSON: {e}"))
                })
        },
    );
    env.add_global("st2kv", JValue::from_object(St2Kv(lookups.clone())));
    env
}

/// The JSON `type`s a schema item allows.
fn types_of(schema: Option<&Value>) -> Vec<&str> {
    match schema.and_then(|s| s.get("type")) {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A rendered string read as the schema's non-string type when it parses
/// as one.
fn typed(rendered: String, schema: Option<&Value>) -> Value {
    let types = types_of(schema);
    if types.is_empty() || types.contains(&"string") {
        return Value::String(rendered);
    }
    match serde_json::from_str::<Value>(rendered.trim()) {
        Ok(v) => {
            let fits = types.iter().any(|t| match *t {
                "integer" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                "object" => v.is_object(),
                "array" => v.is_array(),
                "null" => v.is_null(),
                _ => false,
            });
            if fits {
                v
            } else {
                Value::String(rendered)
            }
        }
        Err(_) => Value::String(rendered),
    }
}

struct Walk<'a> {
    pack: &'a str,
    datastore: &'a Datastore,
}

impl Walk<'_> {
    fn render_str(
        &self,
        source: &str,
        path: &str,
        decrypt_all: bool,
    ) -> Result<String, TemplateError> {
        let lookups = Arc::new(Lookups {
            datastore: self.datastore.clone(),
            decrypt_all,
            problems: Mutex::new(Vec::new()),
        });
        let env = environment(&lookups);
        let fail = |message: String| TemplateError {
            pack: self.pack.to_string(),
            path: path.to_string(),
            message,
        };
        let out = env.render_str(source, ()).map_err(|e| {
            fail(format!(
                "cannot render its template: {}",
                e.detail().unwrap_or(&e.kind().to_string())
            ))
        });
        let problems = lookups
            .problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(first) = problems.into_iter().next() {
            return Err(fail(first));
        }
        out
    }

    fn value(
        &self,
        v: &Value,
        schema: Option<&Value>,
        path: &str,
        decrypt_all: bool,
    ) -> Result<Value, TemplateError> {
        let secret = decrypt_all
            || schema
                .and_then(|s| s.get("secret"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
        Ok(match v {
            Value::String(s) if content::schema::is_jinja_expression(v) => {
                typed(self.render_str(s, path, secret)?, schema)
            }
            Value::Object(m) => {
                let props = schema.and_then(|s| s.get("properties"));
                let extra = schema
                    .and_then(|s| s.get("additionalProperties"))
                    .filter(|e| e.is_object());
                let mut out = Map::new();
                for (k, child) in m {
                    let sub = props.and_then(|p| p.get(k)).or(extra);
                    out.insert(
                        k.clone(),
                        self.value(child, sub, &format!("{path}.{k}"), secret)?,
                    );
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (n, child) in items.iter().enumerate() {
                    let sub = match schema.and_then(|s| s.get("items")) {
                        Some(Value::Array(tuple)) => tuple.get(n),
                        other => other,
                    };
                    out.push(self.value(child, sub, &format!("{path}[{n}]"), secret)?);
                }
                Value::Array(out)
            }
            other => other.clone(),
        })
    }
}

/// Whether any string in `v` holds a template.
pub fn has_templates(v: &Value) -> bool {
    match v {
        Value::String(_) => content::schema::is_jinja_expression(v),
        Value::Object(m) => m.values().any(has_templates),
        Value::Array(a) => a.iter().any(has_templates),
        _ => false,
    }
}

/// Render every template of pack `pack`'s config `values` (checked against
/// its config `schema`, as written, when there is one).
pub fn render(
    pack: &str,
    values: &Value,
    schema: Option<&Value>,
    datastore: &Datastore,
) -> Result<Value, TemplateError> {
    if !has_templates(values) {
        return Ok(values.clone());
    }
    let walk = Walk { pack, datastore };
    let object_schema =
        schema.map(|props| serde_json::json!({"type": "object", "properties": props}));
    let rendered = walk.value(values, object_schema.as_ref(), "config", false)?;
    if let Some(written) = schema {
        let compiled =
            content::CompiledSchema::compile_config(written).map_err(|e| TemplateError {
                pack: pack.to_string(),
                path: "config".into(),
                message: e,
            })?;
        if let Err(v) = compiled.validate(&rendered) {
            let path = content::config_field_path(&v.path, &rendered);
            return Err(TemplateError {
                pack: pack.to_string(),
                message: "the value rendered from its template does not validate against the config schema (value not shown)".into(),
                path,
            });
        }
    }
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, store::Store) {
        let dir = tempfile::tempdir().unwrap();
        let st = store::Store::open(dir.path(), &store::StoreOptions::default()).unwrap();
        (dir, st)
    }

    #[test]
    fn templates_render_from_the_datastore_recursively_with_types_and_errors() {
        let (dir, st) = store();
        let key = dir.path().join("k.json");
        store::CryptoKey::generate(&key).unwrap();
        let ds = st
            .datastore
            .clone()
            .with_crypto(Some(Arc::new(store::CryptoKey::load(&key).unwrap())));
        ds.set(Scope::System, "host", "db.example", None, false)
            .unwrap();
        ds.set(Scope::System, "port", "5432", None, false).unwrap();
        ds.set(Scope::System, "aws.key", "AK", None, false).unwrap();
        ds.set(Scope::System, "pw", "s3cret", None, true).unwrap();
        ds.set(Scope::User, "me", "u1", None, false).unwrap();
        let schema = json!({
            "port": {"type": "integer"},
            "token": {"type": "string", "secret": true},
            "hosts": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer"}}}}
        });
        let values = json!({
            "url": "https://{{ st2kv.system.host }}:{{ st2kv.system.port }}",
            "port": "{{ st2kv.system.port }}",
            "password": "{{ st2kv.system.pw | decrypt_kv }}",
            "cipher": "{{ st2kv.system.pw }}",
            "token": "{{ st2kv.system.pw }}",
            "nested": {"k": "{{ st2kv.system.aws.key }}", "user": "{{ st2kv.user.me }}"},
            "hosts": [{"port": "{{ st2kv.system.port }}"}],
            "plain": 1,
        });
        let out = render("p", &values, Some(&schema), &ds).unwrap();
        assert_eq!(out["url"], "https://db.example:5432");
        assert_eq!(out["port"], 5432);
        assert_eq!(out["password"], "s3cret");
        assert_ne!(
            out["cipher"], "s3cret",
            "without decrypt_kv: the ciphertext"
        );
        assert_eq!(out["token"], "s3cret", "secret: true decrypts");
        assert_eq!(out["nested"], json!({"k": "AK", "user": "u1"}));
        assert_eq!(out["hosts"][0]["port"], 5432);
        assert_eq!(out["plain"], 1);

        let err = render(
            "p",
            &json!({"a": {"b": ["x", "{{ st2kv.system.nope }}"]}}),
            None,
            &ds,
        )
        .unwrap_err();
        assert_eq!(err.path, "config.a.b[1]");
        assert!(err.message.contains("'nope'"), "{err}");
        let err = render(
            "p",
            &json!({"port": "{{ st2kv.system.host }}"}),
            Some(&schema),
            &ds,
        )
        .unwrap_err();
        assert_eq!(err.path, "config.port");
        assert!(!err.to_string().contains("db.example"), "{err}");
        let err = render("p", &json!({"x": "{{ 'a' | decrypt_kv }}"}), None, &ds).unwrap_err();
        assert!(err.message.contains("decrypt_kv"), "{err}");
        let err = render(
            "p",
            &json!({"x": "{{ st2kv.system.pw | decrypt_kv"}),
            None,
            &ds,
        )
        .unwrap_err();
        assert!(err.message.contains("cannot render"), "{err}");
        // Decrypting without a key file fails naming the key, not the value.
        let bare = st.datastore.clone();
        let err = render(
            "p",
            &json!({"x": "{{ st2kv.system.pw | decrypt_kv }}"}),
            None,
            &bare,
        )
        .unwrap_err();
        assert!(err.message.contains("st2kv.system.pw"), "{err}");
    }
}
