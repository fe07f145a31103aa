//! StackStorm's JSON Schema dialect on top of the `jsonschema` crate.
//!
//! StackStorm schemas are draft 4 plus draft-3 style `required: true` inside
//! a property; optional properties also accept `null`; defaults are filled
//! in before validating. Payload, parameters and config schemas all go
//! through [`CompiledSchema`], so the dialect lives in one place.

use serde_json::{Map, Value};

/// A compiled StackStorm-dialect schema.
pub struct CompiledSchema {
    validator: jsonschema::Validator,
    /// The schema after the dialect transform (what the validator checks).
    schema: Value,
    /// Whether any `default` appears: only then is the instance copied.
    has_defaults: bool,
    empty: bool,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// A validation failure: where and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaViolation {
    /// JSON pointer into the instance (`""` for the root).
    pub path: String,
    /// The validator's message, e.g. `"abc" is not of type "integer"`.
    pub reason: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl CompiledSchema {
    /// Compile a payload/parameters schema (an object schema).
    ///
    /// Returns the validator's complaint when the schema is not a valid
    /// draft 4 schema once the StackStorm dialect has been translated.
    pub fn compile(schema: &Value) -> Result<CompiledSchema, String> {
        if !schema.is_object() {
            return Err(format!(
                "a schema must be a mapping, found {}",
                json_kind(schema)
            ));
        }
        let mut transformed = schema.clone();
        to_draft4(&mut transformed);
        let validator = jsonschema::draft4::options()
            // StackStorm validates without a format checker: `format` is a hint.
            .should_validate_formats(false)
            .build(&transformed)
            .map_err(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })?;
        Ok(CompiledSchema {
            validator,
            has_defaults: has_defaults(&transformed),
            empty: schema.as_object().is_some_and(Map::is_empty),
            schema: transformed,
        })
    }

    /// Compile a pack's `config.schema.yaml` (top-level key → property
    /// schema) into the object schema StackStorm validates configs against:
    /// its properties are the top-level keys and extra keys are allowed.
    ///
    /// An empty, null or non-mapping config schema is an error, as in
    /// StackStorm.
    pub fn compile_config(config_schema: &Value) -> Result<CompiledSchema, String> {
        match config_schema {
            Value::Object(props) if !props.is_empty() => {
                CompiledSchema::compile(&serde_json::json!({
                    "type": "object",
                    "properties": props,
                    "additionalProperties": true,
                }))
                .map_err(|e| format!("invalid config schema: {e}"))
            }
            _ => Err(format!(
                "config schema is empty and invalid (expected a mapping of config keys to \
                 property schemas, found {})",
                json_kind(config_schema)
            )),
        }
    }

    /// Validate `instance` (defaults are applied to a copy first; the
    /// instance itself is not modified).
    pub fn validate(&self, instance: &Value) -> Result<(), SchemaViolation> {
        if self.has_defaults {
            let filled = self.with_defaults(instance);
            self.first_violation(&filled)
        } else {
            self.first_violation(instance)
        }
    }

    /// A copy of `instance` with the schema's defaults filled in.
    pub fn with_defaults(&self, instance: &Value) -> Value {
        let mut filled = instance.clone();
        fill_defaults(&self.schema, &mut filled);
        filled
    }

