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
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) && path.is_file()
        })
        .collect();
    files.sort();
    files
}

/// Trigger types, sensors and config of one pack whose `pack.yaml` loaded.
fn load_pack_content(pack: Pack, configs_dir: &Path, errors: &mut Vec<ContentError>) -> LoadedPack {
    let pack_ref = pack.pack_ref.clone();
    let mut trigger_types: Vec<TriggerType> = Vec::new();

    // Standalone types first: StackStorm registers triggers before sensors,
    // so a sensor redeclaring one is the later, rejected, declaration.
    for file in yaml_files(&pack.path.join("triggers"), &pack_ref, errors) {
        match read_trigger_file(&file, &pack_ref) {
            Ok(tt) => match declared_in(&trigger_types, &tt.type_ref) {
                Some(first) => errors.push(ContentError::field_error(
                    &file,
                    &pack_ref,
                    "name",
                    format!(
                        "trigger type '{}' is already declared in {}",
                        tt.type_ref,
                        first.display()
                    ),
                )),
                None => trigger_types.push(tt),
            },
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
        let clash = parsed.trigger_types.iter().enumerate().find_map(|(i, tt)| {
            declared_in(&trigger_types, &tt.type_ref)
                .map(|first| (i, &tt.type_ref, first.to_path_buf()))
        });
        if let Some((i, type_ref, first)) = clash {
            errors.push(ContentError::field_error(
                &file,
                &pack_ref,
                format!("trigger_types[{i}].name"),
                format!(
                    "trigger type '{type_ref}' is already declared in {}",
                    first.display()
                ),
            ));
            continue;
        }
        trigger_types.extend(parsed.trigger_types);
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

/// The file that declared trigger type `type_ref`, if any.
fn declared_in<'a>(types: &'a [TriggerType], type_ref: &str) -> Option<&'a Path> {
    types
        .iter()
        .find(|t| t.type_ref == type_ref)
        .map(|t| t.metadata_file.as_path())
}
