//! Every `sensorctl` operation as `(name, JSON params) -> JSON result`.
//!
//! The running container's control API executes these, and `sensorctl`
//! executes them itself when no container runs: one implementation, so the
//! output is the same either way. `live` is the running container, when
//! this process is one.

use std::sync::Arc;
use std::time::SystemTime;

use container::dispatcher::Dispatcher;
use container::kv::KvService;
use container::status::StatusSnapshot;
use container::Container;
use eventlog::{EventLog, InstanceFilter};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::datastore::{KeyValue, Scope};
use store::registrar::RegisterWhat;
use store::{SensorRecord, Store};
use tokio::sync::mpsc;

use crate::config::Settings;
use crate::reload::{self, ReloadMode};

pub use api::ops::{OpError, OpErrorKind, OpStream, Operations};

fn internal(e: impl std::fmt::Display) -> OpError {
    OpError::new(OpErrorKind::Internal, e.to_string())
}

/// A sensor as `sensorctl` shows it. Field names are a stable interface.
#[derive(Debug, Serialize)]
pub struct SensorView {
    #[serde(rename = "ref")]
    pub sensor_ref: String,
    pub pack: String,
    pub class_name: String,
    pub description: Option<String>,
    /// Effective: the operator's choice if made, else the metadata's.
    pub enabled: bool,
    pub enabled_in_metadata: bool,
    pub operator_enabled: Option<bool>,
    pub poll_interval: Option<u64>,
    pub trigger_types: Vec<String>,
    pub runner_type: content::RunnerType,
    pub entry_point: String,
    pub metadata_file: String,
    pub content_hash: String,
    /// running, starting, backoff, failed, stopped, disabled, not_assigned.
    pub state: String,
    pub pid: Option<u32>,
    pub uptime_seconds: Option<u64>,
    pub restarts: u32,
    /// `{"code": N}` or `{"signal": N}` of the last exit.
    pub last_exit: Option<container::status::ExitStatus>,
    pub dispatched: u64,
    pub validation_failures: u64,
}

impl SensorView {
    fn new(r: &SensorRecord, status: Option<&StatusSnapshot>, container_runs: bool) -> SensorView {
        let s = &r.sensor;
        let state = match status {
            Some(st) => serde_json::to_value(st.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            None if !r.enabled() => "disabled".into(),
            None if container_runs => "not_assigned".into(),
            None => "stopped".into(),
        };
        let uptime = status.and_then(|st| {
            st.pid?;
            SystemTime::now()
                .duration_since(st.started_at?)
                .ok()
                .map(|d| d.as_secs())
        });
        SensorView {
            sensor_ref: s.sensor_ref.clone(),
            pack: s.pack.clone(),
            class_name: s.class_name.clone(),
            description: s.description.clone(),
            enabled: r.enabled(),
            enabled_in_metadata: s.enabled,
            operator_enabled: r.operator_enabled,
            poll_interval: s.poll_interval,
            trigger_types: s.trigger_types.clone(),
            runner_type: s.runner_type,
            entry_point: s.entry_point.display().to_string(),
            metadata_file: s.metadata_file.display().to_string(),
            content_hash: s.content_hash.clone(),
            state,
            pid: status.and_then(|st| st.pid),
            uptime_seconds: uptime,
            restarts: status.map(|st| st.restarts).unwrap_or(0),
            last_exit: status.and_then(|st| st.last_exit),
            dispatched: status.map(|st| st.dispatched).unwrap_or(0),
            validation_failures: status.map(|st| st.validation_failures).unwrap_or(0),
        }
    }
}

/// An API key as shown: never the key, nor its digest.
#[derive(Debug, Serialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: Option<String>,
    pub created: String,
    pub last_used: Option<String>,
}

impl From<&store::ApiKeyRecord> for ApiKeyView {
    fn from(r: &store::ApiKeyRecord) -> ApiKeyView {
        ApiKeyView {
            id: r.id.clone(),
            name: r.name.clone(),
            created: r.created.clone(),
            last_used: r.last_used.clone(),
        }
    }
}

/// The executor of operations.
pub struct Ops {
    pub(crate) store: Arc<Store>,
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) settings: Settings,
    live: Option<Arc<Container>>,
    /// The running sinks (in the container).
    pub(crate) sinks: Option<Arc<sinks::Sinks>>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    kv: KvService,
    /// Senlin receivers and Masakari notifications.
    pub(crate) openstack: Arc<api::openstack::OpenStack>,
}

