//! `pack.yaml`: pack metadata and the pack ref.

use std::path::Path;

use serde_yaml::Value as Yaml;

use crate::yaml::{describe, read_yaml, Fields};
use crate::{ContentError, Pack};

/// The file every pack directory has.
pub(crate) const PACK_FILE: &str = "pack.yaml";

/// A `pack.yaml` that could not be read: the error, and the ref under which
/// the pack is reported as failed (its ref if resolvable, else the directory
/// name) so that its registry entries are left alone.
#[derive(Debug)]
pub(crate) struct PackFailure {
    pub pack_ref: String,
    pub error: Box<ContentError>,
}

/// StackStorm's `^[a-z0-9_]+$`.
pub(crate) fn is_valid_ref(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Read `<dir>/pack.yaml`. `dir` is absolute (canonical); `dir_name` is its
/// last component.
pub(crate) fn read_pack(dir: &Path, dir_name: &str) -> Result<Pack, PackFailure> {
    let file = dir.join(PACK_FILE);
    let fail = |pack_ref: &str, error| PackFailure {
        pack_ref: pack_ref.to_string(),
        error: Box::new(error),
    };

    let (_, doc) = read_yaml(&file, dir_name).map_err(|e| fail(dir_name, e))?;
    let fields = Fields::document(
        &file,
        dir_name,
        &doc,
        "name, description, version and author",
    )
    .map_err(|e| fail(dir_name, e))?;
    let pack_ref = resolve_ref(&fields, dir_name).map_err(|e| fail(dir_name, e))?;

    // From here on, errors name the resolved ref.
    let fields = fields.for_pack(&pack_ref);
    let read = || -> Result<Pack, ContentError> {
        Ok(Pack {
            name: fields.req_str("name")?,
            description: fields.req_str("description")?,
            version: version(&fields)?,
            author: fields.req_str("author")?,
            email: fields.opt_str("email")?,
            path: dir.to_path_buf(),
            pack_ref: pack_ref.clone(),
        })
    };
    read().map_err(|e| fail(&pack_ref, e))
}

/// `ref` if given, else the directory name if valid, else `name` if valid.
fn resolve_ref(fields: &Fields, dir_name: &str) -> Result<String, ContentError> {
    // An empty `ref` counts as absent, as StackStorm's `metadata.get("ref")`.
    if let Some(explicit) = fields.opt_str("ref")?.filter(|r| !r.is_empty()) {
        return if is_valid_ref(&explicit) {
            Ok(explicit)
        } else {
            Err(fields.error(
                "ref",
                format!("'{explicit}' is not a valid pack ref (expected ^[a-z0-9_]+$)"),
            ))
        };
    }
    if is_valid_ref(dir_name) {
        return Ok(dir_name.to_string());
    }
    let name = fields.opt_str("name")?.unwrap_or_default();
    if is_valid_ref(&name) {
        return Ok(name);
    }
    Err(fields.error(
        "ref",
        format!(
            "no pack ref: neither the directory name '{dir_name}' nor the name '{name}' \
             matches ^[a-z0-9_]+$; add a `ref` key"
        ),
    ))
}

/// `version`, which must be semver. A bare YAML number (`1`, `0.1`, `1.0`) is
/// taken as its text and is never semver (that needs two dots).
fn version(fields: &Fields) -> Result<String, ContentError> {
    let text = match fields.get("version") {
        None => return Err(fields.error("version", "required field is missing")),
        Some(Yaml::String(s)) => s.clone(),
        Some(Yaml::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(fields.error(
                "version",
                format!("expected a string, found {}", describe(other)),
            ))
        }
    };
    match semver::Version::parse(&text) {
        Ok(_) => Ok(text),
        Err(e) => Err(fields.error(
            "version",
            format!(
                "'{text}' is not a semantic version ({e}); expected MAJOR.MINOR.PATCH, e.g. 0.1.0"
            ),
        )),
    }
}
