//! The per-sensor `SensorService`: reads the sensor's requests strictly in
//! order and answers them.
//!
//! Two tasks per connection. The reader parses and handles each message in
//! order; dispatches are queued for the log's group commit without waiting
//! for it. Every reply goes into an ordered outbox with what it must wait
//! for (a log [`Completion`], a datastore [`Ticket`]); the writer waits for
//! that to be durable before writing. So a dispatch is acked only once
//! durable, and the reply to any later call is written only after every
//! earlier write of this sensor is durable.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use eventlog::{Completion, RecordBatch, TriggerInstance};
use protocol::message::to_frame;
use protocol::{codes, Frame, FrameReader, Incoming, Notification, Response, RpcError};
use serde_json::{json, Value};
use store::Ticket;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::dispatcher::{DispatchParams, Dispatcher};
use crate::kv::KvService;
use crate::status::{SensorState, SensorStatus};
use store::datastore::Scope;
use store::StoreError;

/// Replies waiting to be written; bounded so a sensor that never reads its
/// replies is slowed down rather than growing our memory.
const OUTBOX_CAPACITY: usize = 4096;
/// Most dispatches queued as one log batch.
const MAX_BATCH: usize = 256;
/// How long a sensor's dispatches wait for the log writer to catch up
/// (`log.max_queued_bytes` behind) before they fail.
const ROOM_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// Largest write batch.
const WRITE_BATCH: usize = 256 * 1024;

/// What a sensor learns from `init`.
#[derive(Debug, Clone)]
pub struct SensorContext {
    pub sensor_ref: String,
    pub pack: String,
    pub class_name: String,
    pub entry_point: PathBuf,
    pub poll_interval: Option<u64>,
    pub config: Value,
    pub trigger_types: Vec<String>,
    pub runner_type: content::RunnerType,
    /// Arguments of an `exec` sensor's program.
    pub args: Vec<String>,
}

/// What a reply waits for: this sensor's latest log batch and datastore
/// write before it.
#[derive(Clone, Default)]
struct Wait {
    log: Option<Completion>,
    kv: Ticket,
}

impl Wait {
    /// Wait for both; the seq of the log batch's first record.
    async fn wait(&self, kv: &store::GroupCommit) -> Result<Option<u64>, RpcError> {
        let seq = match &self.log {
            Some(c) => Some(c.wait().await.map_err(storage)?),
            None => None,
        };
        kv.wait(self.kv).await.map_err(storage)?;
        Ok(seq)
    }
}

enum Outbound {
    /// A reply to a request, written once what it waits for is durable.
    Reply {
        wait: Wait,
        id: Value,
        result: Result<Value, RpcError>,
        /// For a dispatch: its place in the log batch (the ack gains `seq`).
        batch_index: Option<u64>,
    },
    /// A notification or protocol error, written in order.
    Frame(Vec<u8>),
}

/// The supervisor's handle on a live connection.
#[derive(Clone)]
pub struct ConnectionHandle {
    outbox: mpsc::Sender<Outbound>,
    initialized: Arc<AtomicBool>,
}

impl ConnectionHandle {
    /// Send a notification (best effort: a closed connection is ignored).
    pub async fn notify(&self, method: &str, params: Value) {
        let _ = self
            .outbox
            .send(Outbound::Frame(to_frame(&Notification::new(
                method, params,
            ))))
            .await;
    }

    /// Send a notification, waiting at most `deadline` for room in the
    /// bounded outbox; whether it was queued (a closed connection counts as
    /// delivered: there is nobody left to tell).
    pub async fn notify_within(
        &self,
        method: &str,
        params: Value,
        deadline: std::time::Duration,
    ) -> bool {
        let frame = Outbound::Frame(to_frame(&Notification::new(method, params)));
        tokio::time::timeout(deadline, self.outbox.send(frame))
            .await
            .is_ok()
    }

