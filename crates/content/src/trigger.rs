//! Trigger types: inline in sensor metadata or standalone in `triggers/`.

use std::path::Path;

use serde_json::Value;
use serde_yaml::Value as Yaml;

use crate::schema::{json_kind, CompiledSchema};
use crate::yaml::{describe, read_yaml, Fields};
use crate::{ContentError, TriggerType};

/// Read a standalone trigger type file (`triggers/*.yaml`).
pub(crate) fn read_trigger_file(file: &Path, pack_ref: &str) -> Result<TriggerType, ContentError> {
    let (_, doc) = read_yaml(file, pack_ref)?;
    let fields = Fields::document(
        file,
        pack_ref,
        &doc,
        "a trigger type (name, payload_schema, ...)",
    )?;
    parse_trigger_type(&fields, file)
}

/// Read one trigger type mapping. Unknown keys (`payload_info`, `pack`, ...)
/// are ignored: the pack is always the declaring file's pack.
pub(crate) fn parse_trigger_type(
    fields: &Fields,
    file: &Path,
) -> Result<TriggerType, ContentError> {
    let name = fields.req_str("name")?;
    let description = fields.opt_str("description")?;
    let payload_schema =
        schema(fields, "payload_schema")?.unwrap_or_else(|| Value::Object(Default::default()));
    let parameters_schema = schema(fields, "parameters_schema")?;
    let tags = tags(fields)?;
    Ok(TriggerType {
        type_ref: format!("{}.{name}", fields.pack),
        pack: fields.pack.to_string(),
        name,
        description,
        payload_schema,
        parameters_schema,
        tags,
        metadata_file: file.to_path_buf(),
    })
}

/// An optional schema, compiled once here so that a broken schema is reported
/// against its file at load time rather than at the first dispatch.
fn schema(fields: &Fields, key: &str) -> Result<Option<Value>, ContentError> {
    let Some(schema) = fields.opt_json(key)? else {
        return Ok(None);
    };
    if !schema.is_object() {
        return Err(fields.error(
            key,
            format!(
                "expected a mapping (a JSON schema), found {}",
                json_kind(&schema)
            ),
        ));
    }
    CompiledSchema::compile(&schema)
        .map_err(|e| fields.error(key, format!("invalid schema: {e}")))?;
    Ok(Some(schema))
}

/// `tags`: strings, or StackStorm's `{name, value}` mappings reduced to the name.
fn tags(fields: &Fields) -> Result<Vec<String>, ContentError> {
    let mut out = Vec::new();
    for (i, tag) in fields.opt_list("tags")?.iter().enumerate() {
        match tag {
            Yaml::String(s) => out.push(s.clone()),
            Yaml::Mapping(m) => match m.get("name") {
                Some(Yaml::String(s)) => out.push(s.clone()),
                _ => {
                    return Err(
                        fields.error(&format!("tags[{i}].name"), "required string is missing")
                    )
                }
            },
            other => {
                return Err(fields.error(
                    &format!("tags[{i}]"),
                    format!(
                        "expected a string or a mapping with `name`, found {}",
                        describe(other)
                    ),
                ))
            }
        }
    }
    Ok(out)
}
