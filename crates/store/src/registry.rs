//! The registry: packs, sensors, trigger types, triggers and pack configs,
//! each in its own tree keyed by ref, values JSON.
//!
//! Writes go through [`RegistryChange`], applied in one sled transaction so
//! a registration is all-or-nothing.

use content::{Pack, PackConfig, Sensor, Trigger, TriggerType};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::json::{decode, encode};
use crate::StoreError;

/// A registered sensor: its metadata plus the operator's override.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SensorRecord {
    /// What the pack declares.
    pub sensor: Sensor,
    /// Set by `sensorctl sensor enable|disable`; survives re-registration
    /// and wins over the metadata's `enabled`.
    pub operator_enabled: Option<bool>,
}

impl SensorRecord {
    /// Whether the sensor should run: the operator's choice if made, else
    /// the metadata's `enabled`.
    pub fn enabled(&self) -> bool {
        self.operator_enabled.unwrap_or(self.sensor.enabled)
    }
}

/// The registry trees of one database.
#[derive(Clone)]
pub struct Registry {
    packs: sled::Tree,
    sensors: sled::Tree,
    trigger_types: sled::Tree,
    triggers: sled::Tree,
    configs: sled::Tree,
}

/// Which registry tree a change touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pack,
    Sensor,
    TriggerType,
    Trigger,
    Config,
}

