//! [`SensorService`]: what a sensor uses to talk to the container.

use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

use crate::client::{AckResult, Client, StopReason};
use crate::error::Error;
use crate::types::{DispatchStats, KeyValuePair, SensorInfo};

/// Separator between a sensor's local key prefix and the key name.
pub const DATASTORE_NAME_SEPARATOR: &str = ":";

/// The sensor's connection to the container: dispatch, datastore, logging,
/// poll interval and the `init` context.
///
/// Cheap to clone (an `Arc`); clones share the connection, so a sensor can
/// hand one to every task it spawns. All methods are safe to call from many
/// tasks at once.
#[derive(Clone)]
pub struct SensorService {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    info: SensorInfo,
    /// `<pack>.<ClassName>:`
    local_prefix: String,
    poll_interval: Mutex<Option<Duration>>,
}

impl std::fmt::Debug for SensorService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensorService")
            .field("sensor_ref", &self.inner.info.sensor_ref)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The pending acknowledgement of one dispatch, returned by
/// [`SensorService::dispatch`] once the request is queued.
///
/// Await [`ack`](DispatchHandle::ack) to learn the outcome, or drop the
/// handle: the dispatch still counts against the window and
/// [`SensorService::flush`] still waits for it, and if the container rejects
/// it the reason is logged (a `warning` to the container log).
#[derive(Debug)]
pub struct DispatchHandle {
    id: u64,
    rx: oneshot::Receiver<AckResult>,
}

impl DispatchHandle {
    /// The JSON-RPC request id of the dispatch.
    pub fn request_id(&self) -> u64 {
        self.id
    }

    /// Wait for the container's answer: the trigger instance id once the
    /// instance is durable, or why it was not stored ([`Error::Rpc`] with
    /// `-32010` validation failed, `-32011` unknown trigger, `-32602` bad
    /// params, `-32030` storage failure), or [`Error::Closed`].
    pub async fn ack(self) -> Result<String, Error> {
        self.rx.await.unwrap_or(Err(Error::Closed))
    }
}

#[derive(Serialize)]
struct DispatchParams<'a, T: Serialize + ?Sized, P: Serialize + ?Sized> {
    trigger: &'a T,
    payload: &'a P,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_tag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_context: Option<&'a Value>,
}

impl SensorService {
    pub(crate) fn new(client: Client, info: SensorInfo) -> SensorService {
        let local_prefix = format!(
            "{}.{}{DATASTORE_NAME_SEPARATOR}",
            info.pack, info.class_name
        );
        let poll_interval = info.poll_interval.map(Duration::from_secs);
        SensorService {
            inner: Arc::new(Inner {
                client,
                info,
                local_prefix,
                poll_interval: Mutex::new(poll_interval),
            }),
        }
    }

    // ------------------------------------------------------------ context

    /// The sensor's ref, `<pack>.<ClassName>`.
    pub fn sensor_ref(&self) -> &str {
        &self.inner.info.sensor_ref
    }

    /// The pack ref.
    pub fn pack(&self) -> &str {
        &self.inner.info.pack
    }

    /// The sensor's class name (from its metadata).
    pub fn class_name(&self) -> &str {
        &self.inner.info.class_name
    }

    /// The pack config (schema defaults filled in; `{}` when none).
    pub fn config(&self) -> &Value {
        &self.inner.info.config
    }

    /// Refs of the trigger types the sensor declares.
    pub fn trigger_types(&self) -> &[String] {
        &self.inner.info.trigger_types
    }

    /// Everything `init` returned.
    pub fn info(&self) -> &SensorInfo {
        &self.inner.info
    }

