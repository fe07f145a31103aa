//! Datastore operations with their internal triggers
//! (`core.st2.key_value_pair.create|update|value_change|delete`, secret
//! values masked). One place for both, used by the sensor RPC handlers,
//! the expiry sweeper and `sensorctl key`.

use std::sync::Arc;

use serde_json::{json, Value};
use store::datastore::{now_ms, Datastore, KeyValue, Scope};
use store::{StoreError, Ticket};

use crate::dispatcher::Dispatcher;

/// `core.st2.key_value_pair.create`.
pub const KV_CREATE: &str = "core.st2.key_value_pair.create";
/// `core.st2.key_value_pair.update`.
pub const KV_UPDATE: &str = "core.st2.key_value_pair.update";
/// `core.st2.key_value_pair.value_change`.
pub const KV_VALUE_CHANGE: &str = "core.st2.key_value_pair.value_change";
/// `core.st2.key_value_pair.delete`.
pub const KV_DELETE: &str = "core.st2.key_value_pair.delete";

/// The datastore plus the dispatcher its events go to.
#[derive(Clone)]
pub struct KvService {
    pub datastore: Datastore,
    dispatcher: Arc<Dispatcher>,
}

impl KvService {
    /// Wrap a datastore.
    pub fn new(datastore: Datastore, dispatcher: Arc<Dispatcher>) -> KvService {
        KvService {
            datastore,
            dispatcher,
        }
    }

    /// The store's datastore with the key file at `key_path` (if any):
    /// what both the container and `sensorctl` use.
    pub fn open(
        store: &store::Store,
        dispatcher: Arc<Dispatcher>,
        key_path: Option<&std::path::Path>,
    ) -> Result<KvService, StoreError> {
        let crypto = match key_path {
            Some(path) => Some(Arc::new(store::CryptoKey::load(path)?)),
            None => None,
        };
        Ok(KvService::new(
            store.datastore.clone().with_crypto(crypto),
            dispatcher,
        ))
    }

    /// Set a key and emit create/update (+ value_change when the value changed).
    pub fn set(
        &self,
        scope: Scope,
        name: &str,
        value: &str,
        ttl: Option<u64>,
        encrypt: bool,
    ) -> Result<Ticket, StoreError> {
        let w = self.datastore.set(scope, name, value, ttl, encrypt)?;
        match &w.before {
            None => self.emit(KV_CREATE, json!({"object": w.after.to_api(true)})),
            Some(before) => {
                self.emit(KV_UPDATE, json!({"object": w.after.to_api(true)}));
                if !self.datastore.same_value(before, &w.after) {
                    self.emit(
                        KV_VALUE_CHANGE,
                        json!({"old_object": before.to_api(true), "new_object": w.after.to_api(true)}),
                    );
                }
            }
        }
        Ok(w.ticket)
    }

    /// Store an exported record as is (`key load`), with the same events.
    pub fn load(&self, kv: KeyValue) -> Result<Ticket, StoreError> {
        let w = self.datastore.put_raw(kv)?;
        let method = if w.before.is_some() {
            KV_UPDATE
        } else {
            KV_CREATE
        };
        self.emit(method, json!({"object": w.after.to_api(true)}));
        Ok(w.ticket)
    }

    /// Delete a key; true if a live key was deleted.
    pub fn delete(&self, scope: Scope, name: &str) -> Result<(bool, Ticket), StoreError> {
        let (gone, ticket) = self.datastore.delete(scope, name)?;
        if let Some(kv) = &gone {
            self.emit(KV_DELETE, json!({"object": kv.to_api(true)}));
        }
        Ok((gone.is_some(), ticket))
    }

    /// Delete every expired key, emitting a delete event for each.
    pub fn sweep(&self) -> Result<Vec<KeyValue>, StoreError> {
        let (removed, _ticket) = self.datastore.sweep(now_ms())?;
        for kv in &removed {
            tracing::info!(key = %kv.name, scope = kv.scope.as_str(), "datastore key expired and was deleted");
            self.emit(KV_DELETE, json!({"object": kv.to_api(true)}));
        }
        Ok(removed)
    }

    fn emit(&self, trigger: &str, payload: Value) {
        crate::internal::emit(&self.dispatcher, trigger, payload);
    }
}

/// Run the expiry sweeper until the task is dropped: keys are deleted (and
/// their delete events stored) within ~200 ms of expiring.
pub async fn run_sweeper(kv: KvService) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = kv.sweep() {
            tracing::error!("datastore expiry sweep failed: {e}");
        }
    }
}
