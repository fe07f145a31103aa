//! Pack content: discovery, models and validation.
//!
//! Reads StackStorm packs exactly as StackStorm does (see
//! `shared/ST2-COMPAT.md`): `pack.yaml`, `sensors/*.yaml|yml`,
//! `triggers/*.yaml`, `config.schema.yaml` and `<configs_dir>/<pack>.yaml`.
//! Every error names the file, the field and what was expected.

#![warn(missing_docs)]

pub mod error;
pub mod fsread;
pub mod loader;
pub mod model;
pub mod schema;
pub mod uid;

mod config;
mod pack;
mod sensor;
mod trigger;
mod yaml;

#[cfg(test)]
mod tests;

pub use error::ContentError;
pub use loader::{load_packs, LoadOptions, LoadReport};
pub use model::*;
pub use schema::{CompiledSchema, SchemaViolation};
pub use uid::trigger_uid;
pub use yaml::yaml_to_json;

/// A JSON pointer into a config as a readable path: `/api/hosts/0` →
/// `config.api.hosts[0]`.
pub fn config_field_path(pointer: &str, instance: &serde_json::Value) -> String {
    config::field_path("config", pointer, instance)
}
