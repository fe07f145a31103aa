//! Reading YAML the way pack authors expect (PyYAML, YAML 1.1) with a YAML
//! 1.2 parser, and typed access to mapping fields with errors that name the
//! file, the pack and the field.

use std::path::Path;

use serde_yaml::{Mapping, Value as Yaml};

use crate::ContentError;

/// Read and parse one YAML file. Returns the raw bytes too: sensors hash them.
pub(crate) fn read_yaml(file: &Path, pack: &str) -> Result<(Vec<u8>, Yaml), ContentError> {
    let bytes = crate::fsread::read_bounded(file).map_err(|source| ContentError::Read {
        file: file.to_path_buf(),
        pack: pack.to_string(),
        source,
    })?;
    let value = parse_yaml(&bytes, file, pack)?;
    Ok((bytes, value))
}

/// Parse a YAML document the way pack files are parsed (depth check,
/// merge keys, PyYAML's empty document) into JSON; `file` names it in
/// errors.
pub fn yaml_to_json(bytes: &[u8], file: &Path) -> Result<serde_json::Value, ContentError> {
    let doc = parse_yaml(bytes, file, "-")?;
    to_json(&doc).map_err(|reason| ContentError::Document {
        file: file.to_path_buf(),
        pack: "-".into(),
        reason,
    })
}

fn parse_yaml(bytes: &[u8], file: &Path, pack: &str) -> Result<Yaml, ContentError> {
    let yaml_error = |err: serde_yaml::Error| {
        let location = err.location();
        ContentError::Yaml {
            file: file.to_path_buf(),
            pack: pack.to_string(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message: err.to_string(),
        }
    };
    // An empty file is an empty document (PyYAML's `None`), not an error.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Yaml::Null);
    }
    if let Some(line) = crate::fsread::too_deep(bytes) {
        return Err(ContentError::Yaml {
            file: file.to_path_buf(),
            pack: pack.to_string(),
            line: Some(line),
            column: None,
            message: format!(
                "nested deeper than {} levels",
                crate::fsread::MAX_YAML_DEPTH
            ),
        });
    }
    let mut value: Yaml = serde_yaml::from_slice(bytes).map_err(yaml_error)?;
    // PyYAML resolves `<<` merge keys; real packs use them to share blocks.
    value.apply_merge().map_err(yaml_error)?;
    Ok(value)
}

/// PyYAML (YAML 1.1) booleans that a YAML 1.2 parser reads as strings.
pub(crate) fn yaml11_bool(text: &str) -> Option<bool> {
    // PyYAML lists a few spellings per word; any case is a harmless superset.
    match text.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => Some(true),
        "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// How a value is described in "expected X, found Y" messages.
pub(crate) fn describe(value: &Yaml) -> String {
    match value {
        Yaml::Null => "null".into(),
        Yaml::Bool(b) => format!("boolean {b}"),
        Yaml::Number(n) => format!("number {n}"),
        Yaml::String(s) => format!("string '{s}'"),
        Yaml::Sequence(_) => "a list".into(),
        Yaml::Mapping(_) => "a mapping".into(),
        Yaml::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// Convert YAML to JSON. Non-string keys become strings, as Python's
/// `json.dumps` would turn PyYAML's int/bool keys into strings.
pub(crate) fn to_json(value: &Yaml) -> Result<serde_json::Value, String> {
    use serde_json::Value as Json;
    Ok(match value {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Json::Number)
                    .ok_or_else(|| format!("number {n} cannot be represented in JSON"))?
            }
        }
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Sequence(items) => Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    Yaml::Null => "null".to_string(),
                    other => {
                        return Err(format!(
                            "mapping key must be a scalar, found {}",
                            describe(other)
                        ))
                    }
                };
                out.insert(key, to_json(v)?);
            }
            Json::Object(out)
        }
        // Tags (`!!str`, custom) carry no meaning for content; keep the value.
        Yaml::Tagged(t) => to_json(&t.value)?,
    })
}

/// A YAML mapping being read field by field, with error context.
pub(crate) struct Fields<'a> {
    /// The file the mapping came from.
    pub file: &'a Path,
    /// The pack, for error messages.
    pub pack: &'a str,
    /// Prefix for field names of nested mappings, e.g. `trigger_types[0].`.
    prefix: String,
    map: &'a Mapping,
}

