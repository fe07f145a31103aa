//! Pack configs: `config.schema.yaml` and `<configs_dir>/<pack>.yaml`.
//!
//! A bad schema or a bad config is reported like any bad file: the pack and
//! its sensors still load, with no config.

use std::path::Path;

use serde_json::{Map, Value};

use crate::schema::{json_kind, CompiledSchema};
use crate::yaml::{read_yaml, to_json, yaml11_bool};
use crate::{ContentError, Pack, PackConfig};

/// The schema file inside a pack.
pub(crate) const SCHEMA_FILE: &str = "config.schema.yaml";

/// What a pack's config files amount to.
#[derive(Debug, Default)]
pub(crate) struct ConfigOutcome {
    /// The schema as written, when it is present and valid.
    pub schema: Option<Value>,
    /// The validated config, when there is a schema or a config file and
    /// neither is broken.
    pub config: Option<PackConfig>,
}

/// Read and validate the config of `pack`; problems go to `errors`.
pub(crate) fn load_config(
    pack: &Pack,
    configs_dir: &Path,
    errors: &mut Vec<ContentError>,
) -> ConfigOutcome {
    let schema_file = pack.path.join(SCHEMA_FILE);
    let schema = if schema_file.exists() {
        match read_schema(&schema_file, &pack.pack_ref) {
            Ok(pair) => Some(pair),
            Err(e) => {
                errors.push(e);
                // Without a usable schema a config cannot be trusted.
                return ConfigOutcome::default();
            }
        }
    } else {
        None
    };

    let config_file = configs_dir.join(format!("{}.yaml", pack.pack_ref));
    let config = if config_file.is_file() {
        let config_file = config_file.canonicalize().unwrap_or(config_file);
        match read_config(
            &config_file,
            &pack.pack_ref,
            schema.as_ref().map(|(_, c)| c),
        ) {
            Ok(values) => Some(PackConfig {
                pack: pack.pack_ref.clone(),
                file: Some(config_file),
                values,
                schema: schema.as_ref().map(|(written, _)| written.clone()),
            }),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    } else {
        // No config file is fine even when keys are required (StackStorm's
        // `examples` pack relies on it): the sensor gets the defaults only.
        schema.as_ref().map(|(written, compiled)| PackConfig {
            pack: pack.pack_ref.clone(),
            file: None,
            values: compiled.with_defaults(&Value::Object(Map::new())),
            schema: Some(written.clone()),
        })
    };
    ConfigOutcome {
        schema: schema.map(|(written, _)| written),
        config,
    }
}

fn read_schema(file: &Path, pack_ref: &str) -> Result<(Value, CompiledSchema), ContentError> {
    let document = |reason: String| ContentError::Document {
        file: file.to_path_buf(),
        pack: pack_ref.to_string(),
        reason,
    };
    let (_, doc) = read_yaml(file, pack_ref)?;
    let written = to_json(&doc).map_err(document)?;
    let compiled = CompiledSchema::compile_config(&written).map_err(document)?;
    Ok((written, compiled))
}

fn read_config(
    file: &Path,
    pack_ref: &str,
    schema: Option<&CompiledSchema>,
) -> Result<Value, ContentError> {
    let (_, doc) = read_yaml(file, pack_ref)?;
    let document = |reason: String| ContentError::Document {
        file: file.to_path_buf(),
        pack: pack_ref.to_string(),
        reason,
    };
    let mut values = match to_json(&doc).map_err(document)? {
        // An empty config file is an empty config.
        Value::Null => Value::Object(Map::new()),
        v @ Value::Object(_) => v,
        other => {
            return Err(document(format!(
                "expected a mapping of config keys, found {}",
                json_kind(&other)
            )))
        }
    };
    let Some(schema) = schema else {
        return Ok(values);
    };
    coerce_yaml11_booleans(schema.schema(), &mut values);
    let values = schema.with_defaults(&values);
    // A template (`{{ st2kv.system.port }}`) stands for a value only known
    // when the sensor starts: the container checks the rendered value.
    schema
        .validate_except(&values, crate::schema::is_jinja_expression)
        .map_err(|v| {
            ContentError::field_error(
                file,
                pack_ref,
                field_path("config", &v.path, &values),
                v.reason,
            )
        })?;
    Ok(values)
}

/// PyYAML reads `yes`/`off`/... as booleans; where the schema wants a
/// boolean, do the same so that configs written for StackStorm validate.
fn coerce_yaml11_booleans(schema: &Value, value: &mut Value) {
    let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object_mut(),
    ) else {
        return;
    };
    for (key, sub) in props {
        let Some(v) = obj.get_mut(key) else { continue };
        if let (true, Value::String(s)) = (wants_boolean(sub), &*v) {
            if let Some(b) = yaml11_bool(s) {
                *v = Value::Bool(b);
            }
        }
        coerce_yaml11_booleans(sub, v);
    }
}

/// True when `type` is `boolean`, possibly together with `null`.
fn wants_boolean(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "boolean",
        Some(Value::Array(types)) => {
            types.iter().any(|t| t == "boolean")
                && types.iter().all(|t| t == "boolean" || t == "null")
        }
        _ => false,
    }
}

/// A JSON pointer into `instance` as a readable path: `/api/hosts/0` →
/// `config.api.hosts[0]`.
pub(crate) fn field_path(root: &str, pointer: &str, instance: &Value) -> String {
    let mut out = root.to_string();
    let mut current = Some(instance);
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        match current {
            Some(Value::Array(items)) => {
                let index = segment.parse::<usize>().ok();
                out.push_str(&format!("[{segment}]"));
                current = index.and_then(|i| items.get(i));
            }
            other => {
                out.push('.');
                out.push_str(&segment);
                current = other.and_then(|v| v.get(&segment));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_becomes_dotted_path() {
        let v = json!({"api": {"hosts": [{"port": 1}]}});
        assert_eq!(field_path("config", "", &v), "config");
        assert_eq!(
            field_path("config", "/api/hosts/0/port", &v),
            "config.api.hosts[0].port"
        );
        assert_eq!(field_path("config", "/a~1b", &v), "config.a/b");
    }

    #[test]
    fn booleans_coerced_only_where_schema_wants_them() {
        let schema = json!({"properties": {
            "debug": {"type": "boolean"},
            "word": {"type": "string"},
            "nested": {"type": "object", "properties": {"on": {"type": ["boolean", "null"]}}}
        }});
        let mut v = json!({"debug": "Yes", "word": "yes", "nested": {"on": "OFF"}});
        coerce_yaml11_booleans(&schema, &mut v);
        assert_eq!(
            v,
            json!({"debug": true, "word": "yes", "nested": {"on": false}})
        );
    }
}
