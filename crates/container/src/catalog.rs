//! An in-memory snapshot of the trigger registry for the dispatch hot path:
//! trigger types with their payload schemas compiled once (StackStorm
//! rebuilds a validator per dispatch, ~400–500 µs each), and triggers by ref.

use std::collections::HashMap;

use content::schema::CompiledSchema;
use content::{Trigger, TriggerType};
use protocol::{codes, RpcError};
use serde_json::Value;

/// A trigger type ready for validation.
pub struct TypeEntry {
    pub trigger_type: TriggerType,
    /// `None` for an empty schema (everything validates) or an invalid one
    /// (see `schema_error`).
    pub schema: Option<CompiledSchema>,
    /// Why the registered schema could not be compiled, if it could not.
    pub schema_error: Option<String>,
}

/// Trigger types and triggers, indexed for dispatch.
#[derive(Default)]
pub struct Catalog {
    types: HashMap<String, TypeEntry>,
    triggers: HashMap<String, Trigger>,
}

/// The outcome of resolving a dispatch target.
pub struct Resolved<'a> {
    /// The trigger ref the instance records.
    pub trigger_ref: String,
    pub entry: &'a TypeEntry,
}

impl Catalog {
    /// Build from registry contents, compiling every payload schema.
    pub fn new(types: Vec<TriggerType>, triggers: Vec<Trigger>) -> Catalog {
        let types = types
            .into_iter()
            .map(|tt| {
                let (schema, schema_error) = if is_empty_schema(&tt.payload_schema) {
                    (None, None)
                } else {
                    match CompiledSchema::compile(&tt.payload_schema) {
                        Ok(s) => (Some(s), None),
                        Err(e) => {
                            tracing::error!(trigger_type = %tt.type_ref, "payload_schema does not compile: {e}");
                            (None, Some(e))
                        }
                    }
                };
                (tt.type_ref.clone(), TypeEntry { trigger_type: tt, schema, schema_error })
            })
            .collect();
        let triggers = triggers
            .into_iter()
            .map(|t| (t.trigger_ref.clone(), t))
            .collect();
        Catalog { types, triggers }
    }

    /// Load from the registry.
    pub fn load(registry: &store::Registry) -> Result<Catalog, store::StoreError> {
        Ok(Catalog::new(
            registry.trigger_types()?,
            registry.triggers()?,
        ))
    }

    /// A trigger type by ref.
    pub fn trigger_type(&self, type_ref: &str) -> Option<&TypeEntry> {
        self.types.get(type_ref)
    }

    /// Every trigger whose type is one of `types` (shadow triggers included).
    pub fn triggers_of(&self, types: &[String]) -> Vec<&Trigger> {
        let mut out: Vec<&Trigger> = self
            .triggers
            .values()
            .filter(|t| types.contains(&t.type_ref))
            .collect();
        out.sort_by(|a, b| a.trigger_ref.cmp(&b.trigger_ref));
        out
    }

    /// Resolve what a sensor passed as `trigger`: a type ref, a trigger ref,
    /// or an object with `ref`, or `type` (+ `parameters`).
    pub fn resolve(&self, trigger: &Value) -> Result<Resolved<'_>, RpcError> {
        match trigger {
            Value::String(s) => self.resolve_ref(s),
            Value::Object(obj) => {
                if let Some(r) = obj.get("ref").and_then(Value::as_str) {
                    return self.resolve_ref(r);
                }
                let Some(type_ref) = obj.get("type").and_then(Value::as_str) else {
                    return Err(RpcError::new(
                        codes::INVALID_PARAMS,
                        "a trigger given as an object needs a \"ref\" or a \"type\"",
                    ));
                };
                let params = obj.get("parameters").filter(|p| !is_empty_schema(p));
                match params {
                    None => self.resolve_ref(type_ref),
                    Some(params) => {
                        let found = self
                            .triggers
                            .values()
                            .find(|t| t.type_ref == type_ref && &t.parameters == params);
                        match found {
                            Some(t) => self.resolve_ref(&t.trigger_ref),
                            None => Err(unknown(&format!("{type_ref} with parameters {params}"))),
                        }
                    }
                }
            }
            _ => Err(RpcError::new(
                codes::INVALID_PARAMS,
                "\"trigger\" must be a string (trigger or trigger type ref) or an object",
            )),
        }
    }

    fn resolve_ref(&self, r: &str) -> Result<Resolved<'_>, RpcError> {
        let type_ref = match self.triggers.get(r) {
            Some(t) => t.type_ref.as_str(),
            None => r,
        };
        match self.types.get(type_ref) {
            Some(entry) => Ok(Resolved {
                trigger_ref: r.to_string(),
                entry,
            }),
            None => Err(unknown(r)),
        }
    }
}

fn unknown(what: &str) -> RpcError {
    RpcError::new(
        codes::UNKNOWN_TRIGGER,
        format!("unknown trigger '{what}': no such trigger or trigger type is registered"),
    )
}

fn is_empty_schema(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}
