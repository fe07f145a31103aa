//! The content models: what a pack declares, after validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A pack, from its `pack.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pack {
    /// The resolved pack ref (`ref`, else directory name, else `name`).
    #[serde(rename = "ref")]
    pub pack_ref: String,
    /// Human-readable name (may contain spaces).
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Semver string (a bare YAML number is read as a string first).
    pub version: String,
    /// Author, as written.
    pub author: String,
    /// Author's e-mail, when given.
    pub email: Option<String>,
    /// Absolute path of the pack directory.
    pub path: PathBuf,
}

/// How a sensor process is started.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RunnerType {
    /// A StackStorm Python sensor class, run by the embedded wrapper.
    #[default]
    Python,
    /// Any executable speaking the pipe protocol (`crates/protocol/PROTOCOL.md`):
    /// `entry_point` is the program, `args` its arguments.
    Exec,
}

impl RunnerType {
    /// Every accepted `runner_type` spelling, for error messages.
    pub const VALID: &'static [&'static str] = &["python", "exec"];

    /// Parse a `runner_type` value as written in sensor metadata.
    pub fn parse(text: &str) -> Option<RunnerType> {
        match text {
            "python" => Some(RunnerType::Python),
            "exec" => Some(RunnerType::Exec),
            _ => None,
        }
    }

    /// The spelling used in metadata files.
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerType::Python => "python",
            RunnerType::Exec => "exec",
        }
    }
}

/// A sensor, from `sensors/*.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sensor {
    /// `<pack>.<class_name>`.
    #[serde(rename = "ref")]
    pub sensor_ref: String,
    /// The pack ref.
    pub pack: String,
    /// The Python class implementing the sensor, inside `entry_point`.
    pub class_name: String,
    /// Free-text description, when given.
    pub description: Option<String>,
    /// Absolute path of the entry point file (checked to exist).
    pub entry_point: PathBuf,
    /// Seconds between polls (`None` when not set; when set, ≥ 4).
    pub poll_interval: Option<u64>,
    /// `enabled` from the metadata file (default true).
    pub enabled: bool,
    /// How the sensor is run (`runner_type`, default `python`).
    pub runner_type: RunnerType,
    /// Arguments for an `exec` sensor's program (`args`, a list of strings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Refs (`<pack>.<name>`) of the trigger types this sensor declares.
    pub trigger_types: Vec<String>,
    /// Absolute path of the metadata YAML file.
    pub metadata_file: PathBuf,
    /// Lowercase hex MD5 over the metadata file bytes followed by the entry
    /// point file bytes: changes when either file changes.
    pub content_hash: String,
}

/// A trigger type, declared inline by a sensor or in `triggers/*.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TriggerType {
    /// `<pack>.<name>` (names may contain dots).
    #[serde(rename = "ref")]
    pub type_ref: String,
    /// The pack ref (always the declaring file's pack).
    pub pack: String,
    /// The name within the pack.
    pub name: String,
    /// Free-text description, when given.
    pub description: Option<String>,
    /// JSON Schema (StackStorm dialect), `{}` when absent.
    pub payload_schema: Value,
    /// JSON Schema for trigger parameters; `None` when absent (the type then
    /// gets a parameterless shadow trigger).
    pub parameters_schema: Option<Value>,
    /// Tag names (`{name: ...}` entries are reduced to their name).
    pub tags: Vec<String>,
    /// Absolute path of the file that declared it.
    pub metadata_file: PathBuf,
}

/// A trigger: a trigger type plus parameters (StackStorm's TriggerDB).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trigger {
    /// Stable unique id (UUID string).
    pub id: String,
    /// `trigger:<pack>:<name>:<md5 of parameters JSON with sorted keys>`.
    pub uid: String,
    /// `<pack>.<name>`.
    #[serde(rename = "ref")]
    pub trigger_ref: String,
    /// The type's name for shadow triggers, a UUID4 string otherwise.
    pub name: String,
    /// The pack ref.
    pub pack: String,
    /// The trigger type ref.
    #[serde(rename = "type")]
    pub type_ref: String,
    /// Parameters, validated against the type's `parameters_schema`.
    pub parameters: Value,
}

/// A pack config after validation, schema defaults filled in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PackConfig {
    /// The pack ref.
    pub pack: String,
    /// The config file, or `None` when only schema defaults apply.
    pub file: Option<PathBuf>,
    /// The config values (a JSON object), defaults filled in. Strings may
    /// hold Jinja templates (`{{ st2kv.system.NAME }}`): the container
    /// renders them when the sensor starts.
    pub values: Value,
    /// The pack's config schema as written (top-level key → property
    /// schema), when it has one: rendered values are checked against it.
    #[serde(default)]
    pub schema: Option<Value>,
}

/// Everything read from one pack.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPack {
    /// The pack's metadata.
    pub pack: Pack,
    /// Sensors that loaded, sorted by metadata file name.
    pub sensors: Vec<Sensor>,
    /// Trigger types: standalone ones (`triggers/`) first, then those
    /// declared by sensors, in file order.
    pub trigger_types: Vec<TriggerType>,
    /// The config schema as written (top-level keys → property schemas).
    pub config_schema: Option<Value>,
    /// Present when the pack has a schema or a config file.
    pub config: Option<PackConfig>,
}