    /// The poll interval: the metadata's `poll_interval` unless changed with
    /// [`set_poll_interval`](Self::set_poll_interval). `None` for a sensor
    /// whose metadata sets none (a [`PollingSensor`](crate::PollingSensor)
    /// starts with [`DEFAULT_POLL_INTERVAL`](crate::DEFAULT_POLL_INTERVAL)).
    pub fn get_poll_interval(&self) -> Option<Duration> {
        *self
            .inner
            .poll_interval
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Change the poll interval; a polling sensor uses the new value from
    /// its next sleep on.
    pub fn set_poll_interval(&self, interval: Duration) {
        *self
            .inner
            .poll_interval
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(interval);
    }

    // ----------------------------------------------------------- dispatch

    /// Dispatch a trigger instance.
    ///
    /// `trigger` is a trigger type ref (`"pack.name"`), a trigger ref, or a
    /// [`Trigger`](crate::Trigger) (anything serializing to a string or a
    /// trigger object). `payload` must serialize to a JSON object (or
    /// `null`, meaning `{}`); a `#[derive(Serialize)]` struct works and
    /// skips building a `serde_json::Value`.
    ///
    /// Pipelined: returns as soon as the request is queued, without waiting
    /// for the container. At most [`window`](Self::window) dispatches are
    /// unacknowledged at once; beyond that this waits for an ack. Await the
    /// returned handle's [`ack`](DispatchHandle::ack) for the outcome, or
    /// [`flush`](Self::flush) for all of them.
    ///
    /// Errors here mean nothing was sent: [`Error::Closed`],
    /// [`Error::FrameTooLarge`], [`Error::Encode`].
    pub async fn dispatch(
        &self,
        trigger: impl Serialize,
        payload: impl Serialize,
    ) -> Result<DispatchHandle, Error> {
        self.dispatch_full(&trigger, &payload, None, None).await
    }

    /// [`dispatch`](Self::dispatch) with a trace tag stored with the
    /// instance (an empty tag means none, as in StackStorm).
    pub async fn dispatch_with_trace_tag(
        &self,
        trigger: impl Serialize,
        payload: impl Serialize,
        trace_tag: &str,
    ) -> Result<DispatchHandle, Error> {
        let tag = (!trace_tag.is_empty()).then_some(trace_tag);
        self.dispatch_full(&trigger, &payload, tag, None).await
    }

    /// [`dispatch`](Self::dispatch) with a trace context object (for
    /// example `{"trace_tag": "...", "id": "..."}`), stored as given.
    pub async fn dispatch_with_context(
        &self,
        trigger: impl Serialize,
        payload: impl Serialize,
        trace_context: &Value,
    ) -> Result<DispatchHandle, Error> {
        self.dispatch_full(&trigger, &payload, None, Some(trace_context))
            .await
    }

    async fn dispatch_full<T: Serialize + ?Sized, P: Serialize + ?Sized>(
        &self,
        trigger: &T,
        payload: &P,
        trace_tag: Option<&str>,
        trace_context: Option<&Value>,
    ) -> Result<DispatchHandle, Error> {
        let params = DispatchParams {
            trigger,
            payload,
            trace_tag,
            trace_context,
        };
        let (id, rx) = self.inner.client.dispatch(&params).await?;
        Ok(DispatchHandle { id, rx })
    }

    /// Wait until every dispatch sent before this call has been answered
    /// (acknowledged or rejected). Dispatches started while it waits queue
    /// behind it. `Err(Error::Closed)` if the connection closed with
    /// dispatches unanswered.
    pub async fn flush(&self) -> Result<(), Error> {
        self.inner.client.flush().await
    }

    /// The in-flight window: how many dispatches may be unacknowledged.
    pub fn window(&self) -> usize {
        self.inner.client.window_size()
    }

    /// Dispatch counters of this connection.
    pub fn stats(&self) -> DispatchStats {
        self.inner.client.stats()
    }

    // ---------------------------------------------------------- datastore

    /// The full key name: `<pack>.<ClassName>:<name>` when `local`.
    pub fn key_name(&self, name: &str, local: bool) -> String {
        if local {
            format!("{}{name}", self.inner.local_prefix)
        } else {
            name.to_string()
        }
    }

    /// The value of a key, `None` when it is missing or expired.
    ///
    /// `local` (StackStorm's default is `true`) names a key of this sensor:
    /// `<pack>.<ClassName>:<name>`. `decrypt` returns a secret's plaintext
    /// (else its ciphertext).
    pub async fn get_value(
        &self,
        name: &str,
        local: bool,
        decrypt: bool,
    ) -> Result<Option<String>, Error> {
        Ok(self.get_key(name, local, decrypt).await?.map(|kv| kv.value))
    }

    /// Like [`get_value`](Self::get_value) but returns the whole key object
    /// (secret flag, expiry, ...).
    pub async fn get_key(
        &self,
        name: &str,
        local: bool,
        decrypt: bool,
    ) -> Result<Option<KeyValuePair>, Error> {
        let name = self.key_name(name, local);
        let v = self
            .inner
            .client
            .call(
                "kv.get",
                &json!({"name": name, "decrypt": decrypt, "scope": "system"}),
            )
            .await?;
        if v.is_null() {
            return Ok(None);
        }
        serde_json::from_value(v)
            .map(Some)
            .map_err(|e| Error::Protocol {
                method: "kv.get".into(),
                detail: e.to_string(),
            })
    }

    /// Store `value.to_string()` (StackStorm stores `str(value)`), so
    /// numbers work as well as strings. Returns `true`.
    ///
    /// `ttl` in seconds (`None` or `Some(0)`: no expiry; setting a key again
    /// without a ttl clears an earlier one). `encrypt` stores a secret (the
    /// container needs an encryption key). The write takes effect only
    /// after every earlier dispatch of this sensor is durable, so "dispatch,
    /// then store a checkpoint" never loses an event.
    pub async fn set_value(
        &self,
        name: &str,
        value: impl Display,
        ttl: Option<u64>,
        local: bool,
        encrypt: bool,
    ) -> Result<bool, Error> {
        let name = self.key_name(name, local);
        let mut params = json!({
            "name": name,
            "value": value.to_string(),
            "scope": "system",
            "encrypt": encrypt,
        });
        if let Some(ttl) = ttl.filter(|t| *t > 0) {
            params["ttl"] = json!(ttl);
        }
        let v = self.inner.client.call("kv.set", &params).await?;
        Ok(v.as_bool().unwrap_or(true))
    }

    /// Delete a key: `true` if a live key was deleted, `false` if there was
    /// none.
    pub async fn delete_value(&self, name: &str, local: bool) -> Result<bool, Error> {
        let name = self.key_name(name, local);
        let v = self
            .inner
            .client
            .call("kv.delete", &json!({"name": name, "scope": "system"}))
            .await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// Every key whose name starts with `prefix`, by name. With `local`,
    /// only this sensor's keys (`<pack>.<ClassName>:` + `prefix`). Names in
    /// the result are full names, prefix included. Secrets are returned
    /// encrypted. Not paged (StackStorm's API pages by 100): use
    /// [`list_values_page`](Self::list_values_page) for that.
    pub async fn list_values(
        &self,
        local: bool,
        prefix: Option<&str>,
    ) -> Result<Vec<KeyValuePair>, Error> {
        self.list_values_page(local, prefix, None, 0).await
    }

    /// [`list_values`](Self::list_values) with `limit` and `offset`.
    pub async fn list_values_page(
        &self,
        local: bool,
        prefix: Option<&str>,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<KeyValuePair>, Error> {
        let prefix = match (local, prefix) {
            (true, p) => Some(self.key_name(p.unwrap_or(""), true)),
            (false, p) => p.map(str::to_string),
        };
        let v = self
            .inner
            .client
            .call(
                "kv.list",
                &json!({"prefix": prefix, "limit": limit, "offset": offset, "scope": "system"}),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| Error::Protocol {
            method: "kv.list".into(),
            detail: e.to_string(),
        })
    }

    /// What StackStorm's `get_user_info()` returns for the sensor's user.
    pub async fn get_user_info(&self) -> Result<Value, Error> {
        self.inner.client.call("user.info", &json!({})).await
    }

    // ------------------------------------------------------------ logging

    /// Send a line to the container log, tagged with the sensor ref.
    /// `level` is `debug`, `info`, `warning`, `error` or `critical`.
    /// Returns `false` if it was dropped (connection closed, or more than
    /// 10 000 log lines waiting to be written).
    ///
    /// `tracing` events reach the container log the same way when the SDK's
    /// log bridge is installed (the default of [`run`](crate::run)).
    pub fn log(&self, level: &str, message: &str) -> bool {
        self.inner.client.log(level, message, None)
    }

    // ------------------------------------------------------- escape hatch

    /// Send any request of the protocol and wait for its result (for
    /// methods this type has no wrapper for).
    pub async fn call(&self, method: &str, params: &Value) -> Result<Value, Error> {
        self.inner.client.call(method, params).await
    }

    /// Send any notification of the protocol.
    pub fn notify(&self, method: &str, params: &Value) -> Result<(), Error> {
        self.inner.client.notify(method, params)
    }

    // ---------------------------------------------------------- lifecycle

    /// Whether the sensor has been asked to stop (a `shutdown` notification
    /// or SIGTERM/SIGINT).
    pub fn is_stopping(&self) -> bool {
        self.inner.client.stop_watch().borrow().is_some()
    }

    /// Resolves once the sensor is asked to stop. Tasks a sensor spawns can
    /// select on it to end in time; `run()` itself is simply dropped.
    pub async fn stopping(&self) {
        let mut rx: watch::Receiver<Option<StopReason>> = self.inner.client.stop_watch();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Whether the connection to the container is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.client.is_closed()
    }
}
