//! Pack discovery and loading.
//!
//! Loading never stops at the first problem: every bad file becomes one
//! entry in [`LoadReport::errors`] and is left out, so that the caller can
//! choose between StackStorm's fail-fast default and `--register-no-fail-on-failure`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::config::load_config;
use crate::pack::{read_pack, PACK_FILE};
use crate::sensor::read_sensor;
use crate::trigger::read_trigger_file;
use crate::{ContentError, LoadedPack, Pack, TriggerType};

/// Where to look and how strict to be.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Pack search path, in priority order (first pack with a ref wins).
    pub packs_paths: Vec<PathBuf>,
    /// Directory holding `<pack>.yaml` config files.
    pub configs_dir: PathBuf,
}

/// The outcome of reading every pack on the search path.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Packs that loaded (in the no-fail sense: bad sensor files of a pack
    /// are left out of `sensors` and reported in `errors`).
    pub packs: Vec<LoadedPack>,
    /// Every bad file, in discovery order (packs sorted by path, files by name).
    pub errors: Vec<ContentError>,
    /// Non-fatal notes, e.g. a pack ref shadowed by an earlier search path.
    pub warnings: Vec<String>,
    /// Refs of packs whose `pack.yaml` itself failed: their registry entries
    /// must be left alone, not removed.
    pub failed_packs: Vec<String>,
}

/// Read every pack on the search path.
///
/// Each directory of `packs_paths` is scanned in order; its subdirectories
/// holding a `pack.yaml` are packs, taken in name order. The first directory
/// to claim a pack ref owns it, even if its `pack.yaml` turns out to be
/// broken: later copies are skipped with a warning, so a ref is never both
/// loaded and failed.
pub fn load_packs(opts: &LoadOptions) -> LoadReport {
    let mut report = LoadReport::default();
    let mut owners: HashMap<String, PathBuf> = HashMap::new();
    let mut seen_dirs: HashSet<PathBuf> = HashSet::new();

    for base in &opts.packs_paths {
        let dirs = match pack_dirs(base) {
            Ok(dirs) => dirs,
            Err(warning) => {
                report.warnings.push(warning);
                continue;
            }
        };
        for (dir, dir_name) in dirs {
            // The same directory reached twice (repeated or overlapping
            // search path entries) is not a duplicate pack.
            if !seen_dirs.insert(dir.clone()) {
                continue;
            }
            let (pack_ref, outcome) = match read_pack(&dir, &dir_name) {
                Ok(pack) => (pack.pack_ref.clone(), Ok(pack)),
                Err(failure) => (failure.pack_ref, Err(failure.error)),
            };
            if let Some(owner) = owners.get(&pack_ref) {
                report.warnings.push(format!(
                    "pack '{pack_ref}' in {} is ignored: {} already provides it (the first pack on the \
                     packs path wins)",
                    dir.display(),
                    owner.display()
                ));
                continue;
            }
            owners.insert(pack_ref.clone(), dir.clone());
            match outcome {
                Ok(pack) => {
                    tracing::debug!(pack = %pack.pack_ref, path = %dir.display(), "loading pack");
                    report.packs.push(load_pack_content(
                        pack,
                        &opts.configs_dir,
                        &mut report.errors,
                        &mut report.warnings,
                    ));
                }
                Err(error) => {
                    report.errors.push(*error);
                    report.failed_packs.push(pack_ref);
                }
            }
        }
    }
    report
}

/// Pack directories directly under `base` (canonical path, directory name),
/// sorted by name. `Err` is a warning: a missing search path entry is not a
/// content error.
fn pack_dirs(base: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let entries = std::fs::read_dir(base)
        .map_err(|e| format!("packs path {} skipped: {e}", base.display()))?;
    let mut dirs: Vec<(PathBuf, String)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join(PACK_FILE).is_file())
        .filter_map(|path| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            Some((path.canonicalize().unwrap_or(path), name))
        })
        .collect();
    dirs.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(dirs)
}

/// `*.yaml` and `*.yml` files of `dir`, sorted by name; a missing directory
/// has none.
fn yaml_files(dir: &Path, pack_ref: &str, errors: &mut Vec<ContentError>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(source) => {
            errors.push(ContentError::Read {
                file: dir.to_path_buf(),
                pack: pack_ref.to_string(),
                source,
            });
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        // Every `*.yaml` entry, regular file or not: reading one that is a
        // FIFO, a device or a directory is an error naming it, never a
        // silent skip (or a hang).
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            )
        })
        .collect();
    files.sort();
    files
}

/// Trigger types, sensors and config of one pack whose `pack.yaml` loaded.
fn load_pack_content(
    pack: Pack,
    configs_dir: &Path,
    errors: &mut Vec<ContentError>,
    warnings: &mut Vec<String>,
) -> LoadedPack {
    let pack_ref = pack.pack_ref.clone();
    let mut trigger_types: Vec<TriggerType> = Vec::new();

    // Standalone types first: StackStorm registers triggers before sensors
    // and creates or updates trigger types by ref, so a type declared twice
    // is registered as its last declaration says.
    for file in yaml_files(&pack.path.join("triggers"), &pack_ref, errors) {
        match read_trigger_file(&file, &pack_ref) {
            Ok(tt) => merge_trigger_type(&mut trigger_types, tt, warnings),
            Err(e) => errors.push(e),
        }
    }

    let mut sensors = Vec::new();
    for file in yaml_files(&pack.path.join("sensors"), &pack_ref, errors) {
        let parsed = match read_sensor(&file, &pack_ref) {
            Ok(parsed) => parsed,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let sensor = &parsed.sensor;
        if let Some(first) = sensors
            .iter()
            .find(|s: &&crate::Sensor| s.class_name == sensor.class_name)
        {
            errors.push(ContentError::field_error(
                &file,
                &pack_ref,
                "class_name",
                format!(
                    "sensor '{}' is already declared in {}",
                    sensor.sensor_ref,
                    first.metadata_file.display()
                ),
            ));
            continue;
        }
        for tt in parsed.trigger_types {
            merge_trigger_type(&mut trigger_types, tt, warnings);
        }
        sensors.push(parsed.sensor);
    }

    let config = load_config(&pack, configs_dir, errors);
    LoadedPack {
        pack,
        sensors,
        trigger_types,
        config_schema: config.schema,
        config: config.config,
    }
}

/// Add a trigger type, or, when its ref is declared already, keep one
/// declaration: the same one silently, a different one with a warning
/// naming both files and what differs; the later declaration wins, as
/// StackStorm's create-or-update by ref registers the last one.
fn merge_trigger_type(types: &mut Vec<TriggerType>, tt: TriggerType, warnings: &mut Vec<String>) {
    let Some(first) = types.iter_mut().find(|t| t.type_ref == tt.type_ref) else {
        types.push(tt);
        return;
    };
    let mut differs = Vec::new();
    if first.description != tt.description {
        differs.push("description");
    }
    if first.payload_schema != tt.payload_schema {
        differs.push("payload_schema");
    }
    if first.parameters_schema != tt.parameters_schema {
        differs.push("parameters_schema");
    }
    if first.tags != tt.tags {
        differs.push("tags");
    }
    if differs.is_empty() {
        return;
    }
    warnings.push(format!(
        "trigger type '{}' is declared in {} and again, differently ({}), in {}: the later \
         declaration ({}) is registered, as StackStorm registers the last one",
        tt.type_ref,
        first.metadata_file.display(),
        differs.join(", "),
        tt.metadata_file.display(),
        tt.metadata_file.display(),
    ));
    *first = tt;
}