impl<'a> Fields<'a> {
    /// The top-level mapping of a document; anything else is an error that
    /// says what the document should hold.
    pub fn document(
        file: &'a Path,
        pack: &'a str,
        value: &'a Yaml,
        expected: &str,
    ) -> Result<Fields<'a>, ContentError> {
        match value {
            Yaml::Mapping(map) => Ok(Fields {
                file,
                pack,
                prefix: String::new(),
                map,
            }),
            other => Err(ContentError::Document {
                file: file.to_path_buf(),
                pack: pack.to_string(),
                reason: format!(
                    "expected a mapping with {expected}, found {}",
                    describe(other)
                ),
            }),
        }
    }

    /// The same mapping, reported under another pack name (once the pack
    /// ref is resolved, errors should name it rather than the directory).
    pub fn for_pack<'b>(&self, pack: &'b str) -> Fields<'b>
    where
        'a: 'b,
    {
        Fields {
            file: self.file,
            pack,
            prefix: self.prefix.clone(),
            map: self.map,
        }
    }

    /// A nested mapping at `field` (already prefixed by the caller's path).
    pub fn nested(&self, field: String, value: &'a Yaml) -> Result<Fields<'a>, ContentError> {
        match value {
            Yaml::Mapping(map) => Ok(Fields {
                file: self.file,
                pack: self.pack,
                prefix: format!("{field}."),
                map,
            }),
            other => Err(ContentError::field_error(
                self.file,
                self.pack,
                field,
                format!("expected a mapping, found {}", describe(other)),
            )),
        }
    }

    /// The full name of `key` as shown in errors.
    pub fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// An error about `key`.
    pub fn error(&self, key: &str, reason: impl Into<String>) -> ContentError {
        ContentError::field_error(self.file, self.pack, self.path(key), reason)
    }

    /// The value at `key`; an explicit `null` counts as absent, as in PyYAML
    /// based loaders that use `dict.get`.
    pub fn get(&self, key: &str) -> Option<&'a Yaml> {
        match self.map.get(key) {
            None | Some(Yaml::Null) => None,
            Some(Yaml::Tagged(t)) => Some(&t.value),
            Some(v) => Some(v),
        }
    }

    /// A required, non-empty string.
    pub fn req_str(&self, key: &str) -> Result<String, ContentError> {
        match self.opt_str(key)? {
            None => Err(self.error(key, "required field is missing")),
            Some(s) if s.trim().is_empty() => Err(self.error(key, "must not be empty")),
            Some(s) => Ok(s),
        }
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, ContentError> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::String(s)) => Ok(Some(s.clone())),
            Some(other) => {
                Err(self.error(key, format!("expected a string, found {}", describe(other))))
            }
        }
    }

    /// An optional boolean, accepting PyYAML's `yes`/`no`/`on`/`off`.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ContentError> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::Bool(b)) => Ok(Some(*b)),
            Some(Yaml::String(s)) => yaml11_bool(s).map(Some).ok_or_else(|| {
                self.error(
                    key,
                    format!("expected a boolean (true/false/yes/no/on/off), found string '{s}'"),
                )
            }),
            Some(other) => Err(self.error(
                key,
                format!(
                    "expected a boolean (true/false/yes/no/on/off), found {}",
                    describe(other)
                ),
            )),
        }
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, ContentError> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(other) => Err(self.error(
                key,
                format!("expected a non-negative integer, found {}", describe(other)),
            )),
        }
    }

    /// An optional list (absent or null → empty).
    pub fn opt_list(&self, key: &str) -> Result<&'a [Yaml], ContentError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Yaml::Sequence(items)) => Ok(items),
            Some(other) => {
                Err(self.error(key, format!("expected a list, found {}", describe(other))))
            }
        }
    }

    /// An optional value converted to JSON (e.g. a schema).
    pub fn opt_json(&self, key: &str) -> Result<Option<serde_json::Value>, ContentError> {
        self.get(key)
            .map(|v| to_json(v).map_err(|reason| self.error(key, reason)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_booleans_any_case() {
        for t in ["yes", "YES", "On", "true", "TRUE"] {
            assert_eq!(yaml11_bool(t), Some(true), "{t}");
        }
        for f in ["no", "No", "OFF", "false", "False"] {
            assert_eq!(yaml11_bool(f), Some(false), "{f}");
        }
        for x in ["y", "n", "1", "enabled", ""] {
            assert_eq!(yaml11_bool(x), None, "{x}");
        }
    }
}
