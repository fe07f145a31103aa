//! The dispatcher: resolve → validate → append to the trigger-instance log.
//! Durability (the ack) is the caller's: it waits on the returned
//! [`Completion`].

use std::sync::{Arc, RwLock};

use eventlog::{Completion, EventLog, RecordBatch, TriggerInstance};
use protocol::{codes, RpcError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::catalog::Catalog;

/// `dispatch` params as they arrive on the wire.
#[derive(Debug, Deserialize)]
pub struct DispatchParams {
    pub trigger: Value,
    #[serde(default)]
    pub payload: Value,
    #[serde(default)]
    pub trace_tag: Option<String>,
    #[serde(default)]
    pub trace_context: Option<Value>,
}

/// Validates and stores trigger instances for every sensor.
pub struct Dispatcher {
    catalog: RwLock<Arc<Catalog>>,
    log: Arc<dyn EventLog>,
}

/// A queued-but-not-yet-durable instance.
pub struct Accepted {
    pub id: String,
    pub completion: Completion,
}

impl Dispatcher {
    /// A dispatcher over `log`, resolving against `catalog`.
    pub fn new(catalog: Catalog, log: Arc<dyn EventLog>) -> Dispatcher {
        Dispatcher {
            catalog: RwLock::new(Arc::new(catalog)),
            log,
        }
    }

    /// A dispatcher over `log`, with the catalog loaded from the store's
    /// registry.
    pub fn open(
        store: &store::Store,
        log: Arc<dyn EventLog>,
    ) -> Result<Dispatcher, store::StoreError> {
        Ok(Dispatcher::new(Catalog::load(&store.registry)?, log))
    }

    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Swap in a new catalog (after registration or trigger changes).
    pub fn set_catalog(&self, catalog: Catalog) {
        let mut guard = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(catalog);
    }

    /// The trigger-instance log.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Validate and append. `sensor` is `None` for container-internal triggers.
    pub fn dispatch(
        &self,
        sensor: Option<&str>,
        params: DispatchParams,
    ) -> Result<Accepted, RpcError> {
        let instance = self.prepare(sensor, params)?;
        let mut batch = RecordBatch::new();
        batch.push_with(|b| instance.encode_into(b));
        Ok(Accepted {
            id: instance.id,
            completion: self.log.append(batch),
        })
    }

    /// Resolve the trigger, validate the payload and build the instance,
    /// without storing it (the caller appends, possibly in a batch).
    pub fn prepare(
        &self,
        sensor: Option<&str>,
        params: DispatchParams,
    ) -> Result<TriggerInstance, RpcError> {
        let payload = match params.payload {
            Value::Null => json!({}),
            p @ Value::Object(_) => p,
            other => {
                return Err(RpcError::new(
                    codes::INVALID_PARAMS,
                    format!(
                        "payload must be an object (a Python dict) or null, got {}",
                        type_name(&other)
                    ),
                ))
            }
        };
        let catalog = self.catalog();
        let resolved = catalog.resolve(&params.trigger)?;
        let entry = resolved.entry;
        // The core pack's triggers (process_spawn, key_value_pair.*,
        // webhooks, receivers, notifications) are the container's own
        // record: a sensor cannot forge them.
        if sensor.is_some() && entry.trigger_type.pack == "core" {
            return Err(RpcError::new(
                codes::INVALID_PARAMS,
                format!(
                    "{} is one of the container's own triggers (pack core): sensors cannot dispatch it",
                    entry.trigger_type.type_ref
                ),
            ));
        }
        if let Some(err) = &entry.schema_error {
            return Err(RpcError::new(
                codes::INTERNAL_ERROR,
                format!(
                    "payload_schema of {} is invalid: {err}",
                    entry.trigger_type.type_ref
                ),
            ));
        }
        if let Some(schema) = &entry.schema {
            if let Err(v) = schema.validate(&payload) {
                return Err(RpcError::new(
                    codes::VALIDATION_FAILED,
                    format!(
                        "payload for {} failed validation at '{}': {}",
                        resolved.trigger_ref,
                        if v.path.is_empty() { "/" } else { &v.path },
                        v.reason
                    ),
                )
                .with_data(json!({"path": v.path, "reason": v.reason})));
            }
        }
        let mut instance = TriggerInstance::new(
            resolved.trigger_ref,
            entry.trigger_type.type_ref.clone(),
            payload,
            sensor.map(str::to_string),
        );
        if let Some(tag) = params.trace_tag.filter(|t| !t.is_empty()) {
            instance.trace_tag = tag;
        }
        if let Some(ctx) = params.trace_context.filter(|c| !c.is_null()) {
            if let Some(tag) = ctx.get("trace_tag").and_then(Value::as_str) {
                instance.trace_tag = tag.to_string();
            }
            instance.trace_context = Some(ctx);
        }
        Ok(instance)
    }
}

/// The reply when the trigger-instance log refuses a write.
pub fn storage_error(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(
        codes::STORAGE_ERROR,
        format!("could not store the trigger instance: {e}"),
    )
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