    /// Send a notification without waiting (used while stopping, when the
    /// outbox may be full because the sensor stopped reading).
    pub fn notify_now(&self, method: &str, params: Value) {
        let _ = self
            .outbox
            .try_send(Outbound::Frame(to_frame(&Notification::new(
                method, params,
            ))));
    }

    /// Whether the connection has ended (its writer is gone).
    pub fn is_closed(&self) -> bool {
        self.outbox.is_closed()
    }

    /// Whether the sensor called `init` (and so wants trigger notifications).
    pub fn initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }
}

/// Everything a connection needs, shared across sensors.
pub struct ServiceDeps {
    pub dispatcher: Arc<Dispatcher>,
    pub kv: KvService,
    /// When set, `kv.*` go there instead of `kv` (st2's datastore).
    pub remote_kv: Option<crate::remote_kv::RemoteKv>,
    pub max_frame_bytes: usize,
}

/// Serve one sensor's connection until EOF. Returns the handle and a join
/// handle that completes when both reader and writer are done.
pub fn serve(
    conn: UnixStream,
    ctx: Arc<SensorContext>,
    deps: Arc<ServiceDeps>,
    status: Arc<SensorStatus>,
) -> (ConnectionHandle, tokio::task::JoinHandle<()>) {
    let (rd, wr) = conn.into_split();
    let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
    let handle = ConnectionHandle {
        outbox: tx.clone(),
        initialized: Arc::new(AtomicBool::new(false)),
    };
    let reader = Reader {
        ctx: ctx.clone(),
        deps: deps.clone(),
        status,
        outbox: tx,
        last_write: Wait::default(),
        batch: Vec::new(),
        handle: handle.clone(),
        warnings: Default::default(),
    };
    let writer = tokio::spawn(write_loop(wr, rx, deps.clone(), ctx.sensor_ref.clone()));
    let join = tokio::spawn(async move {
        reader.run(rd, deps.max_frame_bytes).await;
        let _ = writer.await;
    });
    (handle, join)
}

struct Reader {
    ctx: Arc<SensorContext>,
    deps: Arc<ServiceDeps>,
    status: Arc<SensorStatus>,
    outbox: mpsc::Sender<Outbound>,
    /// This sensor's latest writes (log batch, kv change): every later
    /// reply waits for them.
    last_write: Wait,
    /// Validated dispatches not stored yet, with their request ids
    /// (`None` for a dispatch sent as a notification).
    batch: Vec<(Option<Value>, TriggerInstance)>,
    handle: ConnectionHandle,
    /// Budget of warnings about what this sensor sends.
    warnings: crate::ratelimit::WarnLimiter,
}

