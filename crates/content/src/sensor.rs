//! Sensor metadata (`sensors/*.yaml`).

use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::trigger::parse_trigger_type;
use crate::uid::hex;
use crate::yaml::{describe, read_yaml, Fields};
use crate::{ContentError, RunnerType, Sensor, TriggerType};

/// StackStorm's lower bound for `poll_interval`, in seconds.
pub(crate) const MIN_POLL_INTERVAL: u64 = 4;

/// A sensor and the trigger types its metadata declares.
#[derive(Debug)]
pub(crate) struct ParsedSensor {
    pub sensor: Sensor,
    pub trigger_types: Vec<TriggerType>,
}

/// Read one sensor metadata file of pack `pack_ref`.
pub(crate) fn read_sensor(file: &Path, pack_ref: &str) -> Result<ParsedSensor, ContentError> {
    let (meta_bytes, doc) = read_yaml(file, pack_ref)?;
    let fields = Fields::document(file, pack_ref, &doc, "class_name and entry_point")?;

    let class_name = fields.req_str("class_name")?;
    let entry_point = entry_point(&fields)?;
    let description = fields.opt_str("description")?;
    let enabled = fields.opt_bool("enabled")?.unwrap_or(true);
    let poll_interval = fields.opt_u64("poll_interval")?;
    if let Some(secs) = poll_interval.filter(|s| *s < MIN_POLL_INTERVAL) {
        return Err(fields.error(
            "poll_interval",
            format!("must be at least {MIN_POLL_INTERVAL} seconds, found {secs}"),
        ));
    }
    if let Some(declared) = fields.opt_str("pack")? {
        if declared != pack_ref {
            return Err(fields.error(
                "pack",
                format!("declares pack '{declared}' but the file is in pack '{pack_ref}'"),
            ));
        }
    }
    let runner_type = match fields.opt_str("runner_type")? {
        None => RunnerType::default(),
        Some(text) => RunnerType::parse(&text).ok_or_else(|| {
            fields.error(
                "runner_type",
                format!(
                    "unknown runner type '{text}' (valid: {})",
                    RunnerType::VALID.join(", ")
                ),
            )
        })?,
    };

    let mut args = Vec::new();
    for (i, item) in fields.opt_list("args")?.iter().enumerate() {
        match item.as_str() {
            Some(a) => args.push(a.to_string()),
            None => {
                return Err(fields.error(
                    &format!("args[{i}]"),
                    format!("expected a string, found {}", describe(item)),
                ))
            }
        }
    }
    if !args.is_empty() && runner_type != RunnerType::Exec {
        return Err(fields.error("args", "only `runner_type: exec` sensors take args"));
    }
    if runner_type == RunnerType::Exec && !is_executable(&entry_point) {
        return Err(fields.error(
            "entry_point",
            format!(
                "'{}' is not executable (chmod +x it): runner_type exec runs it directly",
                entry_point.display()
            ),
        ));
    }

    let mut trigger_types = Vec::new();
    for (i, item) in fields.opt_list("trigger_types")?.iter().enumerate() {
        let nested = fields.nested(fields.path(&format!("trigger_types[{i}]")), item)?;
        let tt = parse_trigger_type(&nested, file)?;
        if trigger_types
            .iter()
            .any(|t: &TriggerType| t.type_ref == tt.type_ref)
        {
            return Err(nested.error(
                "name",
                format!(
                    "trigger type '{}' is declared twice in this file",
                    tt.type_ref
                ),
            ));
        }
        trigger_types.push(tt);
    }

    let entry_bytes =
        crate::fsread::read_bounded(&entry_point).map_err(|source| ContentError::Read {
            file: entry_point.clone(),
            pack: pack_ref.to_string(),
            source,
        })?;
    let mut hasher = Md5::new();
    hasher.update(&meta_bytes);
    hasher.update(&entry_bytes);

    Ok(ParsedSensor {
        sensor: Sensor {
            sensor_ref: format!("{pack_ref}.{class_name}"),
            pack: pack_ref.to_string(),
            class_name,
            description,
            entry_point,
            poll_interval,
            enabled,
            runner_type,
            args,
            trigger_types: trigger_types.iter().map(|t| t.type_ref.clone()).collect(),
            metadata_file: file.to_path_buf(),
            content_hash: hex(&hasher.finalize()),
        },
        trigger_types,
    })
}

/// `entry_point`, relative to the metadata file's directory; must be an
/// existing file. Returned canonical.
fn entry_point(fields: &Fields) -> Result<PathBuf, ContentError> {
    let written = fields.req_str("entry_point")?;
    let base = fields.file.parent().unwrap_or(Path::new("."));
    let joined = base.join(&written);
    // The pack directory (sensor YAML lives in `<pack>/sensors/`): an entry
    // point, symlinks resolved, must stay inside it.
    let pack_dir = base
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .unwrap_or_else(|| base.to_path_buf());
    match joined.canonicalize() {
        Ok(path) if !path.starts_with(&pack_dir) => Err(fields.error(
            "entry_point",
            format!(
                "'{written}' resolves to {}, outside the pack directory {} (entry points must stay inside their pack, symlinks included)",
                path.display(),
                pack_dir.display()
            ),
        )),
        Ok(path) if path.is_file() => Ok(path),
        Ok(path) => Err(fields.error("entry_point", format!("'{}' is not a file", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(fields.error(
            "entry_point",
            format!("file '{}' does not exist", joined.display()),
        )),
        Err(e) => Err(fields.error(
            "entry_point",
            format!("cannot resolve '{}': {e}", joined.display()),
        )),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}