    /// True when the schema is empty (`{}`): everything validates.
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// The draft 4 schema actually checked (after the dialect transform).
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Validate like [`validate`](Self::validate), ignoring violations
    /// whose offending value satisfies `skip`.
    pub fn validate_except(
        &self,
        instance: &Value,
        skip: impl Fn(&Value) -> bool,
    ) -> Result<(), SchemaViolation> {
        let filled = match self.has_defaults {
            true => std::borrow::Cow::Owned(self.with_defaults(instance)),
            false => std::borrow::Cow::Borrowed(instance),
        };
        let found = self
            .validator
            .iter_errors(&filled)
            .find(|e| !skip(e.instance()))
            .map(|e| SchemaViolation {
                path: e.instance_path().to_string(),
                reason: reason(&e),
            });
        match found {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    fn first_violation(&self, instance: &Value) -> Result<(), SchemaViolation> {
        match self.validator.iter_errors(instance).next() {
            None => Ok(()),
            Some(e) => Err(SchemaViolation {
                path: e.instance_path().to_string(),
                reason: reason(&e),
            }),
        }
    }
}

/// The validator's message, except that type errors do not list the `null`
/// the dialect added to optional properties: the author never wrote it.
fn reason(error: &jsonschema::ValidationError) -> String {
    use jsonschema::error::{TypeKind, ValidationErrorKind};
    use jsonschema::JsonType;
    let ValidationErrorKind::Type {
        kind: TypeKind::Multiple(types),
    } = error.kind()
    else {
        return error.to_string();
    };
    let named: Vec<String> = types
        .iter()
        .filter(|t| *t != JsonType::Null)
        .map(|t| format!("\"{t}\""))
        .collect();
    match named.len() {
        0 => error.to_string(),
        1 => format!("{} is not of type {}", error.instance(), named[0]),
        _ => format!("{} is not of types {}", error.instance(), named.join(", ")),
    }
}

/// Whether `v` is a string holding a Jinja expression or statement
/// (StackStorm's `is_jinja_expression`: `{{` or `{%`).
pub fn is_jinja_expression(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.contains("{{") || s.contains("{%"))
}

/// Fill `default`s from a schema into `value`, recursively, as StackStorm's
/// config loader does: through `properties`, through `additionalProperties`
/// (for every key `properties` does not name), and into each element of an
/// array through `items` (one schema for all, or the tuple form with
/// `additionalItems` for the rest).
///
/// Only missing keys are filled (an explicit `null` stays `null`). A missing
/// nested object is created only when its schema has defaults to put in it.
pub fn fill_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(obj) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (key, sub) in props.into_iter().flatten() {
                if !obj.contains_key(key) {
                    if let Some(default) = sub.get("default") {
                        obj.insert(key.clone(), default.clone());
                    } else if sub.get("properties").is_some() && has_defaults(sub) {
                        obj.insert(key.clone(), Value::Object(Map::new()));
                    }
                }
                if let Some(child) = obj.get_mut(key) {
                    fill_defaults(sub, child);
                }
            }
            if let Some(extra) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for (key, child) in obj.iter_mut() {
                    if !props.is_some_and(|p| p.contains_key(key)) {
                        fill_defaults(extra, child);
                    }
                }
            }
        }
        Value::Array(items) => match schema.get("items") {
            Some(one @ Value::Object(_)) => {
                for item in items.iter_mut() {
                    fill_defaults(one, item);
                }
            }
            Some(Value::Array(tuple)) => {
                let rest = schema.get("additionalItems").filter(|s| s.is_object());
                for (n, item) in items.iter_mut().enumerate() {
                    if let Some(sub) = tuple.get(n).or(rest) {
                        fill_defaults(sub, item);
                    }
                }
            }
            _ => {}
        },
        _ => {}
    }
}

/// Whether a `default` appears anywhere under the `properties`, `items`,
/// `additionalProperties` or `additionalItems` of `schema`.
fn has_defaults(schema: &Value) -> bool {
    let sub = |s: &Value| s.get("default").is_some() || has_defaults(s);
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|props| props.values().any(sub));
    let items = match schema.get("items") {
        Some(Value::Array(tuple)) => tuple.iter().any(sub),
        Some(one @ Value::Object(_)) => sub(one),
        _ => false,
    };
    let extra = ["additionalProperties", "additionalItems"]
        .iter()
        .filter_map(|k| schema.get(*k).filter(|s| s.is_object()))
        .any(sub);
    props || items || extra
}

/// Translate the StackStorm dialect into plain draft 4, in place.
fn to_draft4(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };

    let mut required: Vec<Value> = match obj.remove("required") {
        Some(Value::Array(list)) => list,
        // A boolean `required` belongs to the parent; at this level (root,
        // `items`, ...) it has no draft 4 meaning.
        _ => Vec::new(),
    };
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for (key, prop) in props.iter_mut() {
            let Some(p) = prop.as_object_mut() else {
                continue;
            };
            let flag = match p.get("required") {
                Some(Value::Bool(b)) => Some(*b),
                // PyYAML reads `required: yes` as a boolean too.
                Some(Value::String(s)) => crate::yaml::yaml11_bool(s),
                _ => None,
            };
            if let Some(flag) = flag {
                p.remove("required");
                if flag && !required.iter().any(|r| r.as_str() == Some(key)) {
                    required.push(Value::String(key.clone()));
                }
            }
        }
        for (key, prop) in props.iter_mut() {
            if !required.iter().any(|r| r.as_str() == Some(key)) {
                accept_null(prop);
            }
        }
    }
    // Draft 4 forbids an empty `required` array.
    if !required.is_empty() {
        obj.insert("required".into(), Value::Array(required));
    }

    for (keyword, sub) in obj.iter_mut() {
        match (keyword.as_str(), sub) {
            ("properties" | "patternProperties" | "definitions", Value::Object(map)) => {
                map.values_mut().for_each(to_draft4)
            }
            ("dependencies", Value::Object(map)) => map.values_mut().for_each(to_draft4),
            ("allOf" | "anyOf" | "oneOf" | "items", Value::Array(list)) => {
                list.iter_mut().for_each(to_draft4)
            }
            ("items" | "additionalItems" | "additionalProperties" | "not", sub) => to_draft4(sub),
            _ => {}
        }
    }
}

/// Let an optional typed property also be `null`.
fn accept_null(prop: &mut Value) {
    let Some(ty) = prop.get_mut("type") else {
        return;
    };
    match ty {
        Value::String(s) if s != "null" => {
            *ty = Value::Array(vec![Value::String(s.clone()), "null".into()])
        }
        Value::Array(list) if !list.iter().any(|t| t == "null") => list.push("null".into()),
        _ => {}
    }
}

/// How a JSON value is described in messages.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(m) if m.is_empty() => "an empty mapping",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests;
