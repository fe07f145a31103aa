//! Data the container sends: the sensor's context, triggers, datastore keys.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A trigger (StackStorm's trigger dict): a trigger type plus parameters.
///
/// Delivered to [`Sensor::add_trigger`](crate::Sensor::add_trigger) and
/// friends. It serializes back to the wire shape (`ref`, `type`), so
/// `service.dispatch(&trigger, payload)` dispatches to exactly this trigger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// Stable unique id.
    #[serde(default)]
    pub id: String,
    /// `trigger:<pack>:<name>:<hash of the parameters>`.
    #[serde(default)]
    pub uid: String,
    /// The trigger ref, `<pack>.<name>` (wire field `ref`).
    #[serde(rename = "ref", default)]
    pub trigger_ref: String,
    /// The trigger's name: the type's name for a shadow trigger.
    #[serde(default)]
    pub name: String,
    /// The pack ref.
    #[serde(default)]
    pub pack: String,
    /// The trigger type ref (wire field `type`).
    #[serde(rename = "type", default)]
    pub type_ref: String,
    /// The trigger's parameters (`{}` for a shadow trigger).
    #[serde(default)]
    pub parameters: Value,
}

/// A datastore item, as `kv.get` and `kv.list` return it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyValuePair {
    /// The full key name (a local key includes its `<pack>.<Class>:` prefix).
    pub name: String,
    /// The value; for a secret read without `decrypt`, its ciphertext.
    #[serde(default)]
    pub value: String,
    /// Whether the value is stored encrypted.
    #[serde(default)]
    pub secret: bool,
    /// Whether `value` is the ciphertext.
    #[serde(default)]
    pub encrypted: bool,
    /// The scope (`st2kv.system` / `system`).
    #[serde(default)]
    pub scope: String,
    /// When the key expires (RFC 3339), if it has a TTL.
    #[serde(default)]
    pub expire_timestamp: Option<String>,
}

/// The sensor's context: the `init` result (`PROTOCOL.md`, "init").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SensorInfo {
    /// `<pack>.<ClassName>`.
    #[serde(rename = "ref", default)]
    pub sensor_ref: String,
    /// The pack ref.
    #[serde(default)]
    pub pack: String,
    /// The class name from the sensor metadata.
    #[serde(default)]
    pub class_name: String,
    /// Absolute path of the entry point.
    #[serde(default)]
    pub entry_point: Option<PathBuf>,
    /// `poll_interval` from the metadata, in seconds.
    #[serde(default)]
    pub poll_interval: Option<u64>,
    /// The pack config, schema defaults filled in (`{}` when there is none).
    #[serde(default)]
    pub config: Value,
    /// Refs of the sensor's trigger types.
    #[serde(default)]
    pub trigger_types: Vec<String>,
    /// Every existing trigger of those types (shadow triggers included).
    #[serde(default)]
    pub triggers: Vec<Value>,
    /// The container's frame size limit in bytes.
    #[serde(default)]
    pub max_frame_bytes: Option<usize>,
}

/// Counters of a connection's dispatches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Dispatch requests sent.
    pub dispatched: u64,
    /// Acknowledged: the trigger instance is durable.
    pub acked: u64,
    /// Answered with an error (validation, unknown trigger, storage...).
    pub failed: u64,
    /// Never answered because the connection closed first.
    pub lost: u64,
    /// Sent and not answered yet.
    pub in_flight: u64,
}
