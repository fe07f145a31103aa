//! Registration: turn what the content loader read into registry writes.
//!
//! Improvements over StackStorm, on purpose: content whose YAML disappeared
//! is removed, an operator's enable/disable survives, and a file that
//! failed to load (in no-fail mode) keeps its previous registration rather
//! than being silently dropped.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use content::{LoadReport, Trigger, TriggerType};
use serde_json::json;

use crate::registry::{Kind, RegistryChange, SensorRecord};
use crate::{Registry, StoreError};

/// What to register (StackStorm's `--register-*` flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterWhat {
    /// Sensors (and the trigger types they declare).
    pub sensors: bool,
    /// Trigger types (inline and `triggers/*.yaml`).
    pub triggers: bool,
    /// Pack configs.
    pub configs: bool,
}

impl RegisterWhat {
    /// Everything.
    pub fn all() -> Self {
        RegisterWhat {
            sensors: true,
            triggers: true,
            configs: true,
        }
    }
}

/// Counts printed after a registration.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RegisterSummary {
    pub packs: usize,
    pub sensors: usize,
    pub trigger_types: usize,
    pub configs: usize,
    pub removed_sensors: usize,
    pub removed_trigger_types: usize,
    pub removed_packs: usize,
}

/// Register the loaded content. Errors in `report` are the caller's to
/// judge (fail-fast callers must not call this when there are any).
pub fn register(
    registry: &Registry,
    report: &LoadReport,
    what: RegisterWhat,
) -> Result<RegisterSummary, StoreError> {
    let mut change = RegistryChange::default();
    let mut summary = RegisterSummary::default();

    let loaded: BTreeSet<&str> = report
        .packs
        .iter()
        .map(|p| p.pack.pack_ref.as_str())
        .collect();
    let failed: HashSet<&str> = report.failed_packs.iter().map(String::as_str).collect();
    let bad_files: HashSet<PathBuf> = report
        .errors
        .iter()
        .map(|e| e.file().to_path_buf())
        .collect();
    // A record is stale when its pack is gone (and did not just fail to
    // load) or when its pack loaded without it and its file is not merely broken.
    let stale = |pack: &str, file: &PathBuf| -> bool {
        if failed.contains(pack) || bad_files.contains(file) {
            return false;
        }
        true
    };

    for lp in &report.packs {
        change.put(Kind::Pack, &lp.pack.pack_ref, &lp.pack);
        summary.packs += 1;
    }
    for pack in registry.packs()? {
        if !loaded.contains(pack.pack_ref.as_str()) && !failed.contains(pack.pack_ref.as_str()) {
            change.delete(Kind::Pack, &pack.pack_ref);
            summary.removed_packs += 1;
        }
    }

    if what.sensors {
        let existing: BTreeMap<String, SensorRecord> = registry
            .sensors()?
            .into_iter()
            .map(|r| (r.sensor.sensor_ref.clone(), r))
            .collect();
        let mut seen = HashSet::new();
        for sensor in report.packs.iter().flat_map(|p| &p.sensors) {
            let operator_enabled = existing
                .get(&sensor.sensor_ref)
                .and_then(|r| r.operator_enabled);
            let record = SensorRecord {
                sensor: sensor.clone(),
                operator_enabled,
            };
            change.put(Kind::Sensor, &sensor.sensor_ref, &record);
            seen.insert(sensor.sensor_ref.clone());
            summary.sensors += 1;
        }
        for (sensor_ref, record) in &existing {
            if !seen.contains(sensor_ref)
                && stale(&record.sensor.pack, &record.sensor.metadata_file)
            {
                change.delete(Kind::Sensor, sensor_ref);
                summary.removed_sensors += 1;
            }
        }
    }

    if what.sensors || what.triggers {
        let existing_triggers: BTreeMap<String, Trigger> = registry
            .triggers()?
            .into_iter()
            .map(|t| (t.trigger_ref.clone(), t))
            .collect();
        let mut seen = HashSet::new();
        for tt in report.packs.iter().flat_map(|p| &p.trigger_types) {
            change.put(Kind::TriggerType, &tt.type_ref, tt);
            seen.insert(tt.type_ref.clone());
            summary.trigger_types += 1;
            match shadow_trigger(tt, existing_triggers.get(&tt.type_ref)) {
                Some(shadow) => change.put(Kind::Trigger, &shadow.trigger_ref, &shadow),
                None => {
                    // The type gained a parameters_schema: its shadow goes.
                    if existing_triggers
                        .get(&tt.type_ref)
                        .is_some_and(|t| t.name == tt.name)
                    {
                        change.delete(Kind::Trigger, &tt.type_ref);
                    }
                }
            }
        }
        for tt in registry.trigger_types()? {
            if !seen.contains(&tt.type_ref) && stale(&tt.pack, &tt.metadata_file) {
                change.delete(Kind::TriggerType, &tt.type_ref);
                summary.removed_trigger_types += 1;
                for t in existing_triggers
                    .values()
                    .filter(|t| t.type_ref == tt.type_ref)
                {
                    change.delete(Kind::Trigger, &t.trigger_ref);
                }
            }
        }
    }

    if what.configs {
        let mut seen = HashSet::new();
        for lp in &report.packs {
            if let Some(config) = &lp.config {
                change.put(Kind::Config, &config.pack, config);
                seen.insert(config.pack.clone());
                summary.configs += 1;
            }
        }
        for config in registry.configs()? {
            let file = config.file.clone().unwrap_or_default();
            if !seen.contains(&config.pack) && stale(&config.pack, &file) {
                change.delete(Kind::Config, &config.pack);
            }
        }
    }

    registry.apply(&change)?;
    Ok(summary)
}

/// The parameterless trigger StackStorm creates for a type with no
/// `parameters_schema`, so that `<pack>.<name>` resolves. Keeps the id of
/// an existing shadow so re-registration is idempotent.
fn shadow_trigger(tt: &TriggerType, existing: Option<&Trigger>) -> Option<Trigger> {
    if tt.parameters_schema.is_some() {
        return None;
    }
    let parameters = json!({});
    Some(Trigger {
        id: existing
            .map(|t| t.id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        uid: content::uid::trigger_uid(&tt.pack, &tt.name, &parameters),
        trigger_ref: tt.type_ref.clone(),
        name: tt.name.clone(),
        pack: tt.pack.clone(),
        type_ref: tt.type_ref.clone(),
        parameters,
    })
}
