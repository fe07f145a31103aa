//! `reload`: read packs and register them (StackStorm's register-content).

use anyhow::{bail, Result};
use store::registrar::{self, RegisterSummary, RegisterWhat};
use store::Store;

use crate::config::Settings;
use crate::embedded;

/// How strict to be.
#[derive(Debug, Clone, Copy)]
pub struct ReloadMode {
    pub what: RegisterWhat,
    /// Report bad files and register the rest instead of stopping.
    pub no_fail: bool,
    /// Python sensors whose entry point does not compile or lacks its
    /// class are errors (default: warnings, as StackStorm registers them).
    pub fail_on_sensor_errors: bool,
}

/// What a registration did, and what the operator should hear about.
#[derive(Debug, Clone)]
pub struct ReloadOutcome {
    pub summary: RegisterSummary,
    /// Warnings (shadowed packs, skipped bad files in no-fail mode).
    pub warnings: Vec<String>,
}

/// Load every pack and register it. In fail-fast mode nothing is written
/// when any file is bad.
pub fn reload(settings: &Settings, store: &Store, mode: ReloadMode) -> Result<ReloadOutcome> {
    let mut opts = settings.load_options();
    opts.packs_paths = embedded::packs_paths_with_core(&opts.packs_paths, &settings.data_dir)?;
    let report = content::load_packs(&opts);
    let mut warnings = report.warnings.clone();
    if !report.errors.is_empty() {
        if !mode.no_fail {
            let more = report.errors.len() - 1;
            let hint = if more > 0 {
                format!(
                    " ({more} more bad file(s); --register-no-fail-on-failure registers the rest)"
                )
            } else {
                String::new()
            };
            bail!("{}{hint}\nnothing was registered", report.errors[0]);
        }
        warnings.extend(report.errors.iter().map(|e| format!("skipped: {e}")));
    }
    match check_sensor_code(settings, &report) {
        Ok(problems) if problems.is_empty() => {}
        Ok(problems) if mode.fail_on_sensor_errors => bail!(
            "{}\nnothing was registered (--register-fail-on-sensor-errors)",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
        Ok(problems) => warnings.extend(problems.iter().map(|p| p.to_string())),
        Err(e) => warnings.push(format!("sensor code not checked: {e}")),
    }
    let summary = registrar::register(&store.registry, &report, mode.what)?;
    store.flush()?;
    Ok(ReloadOutcome { summary, warnings })
}

/// The interpreter a Python sensor of `pack` runs under: its pack venv's,
/// else `python_binary`.
pub fn sensor_python(settings: &Settings, pack: &str) -> std::path::PathBuf {
    container::runtime::virtualenv_python(&settings.data_dir, pack)
        .unwrap_or_else(|| std::path::PathBuf::from(&settings.container.python_binary))
}

/// Parse (never run) every Python sensor's entry point with the
/// interpreter it will run under (its pack venv's, else `python_binary`)
/// and check its class is defined.
pub fn check_sensor_code(
    settings: &Settings,
    report: &content::LoadReport,
) -> Result<Vec<container::sensor_check::SensorProblem>> {
    use container::sensor_check::{check_sources, CheckItem};
    let mut by_python: std::collections::BTreeMap<std::path::PathBuf, Vec<CheckItem>> =
        Default::default();
    for pack in &report.packs {
        let python = sensor_python(settings, &pack.pack.pack_ref);
        for s in &pack.sensors {
            if s.runner_type != content::RunnerType::Python {
                continue;
            }
            by_python
                .entry(python.clone())
                .or_default()
                .push(CheckItem {
                    sensor_ref: s.sensor_ref.clone(),
                    file: s.entry_point.clone(),
                    class_name: s.class_name.clone(),
                });
        }
    }
    let mut problems = Vec::new();
    for (python, items) in by_python {
        problems.extend(check_sources(&python, &items)?);
    }
    Ok(problems)
}

/// The one-line report printed after a registration.
pub fn describe(s: &RegisterSummary) -> String {
    let mut out = format!(
        "Registered {} packs, {} sensors, {} trigger types, {} configs.",
        s.packs, s.sensors, s.trigger_types, s.configs
    );
    if s.removed_packs + s.removed_sensors + s.removed_trigger_types > 0 {
        out.push_str(&format!(
            " Removed {} packs, {} sensors, {} trigger types no longer on disk.",
            s.removed_packs, s.removed_sensors, s.removed_trigger_types
        ));
    }
    out
}
