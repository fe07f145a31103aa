//! `st2.datastore: st2`: the sensors' `kv.*` go to st2's `/api/v1/keys`
//! (system scope; local keys are st2's own `pack.Class:name`), so `st2 key
//! list` and st2's rules see them. Secrets are encrypted and decrypted by
//! st2 (its key, not ours); TTLs are st2's. st2 emits the
//! `core.st2.key_value_pair.*` triggers itself.

use std::sync::Arc;

use container::remote_kv::{KvFuture, RemoteDatastore, RemoteKv, RemoteKvError};
use serde_json::{json, Value};
use sinks::st2::api::{ApiError, St2Api};

use crate::st2_config::St2Settings;

/// The st2 datastore, through its API.
pub struct St2Datastore {
    api: St2Api,
}

impl St2Datastore {
    /// For `st2:` (needs `api_url`).
    pub fn remote(st2: &St2Settings) -> anyhow::Result<RemoteKv> {
        let url = st2.api_url.as_deref().ok_or_else(|| {
            anyhow::anyhow!("st2.datastore: 'st2' needs st2.api_url (and st2.api_key)")
        })?;
        let api = St2Api::new(
            url,
            st2.api_key.as_deref(),
            st2.ca_cert.as_deref(),
            st2.connect_timeout * 2,
        )
        .map_err(|e| anyhow::anyhow!("st2.datastore: {e}"))?;
        Ok(RemoteKv(Arc::new(St2Datastore { api })))
    }
}

fn error(e: ApiError) -> RemoteKvError {
    if e.is_refusal() {
        RemoteKvError::Refused(e.message)
    } else {
        RemoteKvError::Unavailable(e.message)
    }
}

/// st2's key object in the local datastore's answer shape.
fn shaped(v: &Value) -> Value {
    json!({
        "name": v["name"],
        "value": v["value"],
        "secret": v["secret"].as_bool().unwrap_or(false),
        "encrypted": v["encrypted"].as_bool().unwrap_or(false),
        "scope": "system",
        "expire_timestamp": v["expire_timestamp"],
    })
}

impl RemoteDatastore for St2Datastore {
    fn get(&self, name: &str, decrypt: bool) -> KvFuture<'_, Option<Value>> {
        let name = name.to_string();
        Box::pin(async move {
            Ok(self
                .api
                .key_get(&name, decrypt)
                .await
                .map_err(error)?
                .map(|v| shaped(&v)))
        })
    }

    fn list(
        &self,
        prefix: &str,
        offset: usize,
        limit: Option<usize>,
        decrypt: bool,
    ) -> KvFuture<'_, Vec<Value>> {
        let prefix = prefix.to_string();
        Box::pin(async move {
            let items = self
                .api
                .key_list(&prefix, offset, limit, decrypt)
                .await
                .map_err(error)?;
            Ok(items.iter().map(shaped).collect())
        })
    }

    fn set(&self, name: &str, value: &str, ttl: Option<u64>, encrypt: bool) -> KvFuture<'_, ()> {
        let (name, value) = (name.to_string(), value.to_string());
        Box::pin(async move {
            self.api
                .key_put(&name, &value, ttl, encrypt)
                .await
                .map_err(error)
        })
    }

    fn delete(&self, name: &str) -> KvFuture<'_, bool> {
        let name = name.to_string();
        Box::pin(async move { self.api.key_delete(&name).await.map_err(error) })
    }
}