impl Reader {
    async fn run(mut self, rd: tokio::net::unix::OwnedReadHalf, max_frame: usize) {
        let mut frames = FrameReader::new(BufReader::with_capacity(64 * 1024, rd), max_frame);
        loop {
            let frame = match frames.next_frame().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                // A sensor that exits with our replies unread resets the
                // connection: that is just its end.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    tracing::debug!(sensor = %self.ctx.sensor_ref, "connection reset by the sensor");
                    break;
                }
                Err(e) => {
                    tracing::warn!(sensor = %self.ctx.sensor_ref, "reading from the sensor failed: {e}");
                    break;
                }
            };
            match frame {
                Frame::Line(line) if line.iter().all(u8::is_ascii_whitespace) => {}
                Frame::Line(line) => match Incoming::parse(&line) {
                    // Successful dispatches are collected and stored in one
                    // sled batch; anything else first stores what was
                    // collected, so replies keep the order of the requests.
                    Ok(Incoming::Request(req)) if req.method == "dispatch" => {
                        match self.prepare(req.params) {
                            Ok(instance) => self.batch.push((Some(req.id), instance)),
                            Err(err) => {
                                self.store_batch().await;
                                let wait = self.last_write.clone();
                                self.send(Outbound::Reply {
                                    wait,
                                    id: req.id,
                                    result: Err(err),
                                    batch_index: None,
                                })
                                .await;
                            }
                        }
                    }
                    Ok(Incoming::Notification(n)) if n.method == "dispatch" => {
                        // A rejected notification is only logged (in prepare).
                        if let Ok(instance) = self.prepare(n.params) {
                            self.batch.push((None, instance));
                        }
                    }
                    other => {
                        self.store_batch().await;
                        self.handle_message(other).await;
                    }
                },
                Frame::TooLarge { len } => {
                    self.store_batch().await;
                    if self.warnings.allow("frame too large", &self.ctx.sensor_ref) {
                        tracing::warn!(sensor = %self.ctx.sensor_ref, "rejected a {len}-byte frame (limit {max_frame} bytes)");
                    }
                    let err = RpcError::new(
                        codes::FRAME_TOO_LARGE,
                        format!("frame of {len} bytes exceeds the limit of {max_frame} bytes"),
                    )
                    .with_data(json!({"limit": max_frame, "size": len}));
                    self.send(Outbound::Frame(Response::err(Value::Null, err).to_frame()))
                        .await;
                }
            }
            // Store now unless more frames are already here to join the
            // batch: batching never waits for the sensor.
            if !frames.has_buffered_frame() || self.batch.len() >= MAX_BATCH {
                self.store_batch().await;
            }
            // Frames already buffered are parsed without touching the
            // socket, so nothing else would make this task yield: a
            // flooding sensor would hold a worker for its whole window
            // (~1024 frames, milliseconds) while a quiet sensor's request
            // waits. One unit of tokio's cooperative budget per frame
            // yields every 128 frames.
            tokio::task::coop::consume_budget().await;
        }
        self.store_batch().await;
        self.warnings.flush(&self.ctx.sensor_ref);
    }

    /// Handle a message that is not a dispatch (or a bad frame).
    async fn handle_message(&mut self, msg: Result<Incoming, Response>) {
        match msg {
            Err(resp) => {
                if self.warnings.allow("bad frame", &self.ctx.sensor_ref) {
                    let why = resp
                        .error
                        .as_ref()
                        .map(|e| e.message.as_str())
                        .unwrap_or("");
                    tracing::warn!(sensor = %self.ctx.sensor_ref, "bad frame from sensor: {}", crate::ratelimit::escape_controls(why));
                }
                self.send(Outbound::Frame(resp.to_frame())).await;
            }
            Ok(Incoming::Request(req)) => {
                let result = self.handle(&req.method, req.params).await;
                let wait = self.last_write.clone();
                self.send(Outbound::Reply {
                    wait,
                    id: req.id,
                    result,
                    batch_index: None,
                })
                .await;
            }
            Ok(Incoming::Notification(n)) => {
                // Errors of notifications are only logged (in handle).
                let _ = self.handle(&n.method, n.params).await;
            }
            Ok(Incoming::Response(_)) => {
                // We never send requests; a stray response is ignored.
            }
        }
    }

    /// Queue the collected dispatches as one log batch and queue their
    /// replies, all waiting on the batch's completion.
    async fn store_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let log = self.deps.dispatcher.log();
        // Backpressure: a writer far behind (a stalled disk) slows the
        // sensor down instead of growing our memory.
        let stored = if log.wait_for_room(ROOM_DEADLINE).await {
            let mut records = RecordBatch::from_source_name(&self.ctx.sensor_ref);
            for (_, instance) in &batch {
                records.push_with(|b| instance.encode_into(b));
            }
            self.status
                .dispatched
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let completion = log.append(records);
            self.last_write.log = Some(completion);
            Ok(())
        } else {
            let why = format!(
                "the trigger-instance log writer has been behind for {}s (disk stalled?)",
                ROOM_DEADLINE.as_secs()
            );
            tracing::error!(sensor = %self.ctx.sensor_ref, "could not store {} trigger instances: {why}", batch.len());
            Err(why)
        };
        for (i, (id, instance)) in batch.into_iter().enumerate() {
            // Off by default (50k+/s would flood the log); the README's
            // demo turns it on with `--log-level info,trigger_instance=debug`.
            tracing::debug!(target: "trigger_instance", sensor = %self.ctx.sensor_ref, trigger = %instance.trigger, id = %instance.id, "trigger instance queued");
            let Some(id) = id else { continue };
            let result = match &stored {
                Ok(()) => Ok(json!({"id": instance.id})),
                Err(why) => Err(RpcError::new(
                    codes::STORAGE_ERROR,
                    format!("could not store the trigger instance: {why}"),
                )),
            };
            let wait = self.last_write.clone();
            self.send(Outbound::Reply {
                wait,
                id,
                result,
                batch_index: stored.is_ok().then_some(i as u64),
            })
            .await;
        }
    }

    async fn send(&self, item: Outbound) {
        let _ = self.outbox.send(item).await;
    }

    async fn handle(&mut self, method: &str, params: Value) -> Result<Value, RpcError> {
        match method {
            // Dispatches are batched by the read loop and never get here.
            "dispatch" => Err(RpcError::new(
                codes::INTERNAL_ERROR,
                "dispatch outside the read loop",
            )),
            "init" => {
                self.handle.initialized.store(true, Ordering::Release);
                Ok(self.init_result())
            }
            "ready" => {
                self.status.set_state(SensorState::Running);
                tracing::info!(sensor = %self.ctx.sensor_ref, "sensor ready");
                Ok(Value::Bool(true))
            }
            "log" => {
                self.log(&params);
                Ok(Value::Bool(true))
            }
            "kv.get" | "kv.set" | "kv.delete" | "kv.list" => self.kv(method, params).await,
            "user.info" => Ok(
                json!({"username": "stanley", "rbac": {"enabled": false, "is_admin": true, "roles": ["admin"]}}),
            ),
            other => {
                if self.warnings.allow("unknown method", &self.ctx.sensor_ref) {
                    tracing::warn!(sensor = %self.ctx.sensor_ref, "unknown method '{}'", crate::ratelimit::escape_controls(other));
                }
                Err(RpcError::new(
                    codes::METHOD_NOT_FOUND,
                    format!("method '{other}' not found"),
                ))
            }
        }
    }

    /// Parse and validate one dispatch; rejections are logged and counted.
    fn prepare(&mut self, params: Value) -> Result<TriggerInstance, RpcError> {
        let sensor = self.ctx.sensor_ref.as_str();
        // As strict as kv.*: named params only, no unknown fields, a
        // trace_context that is an object.
        if let Err(why) = check_dispatch_shape(&params) {
            self.status.rejected.fetch_add(1, Ordering::Relaxed);
            let err = RpcError::new(codes::INVALID_PARAMS, format!("dispatch params: {why}"));
            if self.warnings.allow("dispatch rejected", sensor) {
                tracing::warn!(sensor, "dispatch rejected: {}", err.message);
            }
            return Err(err);
        }
        let params: DispatchParams = match serde_json::from_value(params) {
            Ok(p) => p,
            Err(e) => {
                self.status.rejected.fetch_add(1, Ordering::Relaxed);
                let err = RpcError::new(codes::INVALID_PARAMS, format!("dispatch params: {e}"));
                if self.warnings.allow("dispatch rejected", sensor) {
                    tracing::warn!(sensor, "dispatch rejected: {}", err.message);
                }
                return Err(err);
            }
        };
        let trigger = params.trigger.clone();
        let result = self.deps.dispatcher.prepare(Some(sensor), params);
        if let Err(err) = &result {
            if err.code == codes::VALIDATION_FAILED {
                self.status
                    .validation_failures
                    .fetch_add(1, Ordering::Relaxed);
            } else {
                self.status.rejected.fetch_add(1, Ordering::Relaxed);
            }
            if self.warnings.allow("dispatch rejected", sensor) {
                tracing::warn!(sensor, trigger = %trigger, code = err.code, "dispatch rejected: {}", err.message);
            }
        }
        result
    }

    async fn kv(&mut self, method: &str, params: Value) -> Result<Value, RpcError> {
        let sensor = self.ctx.sensor_ref.clone();
        let p: KvParams = serde_json::from_value(params)
            .map_err(|e| RpcError::new(codes::INVALID_PARAMS, format!("{method} params: {e}")))?;
        let scope = match p.scope.as_deref().unwrap_or("system") {
            "system" | "st2kv.system" => Scope::System,
            other => {
                return Err(RpcError::new(
                    codes::DATASTORE_ERROR,
                    format!("scope '{other}' is not allowed for sensors; only \"system\" is"),
                ))
            }
        };
        let local = |name: &str| {
            if p.local {
                format!("{sensor}:{name}")
            } else {
                name.to_string()
            }
        };
        if let Some(remote) = self.deps.remote_kv.clone() {
            return self.kv_remote(&remote, method, &p, local).await;
        }
        let kv = self.deps.kv.clone();
        let result = match method {
            "kv.get" => {
                let name = local(&p.required_name(method)?);
                kv.datastore
                    .get(scope, &name, p.decrypt)
                    .map(|v| v.map(|kv| kv.to_api(false)).unwrap_or(Value::Null))
            }
            "kv.list" => {
                let prefix = local(p.prefix.as_deref().unwrap_or(""));
                let limit = p.count("limit")?;
                let offset = p.count("offset")?.unwrap_or(0);
                kv.datastore
                    .list(scope, &prefix, offset, limit, p.decrypt)
                    .map(|items| Value::Array(items.iter().map(|kv| kv.to_api(false)).collect()))
            }
            "kv.set" | "kv.delete" => {
                let name = local(&p.required_name(method)?);
                // A write takes effect only after this sensor's earlier
                // dispatches are durable: the checkpoint pattern is safe.
                if let Some(c) = &self.last_write.log {
                    c.wait().await.map_err(storage)?;
                }
                let written = if method == "kv.set" {
                    let value = match &p.value {
                        Some(Value::String(v)) => v.clone(),
                        other => {
                            return Err(RpcError::new(
                                codes::INVALID_PARAMS,
                                format!(
                                    "kv.set: \"value\" must be a string, got {} (the Python shim converts with str())",
                                    other.as_ref().map(Value::to_string).unwrap_or_else(|| "nothing".into())
                                ),
                            ))
                        }
                    };
                    let ttl = p.count("ttl")?.map(|t| t as u64);
                    kv.set(scope, &name, &value, ttl, p.encrypt)
                        .map(|t| (t, Value::Bool(true)))
                } else {
                    kv.delete(scope, &name)
                        .map(|(deleted, t)| (t, Value::Bool(deleted)))
                };
                written.map(|(ticket, v)| {
                    self.last_write.kv = self.last_write.kv.max(ticket);
                    v
                })
            }
            _ => unreachable!("kv() is only called for kv.* methods"),
        };
        result.map_err(|e| {
            let err = datastore_error(e);
            if self.warnings.allow("datastore call failed", &sensor) {
                tracing::warn!(sensor = %sensor, "{method} failed: {}", err.message);
            }
            err
        })
    }

    /// `kv.*` against a remote datastore: the same parameters, checks and
    /// error codes as the local one; its own events are its business (st2
    /// emits `core.st2.key_value_pair.*` itself).
    async fn kv_remote(
        &mut self,
        remote: &crate::remote_kv::RemoteKv,
        method: &str,
        p: &KvParams,
        local: impl Fn(&str) -> String,
    ) -> Result<Value, RpcError> {
        use crate::remote_kv::RemoteKvError;
        use store::datastore::{check_name, check_value};
        let store = &remote.0;
        let named = |name: String| check_name(&name).map(|()| name).map_err(datastore_error);
        let result = match method {
            "kv.get" => {
                let name = named(local(&p.required_name(method)?))?;
                store
                    .get(&name, p.decrypt)
                    .await
                    .map(|v| v.unwrap_or(Value::Null))
            }
            "kv.list" => {
                let prefix = local(p.prefix.as_deref().unwrap_or(""));
                let limit = p.count("limit")?;
                let offset = p.count("offset")?.unwrap_or(0);
                store
                    .list(&prefix, offset, limit, p.decrypt)
                    .await
                    .map(Value::Array)
            }
            "kv.set" | "kv.delete" => {
                let name = named(local(&p.required_name(method)?))?;
                if let Some(c) = &self.last_write.log {
                    c.wait().await.map_err(storage)?;
                }
                if method == "kv.set" {
                    let Some(Value::String(value)) = &p.value else {
                        return Err(RpcError::new(
                            codes::INVALID_PARAMS,
                            format!(
                                "kv.set: \"value\" must be a string, got {} (the Python shim converts with str())",
                                p.value.as_ref().map(Value::to_string).unwrap_or_else(|| "nothing".into())
                            ),
                        ));
                    };
                    check_value(&name, value).map_err(datastore_error)?;
                    let ttl = p.count("ttl")?.map(|t| t as u64);
                    store
                        .set(&name, value, ttl, p.encrypt)
                        .await
                        .map(|()| Value::Bool(true))
                } else {
                    store.delete(&name).await.map(Value::Bool)
                }
            }
            _ => unreachable!("kv_remote() is only called for kv.* methods"),
        };
        result.map_err(|e| {
            let err = match e {
                RemoteKvError::Refused(m) => RpcError::new(codes::DATASTORE_ERROR, m),
                RemoteKvError::Unavailable(m) => RpcError::new(codes::STORAGE_ERROR, m),
            };
            if self.warnings.allow("datastore call failed", &self.ctx.sensor_ref) {
                tracing::warn!(sensor = %self.ctx.sensor_ref, "{method} failed: {}", err.message);
            }
            err
        })
    }

    fn init_result(&self) -> Value {
        let catalog = self.deps.dispatcher.catalog();
        let triggers: Vec<&content::Trigger> = catalog.triggers_of(&self.ctx.trigger_types);
        json!({
            "ref": self.ctx.sensor_ref,
            "pack": self.ctx.pack,
            "class_name": self.ctx.class_name,
            "entry_point": self.ctx.entry_point,
            "poll_interval": self.ctx.poll_interval,
            "config": self.ctx.config,
            "trigger_types": self.ctx.trigger_types,
            "triggers": triggers,
            "max_frame_bytes": self.deps.max_frame_bytes,
        })
    }

    fn log(&self, params: &Value) {
        let sensor = self.ctx.sensor_ref.as_str();
        // Escaped: a sensor's newline must not forge a log line of its own.
        let message = crate::ratelimit::escape_controls(
            params.get("message").and_then(Value::as_str).unwrap_or(""),
        );
        let logger = crate::ratelimit::escape_controls(
            params.get("logger").and_then(Value::as_str).unwrap_or(""),
        );
        let logger = logger.as_ref();
        match params
            .get("level")
            .and_then(Value::as_str)
            .unwrap_or("info")
            .to_ascii_lowercase()
            .as_str()
        {
            "debug" => tracing::debug!(sensor, logger, "{message}"),
            "warning" | "warn" => tracing::warn!(sensor, logger, "{message}"),
            "error" | "critical" | "fatal" | "exception" => {
                tracing::error!(sensor, logger, "{message}")
            }
            _ => tracing::info!(sensor, logger, "{message}"),
        }
    }
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outbound>,
    deps: Arc<ServiceDeps>,
    sensor_ref: String,
) {
    let kv_commit = deps.kv.datastore.commit().clone();
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    let mut broken = false;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Coalesce everything already queued into one write.
        while let Some(item) = next.take() {
            match item {
                Outbound::Frame(f) => buf.extend_from_slice(&f),
                Outbound::Reply {
                    wait,
                    id,
                    result,
                    batch_index,
                } => {
                    let result = match (result, wait.wait(&kv_commit).await) {
                        (Ok(mut v), Ok(first)) => {
                            if let (Some(first), Some(i), Value::Object(m)) =
                                (first, batch_index, &mut v)
                            {
                                m.insert("seq".into(), json!(first + i));
                            }
                            Ok(v)
                        }
                        (Ok(_), Err(e)) => Err(e),
                        (Err(e), _) => Err(e),
                    };
                    let resp = match result {
                        Ok(v) => Response::ok(id, v),
                        Err(e) => Response::err(id, e),
                    };
                    buf.extend_from_slice(&resp.to_frame());
                }
            }
            if buf.len() < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
            // A window of ready replies is serialized without awaiting
            // anything that is not ready: yield every 128 (as the reader).
            tokio::task::coop::consume_budget().await;
        }
        if !broken {
            if let Err(e) = wr.write_all(&buf).await {
                // The sensor went away; keep draining so the reader never blocks.
                tracing::debug!(sensor = %sensor_ref, "writing to the sensor failed: {e}");
                broken = true;
            }
        }
        buf.clear();
    }
}