#[derive(Deserialize)]
struct RefParam {
    #[serde(rename = "ref")]
    r: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceListParams {
    trigger: Option<String>,
    sensor: Option<String>,
    status: Option<String>,
    since: Option<String>,
    after: Option<u64>,
    before: Option<u64>,
    /// Default 50; 0 = all.
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TailParams {
    trigger: Option<String>,
    sensor: Option<String>,
    /// Start with the first instance at or after this time (RFC 3339).
    since: Option<String>,
    /// Start with this seq.
    from: Option<u64>,
}

/// Instances a stream buffers ahead of a slow reader.
const STREAM_BUFFER: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdParam {
    pub(crate) id: String,
}

#[derive(Deserialize)]
struct KeyListParams {
    prefix: Option<String>,
    #[serde(default)]
    decrypt: bool,
    scope: Option<String>,
    /// Default 50; 0 = all.
    limit: Option<usize>,
}

/// A key as `key.list` shows it. Decrypted one by one: a key that cannot be
/// decrypted is shown encrypted with the reason, never hides the others.
fn key_view(ds: &store::Datastore, mut k: store::KeyValue, decrypt: bool) -> Value {
    if !(decrypt && k.secret) {
        return k.to_api(false);
    }
    match ds.decrypt(&mut k) {
        Ok(()) => k.to_api(false),
        Err(e) => {
            let mut v = k.to_api(false);
            v["decrypt_error"] = json!(e.to_string());
            v
        }
    }
}

/// True when list params ask for everything (`limit: 0`): such lists are
/// streamed (see [`Ops::stream`]).
fn wants_all(p: &Value) -> bool {
    p.get("limit").and_then(Value::as_u64) == Some(0)
}

/// What a list operation returns when it is not given a limit.
const DEFAULT_LIST_LIMIT: usize = 50;

/// `limit` as the list operations take it: absent = the default, 0 = all.
fn list_limit(limit: Option<usize>) -> Option<usize> {
    match limit.unwrap_or(DEFAULT_LIST_LIMIT) {
        0 => None,
        n => Some(n),
    }
}

#[derive(Deserialize)]
struct KeyParams {
    name: String,
    #[serde(default)]
    decrypt: bool,
    scope: Option<String>,
    value: Option<String>,
    ttl: Option<u64>,
    #[serde(default)]
    encrypt: bool,
}

#[derive(Deserialize)]
struct KeyLoadParams {
    items: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct TriggerParams {
    #[serde(rename = "type")]
    type_ref: Option<String>,
    id: Option<String>,
    parameters: Option<Value>,
    /// `trigger.list`: default 50; 0 = all.
    limit: Option<usize>,
}

#[derive(Deserialize)]
struct ReloadParams {
    #[serde(default)]
    sensors: bool,
    #[serde(default)]
    triggers: bool,
    #[serde(default)]
    configs: bool,
    #[serde(default)]
    no_fail: bool,
    #[serde(default)]
    fail_on_sensor_errors: bool,
}

/// An operation's params (`null` = none), or a clear "bad parameters" error.
pub(crate) fn params<T: DeserializeOwned>(op: &str, p: Value) -> Result<T, OpError> {
    let p = if p.is_null() { json!({}) } else { p };
    serde_json::from_value(p)
        .map_err(|e| OpError::new(OpErrorKind::Invalid, format!("{op}: bad parameters: {e}")))
}

fn to_json<T: Serialize>(v: &T) -> Result<Value, OpError> {
    serde_json::to_value(v).map_err(internal)
}

fn scope(s: &Option<String>) -> Result<Scope, OpError> {
    Scope::parse(s.as_deref().unwrap_or("system")).map_err(OpError::from)
}

impl Ops {
    /// Operations on the database alone (no container runs).
    pub fn local(
        store: Arc<Store>,
        log: Arc<dyn EventLog>,
        settings: Settings,
    ) -> Result<Ops, OpError> {
        let dispatcher = Arc::new(Dispatcher::open(&store, log.clone())?);
        let kv = KvService::open(
            &store,
            dispatcher.clone(),
            settings.container.encryption_key_path.as_deref(),
        )?;
        let openstack = api::openstack::OpenStack::new(
            store.openstack.clone(),
            dispatcher.clone(),
            settings.openstack.clone(),
        );
        if let Some(addr) = settings.api.listen.first() {
            openstack.set_listen_url(*addr, settings.api.tls.is_some());
        }
        Ok(Ops {
            store,
            log,
            settings,
            live: None,
            sinks: None,
            dispatcher,
            kv,
            openstack,
        })
    }

    /// Operations inside the running container, with its sinks and front
    /// doors.
    pub fn live(
        container: Arc<Container>,
        store: Arc<Store>,
        log: Arc<dyn EventLog>,
        settings: Settings,
        sinks: Arc<sinks::Sinks>,
        openstack: Arc<api::openstack::OpenStack>,
    ) -> Ops {
        let kv = container.kv().clone();
        Ops {
            store,
            log,
            settings,
            dispatcher: container.dispatcher().clone(),
            live: Some(container),
            sinks: Some(sinks),
            kv,
            openstack,
        }
    }

    /// `sensor check`: the reload check, then an import in a subprocess.
    async fn sensor_check(&self, sensor_ref: &str, timeout: u64) -> Result<Value, OpError> {
        use container::sensor_check::{check_sources, import_check, CheckItem};
        let Some(record) = self.store.registry.sensor(sensor_ref)? else {
            return Err(OpError::new(
                OpErrorKind::NotFound,
                format!("sensor '{sensor_ref}' not found (see `sensorctl sensor list`)"),
            ));
        };
        let s = record.sensor;
        if s.runner_type != content::RunnerType::Python {
            return Ok(json!({"ref": sensor_ref, "ok": true, "problems": [],
                "note": "not a Python sensor: nothing to check"}));
        }
        let python = reload::sensor_python(&self.settings, &s.pack);
        let item = CheckItem {
            sensor_ref: s.sensor_ref.clone(),
            file: s.entry_point.clone(),
            class_name: s.class_name.clone(),
        };
        let data_dir = self.settings.data_dir.clone();
        let limit = std::time::Duration::from_secs(timeout.max(1));
        let problems = tokio::task::spawn_blocking(move || -> Result<Vec<String>, String> {
            let found =
                check_sources(&python, std::slice::from_ref(&item)).map_err(|e| e.to_string())?;
            if !found.is_empty() {
                return Ok(found.iter().map(|p| p.to_string()).collect());
            }
            let runtime = container::runtime::install(&data_dir).map_err(|e| e.to_string())?;
            Ok(match import_check(&python, &runtime, &item, limit) {
                Ok(()) => Vec::new(),
                Err(e) => vec![format!(
                    "{}: sensor '{}': {e}",
                    item.file.display(),
                    item.sensor_ref
                )],
            })
        })
        .await
        .map_err(internal)?
        .map_err(|e| {
            OpError::new(
                OpErrorKind::Internal,
                format!("cannot check {sensor_ref}: {e}"),
            )
        })?;
        Ok(json!({"ref": sensor_ref, "ok": problems.is_empty(), "problems": problems}))
    }

    /// Execute one operation.
    pub async fn execute(&self, op: &str, p: Value) -> Result<Value, OpError> {
        let reg = &self.store.registry;
        match op {
            "pack.list" => to_json(&reg.packs()?),
            "sensor.list" => {
                let statuses = self.statuses().await;
                let views: Vec<SensorView> = reg
                    .sensors()?
                    .iter()
                    .map(|r| {
                        SensorView::new(r, statuses.get(&r.sensor.sensor_ref), self.live.is_some())
                    })
                    .collect();
                to_json(&views)
            }
            "sensor.get" => {
                let RefParam { r } = params(op, p)?;
                self.sensor_view(&r).await
            }
            "sensor.enable" | "sensor.disable" => {
                let RefParam { r } = params(op, p)?;
                reg.set_operator_enabled(&r, op == "sensor.enable")?;
                self.store.flush()?;
                if let Some(c) = &self.live {
                    c.apply().await?;
                }
                self.sensor_view(&r).await
            }
            "sensor.check" => {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct P {
                    #[serde(rename = "ref")]
                    r: String,
                    timeout: Option<u64>,
                }
                let P { r, timeout } = params(op, p)?;
                self.sensor_check(&r, timeout.unwrap_or(30)).await
            }
            "sensor.restart" => {
                let RefParam { r } = params(op, p)?;
                let Some(c) = &self.live else {
                    return Err(OpError::new(
                        OpErrorKind::Conflict,
                        "no sensorcontainer is running: nothing to restart",
                    ));
                };
                c.restart(&r).await?;
                self.sensor_view(&r).await
            }
            "trigger-type.list" => to_json(&reg.trigger_types()?),
            "trigger-type.get" => {
                let RefParam { r } = params(op, p)?;
                match reg.trigger_type(&r)? {
                    Some(tt) => to_json(&tt),
                    None => Err(OpError::new(
                        OpErrorKind::NotFound,
                        format!("trigger type '{r}' not found (see `sensorctl trigger-type list`)"),
                    )),
                }
            }
            "trigger-instance.list" | "trigger-instance.tail" => Err(OpError::new(
                OpErrorKind::Invalid,
                format!("{op} streams its answer: call it through Ops::stream"),
            )),
            // Never one answer holding every key or trigger.
            "key.list" | "trigger.list" if wants_all(&p) => Err(OpError::new(
                OpErrorKind::Invalid,
                format!("{op} with limit 0 (everything) streams its answer: call it through Ops::stream"),
            )),
            "trigger-instance.get" => {
                let IdParam { id } = params(op, p)?;
                let log = self.log.clone();
                let found = tokio::task::spawn_blocking(move || {
                    eventlog::query::get(&*log, &id).map(|i| (i, id))
                })
                .await
                .map_err(internal)?;
                match found? {
                    (Some(mut i), _) => {
                        let resolver = self.resolver()?;
                        resolver.resolve(&mut i);
                        let mut v = to_json(&i)?;
                        // Each selecting sink's state (absent without sinks,
                        // so `get` shows what `list` shows).
                        let per_sink = resolver.per_sink(&i);
                        if !per_sink.is_empty() {
                            v["delivery"] = to_json(&per_sink)?;
                        }
                        Ok(v)
                    }
                    (None, id) => Err(OpError::new(
                        OpErrorKind::NotFound,
                        format!("trigger instance '{id}' not found (it may have been removed by retention; see `sensorctl log stats`)"),
                    )),
                }
            }
            "log.stats" => to_json(&self.log.stats()),
            "trigger-instance.re-emit" => {
                let IdParam { id } = params(op, p)?;
                self.re_emit(&id).await
            }
            "sink.list" | "sink.dead-letters" | "sink.retry" | "sink.pause" | "sink.resume" => {
                self.sink_op(op, p).await
            }
            o if o.starts_with("receiver.") || o.starts_with("notification.") => {
                self.openstack_op(op, p).await
            }
            "apikey.create" => {
                #[derive(Deserialize)]
                struct P {
                    name: Option<String>,
                }
                let P { name } = params(op, p)?;
                let (key, rec) = self
                    .store
                    .api_keys
                    .create(name, eventlog::instance::now_rfc3339())?;
                let mut v = to_json(&ApiKeyView::from(&rec))?;
                v["key"] = json!(key);
                Ok(v)
            }
            "apikey.list" => to_json(
                &self
                    .store
                    .api_keys
                    .list()?
                    .iter()
                    .map(ApiKeyView::from)
                    .collect::<Vec<_>>(),
            ),
            "apikey.delete" => {
                let IdParam { id } = params(op, p)?;
                to_json(&ApiKeyView::from(&self.store.api_keys.delete(&id)?))
            }
            "key.list" => {
                let q: KeyListParams = params(op, p)?;
                let items = self.kv.datastore.list(
                    scope(&q.scope)?,
                    q.prefix.as_deref().unwrap_or(""),
                    0,
                    list_limit(q.limit),
                    false,
                )?;
                let ds = &self.kv.datastore;
                Ok(Value::Array(
                    items
                        .into_iter()
                        .map(|k| key_view(ds, k, q.decrypt))
                        .collect(),
                ))
            }
            "key.get" => {
                let q: KeyParams = params(op, p)?;
                let sc = scope(&q.scope)?;
                match self.kv.datastore.get(sc, &q.name, q.decrypt)? {
                    Some(k) => Ok(k.to_api(false)),
                    None => Err(OpError::new(
                        OpErrorKind::NotFound,
                        format!(
                            "key '{}' not found (or expired) in scope {}",
                            q.name,
                            sc.as_str()
                        ),
                    )),
                }
            }
            "key.set" => {
                let q: KeyParams = params(op, p)?;
                let value = q
                    .value
                    .ok_or_else(|| OpError::new(OpErrorKind::Invalid, "key.set needs a value"))?;
                let ticket = self
                    .kv
                    .set(scope(&q.scope)?, &q.name, &value, q.ttl, q.encrypt)?;
                self.kv.datastore.commit().wait(ticket).await?;
                Ok(json!({"name": q.name}))
            }
            "key.delete" => {
                let q: KeyParams = params(op, p)?;
                let sc = scope(&q.scope)?;
                let (deleted, ticket) = self.kv.delete(sc, &q.name)?;
                self.kv.datastore.commit().wait(ticket).await?;
                if !deleted {
                    return Err(OpError::new(
                        OpErrorKind::NotFound,
                        format!(
                            "key '{}' not found (or expired) in scope {}",
                            q.name,
                            sc.as_str()
                        ),
                    ));
                }
                Ok(json!({"name": q.name}))
            }
            "key.export" => {
                let mut all = self.kv.datastore.list(Scope::System, "", 0, None, false)?;
                all.extend(self.kv.datastore.list(Scope::User, "", 0, None, false)?);
                to_json(&all)
            }
            "key.load" => {
                let q: KeyLoadParams = params(op, p)?;
                // Check every record before writing any: nothing half-loaded.
                for (i, k) in q.items.iter().enumerate() {
                    if k.name.is_empty() || k.name.len() > store::datastore::MAX_NAME_BYTES {
                        return Err(OpError::new(
                            OpErrorKind::Invalid,
                            format!("item {i}: bad key name {:?}; nothing was loaded", k.name),
                        ));
                    }
                    // The same limits as `key set`: a load is no way around them.
                    let bad = |why: String| {
                        OpError::new(
                            OpErrorKind::Invalid,
                            format!("item {i} ('{}'): {why}; nothing was loaded", k.name),
                        )
                    };
                    if k.value.len() > store::datastore::MAX_VALUE_BYTES * 2 + 64 {
                        return Err(bad(format!(
                            "the value is {} bytes long; the limit is {} (ciphertext: about twice that)",
                            k.value.len(),
                            store::datastore::MAX_VALUE_BYTES
                        )));
                    }
                    if !k.secret && k.value.len() > store::datastore::MAX_VALUE_BYTES {
                        return Err(bad(format!(
                            "the value is {} bytes long; the limit is {}",
                            k.value.len(),
                            store::datastore::MAX_VALUE_BYTES
                        )));
                    }
                    if k.secret
                        && (k.value.is_empty() || !k.value.bytes().all(|b| b.is_ascii_hexdigit()))
                    {
                        return Err(bad("a secret's value must be its hex ciphertext (as `key export` writes it)".into()));
                    }
                }
                let n = q.items.len();
                let mut last = store::Ticket(0);
                for k in q.items {
                    last = self.kv.load(k)?;
                }
                self.kv.datastore.commit().wait(last).await?;
                Ok(json!({"loaded": n}))
            }
            "trigger.list" => {
                let q: TriggerParams = params(op, p)?;
                let list: Vec<_> = reg
                    .triggers()?
                    .into_iter()
                    .filter(|t| q.type_ref.as_ref().is_none_or(|ty| *ty == t.type_ref))
                    .take(list_limit(q.limit).unwrap_or(usize::MAX))
                    .collect();
                to_json(&list)
            }
            "trigger.get" => {
                let q: TriggerParams = params(op, p)?;
                to_json(&self.trigger_by_id(q.id.as_deref())?)
            }
            "trigger.create" => {
                self.refuse_if_mirrored(op)?;
                let q: TriggerParams = params(op, p)?;
                let Some(type_ref) = q.type_ref else {
                    return Err(OpError::new(
                        OpErrorKind::Invalid,
                        "trigger.create needs a type",
                    ));
                };
                let parameters = q.parameters.unwrap_or_else(|| json!({}));
                let tt = reg.trigger_type(&type_ref)?.ok_or_else(|| {
                    OpError::new(OpErrorKind::NotFound, format!("trigger type '{type_ref}' not found (see `sensorctl trigger-type list`)"))
                })?;
                check_parameters(&tt, &parameters)?;
                // StackStorm reuses an identical (type, parameters) trigger.
                if let Some(existing) = reg.find_trigger(&type_ref, &parameters)? {
                    return to_json(&existing);
                }
                let name = uuid::Uuid::new_v4().to_string();
                let trigger = content::Trigger {
                    id: uuid::Uuid::new_v4().to_string(),
                    uid: content::uid::trigger_uid(&tt.pack, &name, &parameters),
                    trigger_ref: format!("{}.{name}", tt.pack),
                    name,
                    pack: tt.pack.clone(),
                    type_ref,
                    parameters,
                };
                reg.put_trigger(&trigger)?;
                self.store.flush()?;
                self.notify("trigger.add", &trigger).await?;
                to_json(&trigger)
            }
            "trigger.update" => {
                self.refuse_if_mirrored(op)?;
                let q: TriggerParams = params(op, p)?;
                let mut trigger = self.trigger_by_id(q.id.as_deref())?;
                let parameters = q.parameters.unwrap_or_else(|| json!({}));
                let tt = reg.trigger_type(&trigger.type_ref)?.ok_or_else(|| {
                    OpError::new(
                        OpErrorKind::NotFound,
                        format!("trigger type '{}' no longer exists", trigger.type_ref),
                    )
                })?;
                check_parameters(&tt, &parameters)?;
                trigger.uid = content::uid::trigger_uid(&trigger.pack, &trigger.name, &parameters);
                trigger.parameters = parameters;
                reg.put_trigger(&trigger)?;
                self.store.flush()?;
                self.notify("trigger.update", &trigger).await?;
                to_json(&trigger)
            }
            "trigger.delete" => {
                self.refuse_if_mirrored(op)?;
                let q: TriggerParams = params(op, p)?;
                let trigger = self.trigger_by_id(q.id.as_deref())?;
                reg.delete_trigger(&trigger.trigger_ref)?;
                self.store.flush()?;
                self.notify("trigger.remove", &trigger).await?;
                to_json(&trigger)
            }
            "reload" => {
                let q: ReloadParams = params(op, p)?;
                // The config file first: a bad `sinks:` changes nothing.
                let fresh = Settings::resolve(&self.settings.source)
                    .map_err(|e| OpError::new(OpErrorKind::Invalid, format!("{e:#}")))?;
                let any = q.sensors || q.triggers || q.configs;
                let what = if any {
                    RegisterWhat {
                        sensors: q.sensors,
                        triggers: q.triggers,
                        configs: q.configs,
                    }
                } else {
                    RegisterWhat::all()
                };
                // Reading packs and running the code check block: off the
                // async workers, which serve sensors and the API.
                let (settings, store) = (self.settings.clone(), self.store.clone());
                let mode = ReloadMode {
                    what,
                    no_fail: q.no_fail,
                    fail_on_sensor_errors: q.fail_on_sensor_errors,
                };
                let outcome =
                    tokio::task::spawn_blocking(move || reload::reload(&settings, &store, mode))
                        .await
                        .map_err(internal)?
                        .map_err(|e| OpError::new(OpErrorKind::Invalid, format!("{e:#}")))?;
                let applied = match &self.live {
                    Some(c) => {
                        let report = c.apply().await?;
                        tracing::info!(
                            "reloaded: started {:?}, stopped {:?}, restarted {:?}, {} unchanged",
                            report.started,
                            report.stopped,
                            report.restarted,
                            report.unchanged
                        );
                        Some(report)
                    }
                    None => None,
                };
                let sinks = match &self.sinks {
                    Some(s) => Some(
                        s.apply(fresh.sinks)
                            .await
                            .map_err(crate::sink_ops::sink_error)?,
                    ),
                    None => None,
                };
                if let Some(r) = &sinks {
                    if !(r.added.is_empty() && r.removed.is_empty() && r.changed.is_empty()) {
                        tracing::info!(
                            "sinks: added {:?}, removed {:?}, changed {:?}, {} unchanged",
                            r.added,
                            r.removed,
                            r.changed,
                            r.unchanged
                        );
                    }
                }
                Ok(json!({
                    "summary": outcome.summary,
                    "message": reload::describe(&outcome.summary),
                    "warnings": outcome.warnings,
                    "applied": applied,
                    "sinks": sinks,
                }))
            }
            other => Err(OpError::new(
                OpErrorKind::Invalid,
                format!("unknown operation '{other}'"),
            )),
        }
    }

    /// Start a streaming operation (`trigger-instance.list`,
    /// `trigger-instance.tail`); `None` for any other operation. Items are
    /// produced as the reader takes them: a bounded buffer, so no request
    /// makes the process hold a whole result.
    pub fn stream(&self, op: &str, p: Value) -> Option<Result<OpStream, OpError>> {
        match op {
            "trigger-instance.list" => Some(self.list_stream(p)),
            "trigger-instance.tail" => Some(self.tail_stream(p)),
            // Everything (`limit: 0`) comes one item at a time.
            "key.list" if wants_all(&p) => Some(self.key_list_stream(p)),
            "trigger.list" if wants_all(&p) => Some(self.trigger_list_stream(p)),
            _ => None,
        }
    }

    fn list_stream(&self, p: Value) -> Result<OpStream, OpError> {
        let q: InstanceListParams = params("trigger-instance.list", p)?;
        let filter = InstanceFilter {
            trigger: q.trigger,
            sensor: q.sensor,
            status: q.status,
            since: q.since,
            after: q.after,
            before: q.before,
            limit: q.limit.unwrap_or(50),
        };
        if let Some(st) = &filter.status {
            if !crate::sink_ops::STATUSES.contains(&st.as_str()) {
                return Err(OpError::new(
                    OpErrorKind::Invalid,
                    format!(
                        "--status '{st}': expected one of {}",
                        crate::sink_ops::STATUSES.join(", ")
                    ),
                ));
            }
        }
        if let Some(s) = &filter.since {
            if eventlog::instance::rfc3339_ms(s).is_none() {
                return Err(OpError::new(
                    OpErrorKind::Invalid,
                    format!("--since '{s}' is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)"),
                ));
            }
        }
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let log = self.log.clone();
        let resolver = self.resolver()?;
        tokio::task::spawn_blocking(move || {
            let resolve = |i: &mut eventlog::TriggerInstance| resolver.resolve(i);
            let sent = eventlog::query::scan_with_status(&*log, &filter, &resolve, |i| {
                // A reader that went away stops the scan.
                tx.blocking_send(to_json(&i)).is_ok()
            });
            if let Err(e) = sent {
                let _ = tx.blocking_send(Err(e.into()));
            }
        });
        Ok(rx)
    }

    fn key_list_stream(&self, p: Value) -> Result<OpStream, OpError> {
        let q: KeyListParams = params("key.list", p)?;
        let sc = scope(&q.scope)?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let ds = self.kv.datastore.clone();
        tokio::task::spawn_blocking(move || {
            let prefix = q.prefix.unwrap_or_default();
            let visited = ds.visit(sc, &prefix, |k| {
                // A reader that went away stops the scan.
                tx.blocking_send(Ok(key_view(&ds, k, q.decrypt))).is_ok()
            });
            if let Err(e) = visited {
                let _ = tx.blocking_send(Err(e.into()));
            }
        });
        Ok(rx)
    }

    fn trigger_list_stream(&self, p: Value) -> Result<OpStream, OpError> {
        let q: TriggerParams = params("trigger.list", p)?;
        let triggers = self.store.registry.triggers()?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            for t in triggers
                .into_iter()
                .filter(|t| q.type_ref.as_ref().is_none_or(|ty| *ty == t.type_ref))
            {
                if tx.send(to_json(&t)).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    fn tail_stream(&self, p: Value) -> Result<OpStream, OpError> {
        let q: TailParams = params("trigger-instance.tail", p)?;
        let filter = InstanceFilter {
            trigger: q.trigger,
            sensor: q.sensor,
            ..Default::default()
        };
        let log = self.log.clone();
        let from = match (q.from, &q.since) {
            (Some(_), Some(_)) => {
                return Err(OpError::new(
                    OpErrorKind::Invalid,
                    "give --from SEQ or --since TIME, not both",
                ))
            }
            (Some(seq), None) => seq,
            (None, Some(s)) => {
                let ms = eventlog::instance::rfc3339_ms(s).ok_or_else(|| {
                    OpError::new(
                        OpErrorKind::Invalid,
                        format!(
                            "--since '{s}' is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)"
                        ),
                    )
                })?;
                log.seq_at_time(ms)?
            }
            (None, None) => log.last_seq() + 1,
        };
        let mut found = eventlog::follow::follow(log, from, filter, STREAM_BUFFER);
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            loop {
                // Leaving when the reader leaves also drops `found`, which
                // ends the follower.
                let item = tokio::select! {
                    item = found.recv() => item,
                    _ = tx.closed() => return,
                };
                let Some(item) = item else { return };
                let item = item.map_err(OpError::from).and_then(|i| to_json(&i));
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    fn trigger_by_id(&self, id: Option<&str>) -> Result<content::Trigger, OpError> {
        let id =
            id.ok_or_else(|| OpError::new(OpErrorKind::Invalid, "a trigger id is required"))?;
        self.store.registry.trigger_by_id(id)?.ok_or_else(|| {
            OpError::new(
                OpErrorKind::NotFound,
                format!("trigger '{id}' not found (see `sensorctl trigger list`)"),
            )
        })
    }

    /// Tell the running container's sensors (no container: nothing to tell;
    /// sensors get every trigger from `init` when they start).
    /// Triggers come from st2 when `st2.api_url` is set: local changes
    /// would be undone by the next mirror pass.
    fn refuse_if_mirrored(&self, op: &str) -> Result<(), OpError> {
        match &self.settings.st2.api_url {
            Some(url) => Err(OpError::new(
                OpErrorKind::Invalid,
                format!("{op}: triggers come from StackStorm here (st2.api_url is {url}): st2 creates them for the rules that use a parameterized trigger type; `sensorctl trigger list` shows the mirrored ones"),
            )),
            None => Ok(()),
        }
    }

    /// Make the registry's parameterized triggers exactly st2's `list`
    /// (`GET /api/v1/triggers`) for the registered trigger types, with
    /// st2's own ids and refs, telling running sensors (`add_trigger`,
    /// `update_trigger`, `remove_trigger`). Shadow triggers (a type's own,
    /// ref = type) are left alone; entries of unknown types, or whose
    /// parameters do not fit the type, are skipped with a warning once per
    /// pass. Returns (added, updated, removed).
    pub async fn mirror_triggers(&self, list: &[Value]) -> Result<(usize, usize, usize), OpError> {
        let reg = &self.store.registry;
        let mut wanted: std::collections::BTreeMap<String, content::Trigger> =
            std::collections::BTreeMap::new();
        for t in list {
            let (Some(id), Some(r), Some(ty)) = (
                t["id"].as_str(),
                t["ref"].as_str(),
                t["type"].as_str(),
            ) else {
                continue;
            };
            if r == ty {
                continue;
            }
            let Some(tt) = reg.trigger_type(ty)? else {
                continue;
            };
            let parameters = if t["parameters"].is_null() {
                json!({})
            } else {
                t["parameters"].clone()
            };
            if let Err(e) = check_parameters(&tt, &parameters) {
                tracing::warn!("st2 trigger {r} ({ty}) skipped: {}", e.message);
                continue;
            }
            let (pack, name) = r.split_once('.').unwrap_or((tt.pack.as_str(), r));
            let uid = t["uid"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| content::uid::trigger_uid(pack, name, &parameters));
            wanted.insert(
                r.to_string(),
                content::Trigger {
                    id: id.to_string(),
                    uid,
                    trigger_ref: r.to_string(),
                    name: name.to_string(),
                    pack: pack.to_string(),
                    type_ref: ty.to_string(),
                    parameters,
                },
            );
        }
        let (mut added, mut updated, mut removed) = (0, 0, 0);
        for have in reg.triggers()? {
            if have.trigger_ref == have.type_ref {
                continue;
            }
            match wanted.remove(&have.trigger_ref) {
                Some(w) if w == have => {}
                Some(w) => {
                    reg.put_trigger(&w)?;
                    self.store.flush()?;
                    self.notify("trigger.update", &w).await?;
                    updated += 1;
                }
                None => {
                    reg.delete_trigger(&have.trigger_ref)?;
                    self.store.flush()?;
                    self.notify("trigger.remove", &have).await?;
                    removed += 1;
                }
            }
        }
        for w in wanted.into_values() {
            reg.put_trigger(&w)?;
            self.store.flush()?;
            self.notify("trigger.add", &w).await?;
            added += 1;
        }
        Ok((added, updated, removed))
    }

    async fn notify(&self, method: &str, trigger: &content::Trigger) -> Result<(), OpError> {
        if let Some(c) = &self.live {
            c.trigger_changed(method, trigger).await?;
        }
        Ok(())
    }

    async fn statuses(&self) -> std::collections::BTreeMap<String, StatusSnapshot> {
        match &self.live {
            Some(c) => c.statuses().await,
            None => Default::default(),
        }
    }

    async fn sensor_view(&self, r: &str) -> Result<Value, OpError> {
        let Some(record) = self.store.registry.sensor(r)? else {
            return Err(OpError::new(
                OpErrorKind::NotFound,
                format!("sensor '{r}' not found (see `sensorctl sensor list`)"),
            ));
        };
        let statuses = self.statuses().await;
        to_json(&SensorView::new(
            &record,
            statuses.get(r),
            self.live.is_some(),
        ))
    }
}

/// Parameters must satisfy the type's `parameters_schema`; a type without
/// one takes none (its only trigger is the shadow trigger).
fn check_parameters(tt: &content::TriggerType, parameters: &Value) -> Result<(), OpError> {
    if !parameters.is_object() {
        return Err(OpError::new(
            OpErrorKind::Invalid,
            format!("parameters must be a JSON object, got {parameters}"),
        ));
    }
    let Some(schema) = &tt.parameters_schema else {
        return Err(OpError::new(
            OpErrorKind::Invalid,
            format!("trigger type '{}' has no parameters_schema: it takes no parameters (dispatch to '{}' directly)", tt.type_ref, tt.type_ref),
        ));
    };
    let compiled = content::CompiledSchema::compile(schema).map_err(|e| {
        OpError::new(
            OpErrorKind::Internal,
            format!("parameters_schema of '{}' is invalid: {e}", tt.type_ref),
        )
    })?;
    compiled.validate(parameters).map_err(|v| {
        OpError::new(
            OpErrorKind::Invalid,
            format!(
                "parameters for '{}' fail its parameters_schema at '{}': {}",
                tt.type_ref,
                if v.path.is_empty() { "/" } else { &v.path },
                v.reason
            ),
        )
    })
}

impl Operations for Ops {
    fn execute<'a>(
        &'a self,
        op: &'a str,
        params: Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, OpError>> + Send + 'a>>
    {
        Box::pin(Ops::execute(self, op, params))
    }

    fn stream(&self, op: &str, params: Value) -> Option<Result<OpStream, OpError>> {
        Ops::stream(self, op, params)
    }
}