impl Kind {
    fn tree_name(self) -> &'static str {
        match self {
            Kind::Pack => "packs",
            Kind::Sensor => "sensors",
            Kind::TriggerType => "trigger_types",
            Kind::Trigger => "triggers",
            Kind::Config => "configs",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A batch of registry writes applied atomically.
#[derive(Debug, Default, Clone)]
pub struct RegistryChange {
    /// (tree, key, Some(JSON) to put / None to delete), applied in order.
    ops: Vec<(Kind, String, Option<Vec<u8>>)>,
}

impl RegistryChange {
    /// Put a record.
    pub fn put<T: Serialize>(&mut self, kind: Kind, key: &str, value: &T) {
        self.ops.push((kind, key.to_string(), Some(encode(value))));
    }

    /// Delete a record.
    pub fn delete(&mut self, kind: Kind, key: &str) {
        self.ops.push((kind, key.to_string(), None));
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl Registry {
    pub(crate) fn open(db: &sled::Db) -> Result<Registry, StoreError> {
        Ok(Registry {
            packs: db.open_tree(Kind::Pack.tree_name())?,
            sensors: db.open_tree(Kind::Sensor.tree_name())?,
            trigger_types: db.open_tree(Kind::TriggerType.tree_name())?,
            triggers: db.open_tree(Kind::Trigger.tree_name())?,
            configs: db.open_tree(Kind::Config.tree_name())?,
        })
    }

    fn tree(&self, kind: Kind) -> &sled::Tree {
        match kind {
            Kind::Pack => &self.packs,
            Kind::Sensor => &self.sensors,
            Kind::TriggerType => &self.trigger_types,
            Kind::Trigger => &self.triggers,
            Kind::Config => &self.configs,
        }
    }

    /// Apply a change atomically (all trees in one transaction). The caller
    /// flushes for durability.
    pub fn apply(&self, change: &RegistryChange) -> Result<(), StoreError> {
        if change.is_empty() {
            return Ok(());
        }
        let trees = (
            &self.packs,
            &self.sensors,
            &self.trigger_types,
            &self.triggers,
            &self.configs,
        );
        let result: Result<(), TransactionError<()>> = trees.transaction(|(p, s, tt, t, c)| {
            let views = [p, s, tt, t, c];
            for (kind, key, value) in &change.ops {
                let view = views[kind.index()];
                match value {
                    Some(bytes) => {
                        view.insert(key.as_bytes(), bytes.as_slice())?;
                    }
                    None => {
                        view.remove(key.as_bytes())?;
                    }
                }
            }
            Ok::<(), ConflictableTransactionError<()>>(())
        });
        result.map_err(|e| match e {
            TransactionError::Storage(e) => StoreError::Sled(e),
            TransactionError::Abort(()) => {
                StoreError::Invalid("registry transaction aborted".into())
            }
        })
    }

    fn list<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<T>, StoreError> {
        self.tree(kind)
            .iter()
            .map(|item| {
                let (k, v) = item?;
                decode(kind.tree_name(), &k, &v)
            })
            .collect()
    }

    fn get<T: DeserializeOwned>(&self, kind: Kind, key: &str) -> Result<Option<T>, StoreError> {
        match self.tree(kind).get(key.as_bytes())? {
            Some(v) => decode(kind.tree_name(), key.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    /// Every registered pack, sorted by ref.
    pub fn packs(&self) -> Result<Vec<Pack>, StoreError> {
        self.list(Kind::Pack)
    }

    /// One pack.
    pub fn pack(&self, pack_ref: &str) -> Result<Option<Pack>, StoreError> {
        self.get(Kind::Pack, pack_ref)
    }

    /// Every registered sensor, sorted by ref.
    pub fn sensors(&self) -> Result<Vec<SensorRecord>, StoreError> {
        self.list(Kind::Sensor)
    }

    /// One sensor.
    pub fn sensor(&self, sensor_ref: &str) -> Result<Option<SensorRecord>, StoreError> {
        self.get(Kind::Sensor, sensor_ref)
    }

    /// Record the operator's enable/disable choice for a sensor.
    pub fn set_operator_enabled(
        &self,
        sensor_ref: &str,
        enabled: bool,
    ) -> Result<SensorRecord, StoreError> {
        let mut record = self
            .sensor(sensor_ref)?
            .ok_or_else(|| StoreError::NotFound {
                kind: "sensor",
                key: sensor_ref.into(),
            })?;
        record.operator_enabled = Some(enabled);
        self.sensors
            .insert(sensor_ref.as_bytes(), encode(&record))?;
        Ok(record)
    }

    /// Every registered trigger type, sorted by ref.
    pub fn trigger_types(&self) -> Result<Vec<TriggerType>, StoreError> {
        self.list(Kind::TriggerType)
    }

    /// One trigger type.
    pub fn trigger_type(&self, type_ref: &str) -> Result<Option<TriggerType>, StoreError> {
        self.get(Kind::TriggerType, type_ref)
    }

    /// Every trigger (shadow and parameterized), sorted by ref.
    pub fn triggers(&self) -> Result<Vec<Trigger>, StoreError> {
        self.list(Kind::Trigger)
    }

    /// One trigger by ref.
    pub fn trigger(&self, trigger_ref: &str) -> Result<Option<Trigger>, StoreError> {
        self.get(Kind::Trigger, trigger_ref)
    }

    /// The trigger with this id.
    pub fn trigger_by_id(&self, id: &str) -> Result<Option<Trigger>, StoreError> {
        Ok(self.triggers()?.into_iter().find(|t| t.id == id))
    }

    /// The trigger of `type_ref` whose parameters equal `parameters`.
    pub fn find_trigger(
        &self,
        type_ref: &str,
        parameters: &serde_json::Value,
    ) -> Result<Option<Trigger>, StoreError> {
        Ok(self
            .triggers()?
            .into_iter()
            .find(|t| t.type_ref == type_ref && &t.parameters == parameters))
    }

    /// Create or replace a trigger.
    pub fn put_trigger(&self, trigger: &Trigger) -> Result<(), StoreError> {
        let mut change = RegistryChange::default();
        change.put(Kind::Trigger, &trigger.trigger_ref, trigger);
        self.apply(&change)
    }

    /// Delete a trigger by ref.
    pub fn delete_trigger(&self, trigger_ref: &str) -> Result<(), StoreError> {
        let mut change = RegistryChange::default();
        change.delete(Kind::Trigger, trigger_ref);
        self.apply(&change)
    }

    /// Every pack config.
    pub fn configs(&self) -> Result<Vec<PackConfig>, StoreError> {
        self.list(Kind::Config)
    }

    /// One pack's config.
    pub fn config(&self, pack: &str) -> Result<Option<PackConfig>, StoreError> {
        self.get(Kind::Config, pack)
    }

    /// True when nothing has ever been registered.
    pub fn is_empty(&self) -> bool {
        self.packs.is_empty()
    }
}