/// Params of the `kv.*` methods (see PROTOCOL.md).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KvParams {
    name: Option<String>,
    value: Option<Value>,
    ttl: Option<Value>,
    scope: Option<String>,
    #[serde(default)]
    encrypt: bool,
    #[serde(default)]
    decrypt: bool,
    /// Prefix the name with `<pack>.<Class>:`, as StackStorm's `local=True`.
    #[serde(default)]
    local: bool,
    prefix: Option<String>,
    limit: Option<Value>,
    offset: Option<Value>,
}

impl KvParams {
    fn required_name(&self, method: &str) -> Result<String, RpcError> {
        match &self.name {
            Some(n) => Ok(n.clone()),
            None => Err(RpcError::new(
                codes::INVALID_PARAMS,
                format!("{method}: \"name\" is required"),
            )),
        }
    }

    /// A non-negative integer field (`null` or absent = not given).
    fn count(&self, field: &'static str) -> Result<Option<usize>, RpcError> {
        let v = match field {
            "ttl" => &self.ttl,
            "limit" => &self.limit,
            _ => &self.offset,
        };
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().map(|n| n as usize)),
            Some(other) => Err(RpcError::new(
                codes::INVALID_PARAMS,
                format!("\"{field}\" must be a non-negative integer, got {other}"),
            )),
        }
    }
}

/// The shape `dispatch` params must have: an object with `trigger` and
/// only `payload`, `trace_tag`, `trace_context` besides; `trace_context` an
/// object or null.
fn check_dispatch_shape(params: &Value) -> Result<(), String> {
    let Some(obj) = params.as_object() else {
        return Err(format!(
            "expected an object {{\"trigger\", \"payload\", ...}} (named params), got {}",
            match params {
                Value::Array(_) => "an array (positional params)",
                Value::Null => "nothing",
                _ => "a scalar",
            }
        ));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["trigger", "payload", "trace_tag", "trace_context"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown field '{k}' (expected trigger, payload, trace_tag, trace_context)"
        ));
    }
    match obj.get("trace_context") {
        None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err("trace_context must be an object or null".into()),
    }
}

fn storage(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(codes::STORAGE_ERROR, e.to_string())
}

/// Caller mistakes (bad name, no key, wrong key) are datastore errors;
/// anything else is storage failing.
fn datastore_error(e: StoreError) -> RpcError {
    match e {
        StoreError::Invalid(_) | StoreError::Crypto(_) => {
            RpcError::new(codes::DATASTORE_ERROR, e.to_string())
        }
        other => storage(other),
    }
}
