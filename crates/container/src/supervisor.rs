//! The supervisor: one task per sensor that spawns it, serves it, waits for
//! it, and restarts it with backoff; plus the container that owns them all.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use content::RunnerType;
use md5::{Digest, Md5};
use serde::Serialize;
use serde_json::{json, Value};
use store::{SensorRecord, Store};
use tokio::sync::{watch, Mutex};

use crate::catalog::Catalog;
use crate::dispatcher::Dispatcher;
use crate::internal;
use crate::kv::{self, KvService};
use crate::runtime;
use crate::service::{self, ConnectionHandle, SensorContext, ServiceDeps};
use crate::settings::{ContainerSettings, SensorPolicy};
use crate::spawn::{self, SpawnSpec};
use crate::status::{ExitStatus, SensorState, SensorStatus, StatusSnapshot};

/// Which sensors to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Every enabled sensor in the registry.
    AllEnabled,
    /// Exactly this one (even if disabled), as `--sensor-ref` asks.
    One(String),
}

impl Selection {
    /// Whether this container runs `record`.
    pub fn wants(&self, record: &SensorRecord) -> bool {
        match self {
            Selection::AllEnabled => record.enabled(),
            Selection::One(r) => *r == record.sensor.sensor_ref,
        }
    }
}

/// Errors starting or controlling the container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error("sensor '{0}' is not registered (run `sensorctl reload --register-all`, and check `sensorctl sensor list`)")]
    UnknownSensor(String),
    #[error("sensor '{0}' is not run by this container (it is disabled, or another sensor was selected with --sensor-ref)")]
    NotAssigned(String),
    /// A cgroup limit that this host cannot apply.
    #[error("{0}")]
    Cgroup(String),
}

/// How a sensor is started, prepared once.
#[derive(Clone)]
struct Launcher {
    python: Result<PathBuf, String>,
    runtime_dir: PathBuf,
    /// For pack virtualenvs (`<data_dir>/virtualenvs/<pack>`).
    data_dir: PathBuf,
    /// `SENSOR_CONTAINER_ID` of every sensor process.
    instance_id: Option<String>,
    /// The run's cgroup: each sensor start gets a child of it.
    cgroup: Option<Arc<crate::cgroup::RunCgroup>>,
}

/// One supervised sensor.
struct Runner {
    status: Arc<SensorStatus>,
    stop: watch::Sender<bool>,
    /// Becomes `Some(last exit)` when the supervising task ends.
    done: watch::Receiver<Option<Option<ExitStatus>>>,
    /// What the sensor was started from; a reload restarts it when this changes.
    fingerprint: String,
    /// Its trigger types, to route trigger add/update/remove.
    trigger_types: Vec<String>,
    /// The live connection of its current process, if one runs.
    conn: LiveConn,
}

/// The connection of a sensor's current process (replaced on each restart).
/// The connections of a running sensor process: its fd-3 pipe first, then
/// any attached by its children or re-executed images.
type LiveConn = Arc<std::sync::Mutex<Vec<ConnectionHandle>>>;

/// Longest wait to hand a sensor a notification; a sensor whose outbound
/// queue stays full that long is restarted.
const NOTIFY_DEADLINE: Duration = Duration::from_secs(2);
/// After a sensor process exited: how long what it already wrote may still
/// be read before its connections are closed from our side.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(300);

/// What a reload changed.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ApplyReport {
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: usize,
}

/// The sensor container: owns every sensor's supervising task.
pub struct Container {
    settings: ContainerSettings,
    store: Arc<Store>,
    deps: Arc<ServiceDeps>,
    launcher: Launcher,
    selection: Selection,
    single_sensor_mode: bool,
    /// Control operations (apply, restart, stop) hold this for their whole
    /// duration, so they never interleave.
    runners: Mutex<BTreeMap<String, Runner>>,
}

impl Container {
    /// Prepare: load the catalog, install the Python runtime, resolve Python,
    /// load the encryption key.
    pub fn new(
        settings: ContainerSettings,
        store: Arc<Store>,
        log: Arc<dyn eventlog::EventLog>,
        selection: Selection,
        single_sensor_mode: bool,
    ) -> Result<Arc<Container>, ContainerError> {
        if let Selection::One(r) = &selection {
            if store.registry.sensor(r)?.is_none() {
                return Err(ContainerError::UnknownSensor(r.clone()));
            }
        }
        let dispatcher = Arc::new(Dispatcher::open(&store, log)?);
        let kv = KvService::open(
            &store,
            dispatcher.clone(),
            settings.encryption_key_path.as_deref(),
        )?;
        let deps = Arc::new(ServiceDeps {
            dispatcher,
            kv,
            remote_kv: settings.remote_datastore.clone(),
            max_frame_bytes: settings.max_frame_bytes,
        });
        let runtime_dir = runtime::install(&settings.data_dir)?;
        if settings.run_as.is_some() || settings.per_sensor.values().any(|p| p.run_as.is_some()) {
            // Sensors of another user reach the runtime (0755) through the
            // data dir, which they may traverse but not list (0711); the
            // database and the log stay 0700.
            use std::os::unix::fs::PermissionsExt;
            for d in [settings.data_dir.clone(), settings.data_dir.join("runtime")] {
                let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o711));
            }
        }
        let data_dir = settings.data_dir.clone();
        let instance_id = settings.instance_id.clone();
        let cgroup = settings
            .cgroup_dir
            .clone()
            .map(|d| Arc::new(crate::cgroup::RunCgroup::at(d)));
        check_cgroup_limits(&settings, cgroup.as_deref())?;
        let python = runtime::resolve_python(&settings.python_binary).map_err(|e| e.to_string());
        if let Ok(p) = &python {
            runtime::precompile(&runtime_dir, p);
        }
        if let Err(e) = &python {
            tracing::error!("{e}; Python sensors cannot start");
        }
        Ok(Arc::new(Container {
            settings,
            store,
            deps,
            launcher: Launcher {
                python,
                runtime_dir,
                data_dir,
                instance_id,
                cgroup,
            },
            selection,
            single_sensor_mode,
            runners: Mutex::new(BTreeMap::new()),
        }))
    }

    /// Status snapshots of the supervised sensors, by ref.
    pub async fn statuses(&self) -> BTreeMap<String, StatusSnapshot> {
        self.runners
            .lock()
            .await
            .iter()
            .map(|(r, runner)| (r.clone(), runner.status.snapshot()))
            .collect()
    }

    /// The dispatcher every source stores through.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.deps.dispatcher
    }

    /// The datastore service (with the container's encryption key).
    pub fn kv(&self) -> &KvService {
        &self.deps.kv
    }

    /// Run until `shutdown` resolves (or, in single sensor mode, until the
    /// sensor exits). Returns the process exit code: the child's in
    /// single-sensor mode, else 0.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<i32, ContainerError> {
        let report = self.apply().await?;
        if report.started.is_empty() {
            tracing::warn!("no enabled sensors to run (see `sensorctl sensor list`)");
        }
        let sweeper = tokio::spawn(kv::run_sweeper(self.deps.kv.clone()));
        tokio::pin!(shutdown);
        let code = match (&self.selection, self.single_sensor_mode) {
            (Selection::One(sensor_ref), true) => {
                let done = self
                    .runners
                    .lock()
                    .await
                    .get(sensor_ref)
                    .map(|r| r.done.clone());
                match done {
                    Some(mut done) => tokio::select! {
                        exit = done.wait_for(|d| d.is_some()) => {
                            let exit = exit.ok().and_then(|d| *d).flatten();
                            tracing::info!(sensor = %sensor_ref, "single sensor mode: sensor ended ({exit:?})");
                            exit.map(shell_code).unwrap_or(1)
                        }
                        _ = &mut shutdown => 0,
                    },
                    None => 1,
                }
            }
            _ => {
                shutdown.await;
                0
            }
        };
        self.stop_all().await;
        sweeper.abort();
        self.store.flush()?;
        Ok(code)
    }

    /// Bring the running sensors in line with the registry: start new or
    /// newly enabled ones, stop removed or disabled ones, restart those
    /// whose metadata, entry point, pack config or trigger types changed.
    /// Unchanged sensors keep running untouched (same pid).
    pub async fn apply(&self) -> Result<ApplyReport, ContainerError> {
        self.deps
            .dispatcher
            .set_catalog(Catalog::load(&self.store.registry)?);
        let mut desired = BTreeMap::new();
        for record in self.store.registry.sensors()? {
            if self.selection.wants(&record) {
                let fp = self.fingerprint(&record)?;
                desired.insert(record.sensor.sensor_ref.clone(), (record, fp));
            }
        }
        let mut runners = self.runners.lock().await;
        let mut report = ApplyReport::default();
        let gone: Vec<String> = runners
            .keys()
            .filter(|r| !desired.contains_key(*r))
            .cloned()
            .collect();
        let changed: Vec<String> = desired
            .iter()
            .filter(|(r, (_, fp))| runners.get(*r).is_some_and(|run| run.fingerprint != *fp))
            .map(|(r, _)| r.clone())
            .collect();
        let to_stop: Vec<Runner> = gone
            .iter()
            .chain(&changed)
            .filter_map(|r| runners.remove(r))
            .collect();
        stop_runners(to_stop).await;
        for r in &gone {
            tracing::info!(sensor = %r, "stopped: no longer enabled or registered");
        }
        for (r, (record, fp)) in desired {
            if runners.contains_key(&r) {
                report.unchanged += 1;
                continue;
            }
            runners.insert(r.clone(), self.start(&record, fp)?);
            if changed.contains(&r) {
                report.restarted.push(r);
            } else {
                report.started.push(r);
            }
        }
        report.stopped = gone;
        Ok(report)
    }

    /// Restart one sensor now (a fresh process and fresh counters).
    pub async fn restart(&self, sensor_ref: &str) -> Result<(), ContainerError> {
        let record = self
            .store
            .registry
            .sensor(sensor_ref)?
            .ok_or_else(|| ContainerError::UnknownSensor(sensor_ref.into()))?;
        if !self.selection.wants(&record) {
            return Err(ContainerError::NotAssigned(sensor_ref.into()));
        }
        let fp = self.fingerprint(&record)?;
        let mut runners = self.runners.lock().await;
        if let Some(old) = runners.remove(sensor_ref) {
            stop_runners(vec![old]).await;
        }
        tracing::info!(sensor = sensor_ref, "restart requested");
        runners.insert(sensor_ref.to_string(), self.start(&record, fp)?);
        Ok(())
    }

    /// A trigger was created, updated or deleted (`method` is
    /// `trigger.add`, `trigger.update` or `trigger.remove`): refresh the
    /// dispatch catalog first (so the sensor can dispatch to it at once),
    /// then tell every running sensor that declares its type. Sensors still
    /// starting get it from `init` instead. Returns how many were told.
    pub async fn trigger_changed(
        &self,
        method: &str,
        trigger: &content::Trigger,
    ) -> Result<usize, ContainerError> {
        self.deps
            .dispatcher
            .set_catalog(Catalog::load(&self.store.registry)?);
        // Collect the connections under the lock, notify without it: a
        // sensor that stops reading must never hold up the container.
        let targets: Vec<(String, Vec<ConnectionHandle>)> = {
            let runners = self.runners.lock().await;
            runners
                .iter()
                .filter(|(_, runner)| runner.trigger_types.contains(&trigger.type_ref))
                .map(|(sensor_ref, runner)| {
                    let handles = runner
                        .conn
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .filter(|h| h.initialized())
                        .cloned()
                        .collect();
                    (sensor_ref.clone(), handles)
                })
                .collect()
        };
        let mut told = 0;
        let mut stuck = Vec::new();
        for (sensor_ref, handles) in targets {
            let mut sent = 0;
            for h in &handles {
                if h.notify_within(method, json!({"trigger": trigger}), NOTIFY_DEADLINE)
                    .await
                {
                    sent += 1;
                } else if !stuck.contains(&sensor_ref) {
                    stuck.push(sensor_ref.clone());
                }
            }
            if sent > 0 {
                tracing::info!(sensor = %sensor_ref, trigger = %trigger.trigger_ref, connections = sent, "{method} sent");
                told += 1;
            }
        }
        for sensor_ref in stuck {
            tracing::warn!(
                sensor = %sensor_ref,
                "restarting: it did not take {method} within {NOTIFY_DEADLINE:?} (it is not reading what the container sends; its outbound queue is full)"
            );
            if let Err(e) = self.restart(&sensor_ref).await {
                tracing::error!(sensor = %sensor_ref, "restart failed: {e}");
            }
        }
        Ok(told)
    }

    /// What a sensor runs from: metadata (with the entry point's hash),
    /// pack config, its trigger types and its pack virtualenv. Not the
    /// operator's enable flag.
    fn fingerprint(&self, record: &SensorRecord) -> Result<String, ContainerError> {
        let registry = &self.store.registry;
        // The rendered config: a datastore key a template reads changing
        // is a change of config (only a digest of it is kept).
        let config = registry.config(&record.sensor.pack)?.map(|c| {
            crate::config_template::render(
                &c.pack,
                &c.values,
                c.schema.as_ref(),
                &self.deps.kv.datastore,
            )
            .map_err(|e| e.to_string())
        });
        let types: Vec<_> = record
            .sensor
            .trigger_types
            .iter()
            .map(|t| registry.trigger_type(t))
            .collect::<Result<_, _>>()?;
        // A (re)created pack virtualenv changes the interpreter: restart.
        let venv =
            runtime::virtualenv_python(&self.settings.data_dir, &record.sensor.pack).map(|p| {
                let ready = p
                    .parent()
                    .and_then(Path::parent)
                    .map(|d| d.join(runtime::VIRTUALENV_READY));
                let stamp =
                    ready.and_then(|r| std::fs::metadata(r).and_then(|m| m.modified()).ok());
                (p, stamp)
            });
        let bytes =
            serde_json::to_vec(&(&record.sensor, &config, &types, &venv)).unwrap_or_default();
        Ok(format!("{:x}", Md5::digest(&bytes)))
    }

    fn start(&self, record: &SensorRecord, fingerprint: String) -> Result<Runner, ContainerError> {
        let sensor = &record.sensor;
        // Raw: templates are rendered at every start of the process.
        let config = self.store.registry.config(&sensor.pack)?;
        let config_schema = config.as_ref().and_then(|c| c.schema.clone());
        let config = config.map(|c| c.values).unwrap_or_else(|| json!({}));
        let ctx = Arc::new(SensorContext {
            sensor_ref: sensor.sensor_ref.clone(),
            pack: sensor.pack.clone(),
            class_name: sensor.class_name.clone(),
            entry_point: sensor.entry_point.clone(),
            poll_interval: sensor.poll_interval,
            config,
            trigger_types: sensor.trigger_types.clone(),
            runner_type: sensor.runner_type,
            args: sensor.args.clone(),
        });
        let status = Arc::new(SensorStatus::default());
        let (stop, stop_rx) = watch::channel(false);
        let (done_tx, done) = watch::channel(None);
        let conn = LiveConn::default();
        let task = SensorTask {
            conn: conn.clone(),
            ctx,
            config_schema,
            deps: self.deps.clone(),
            status: status.clone(),
            launcher: self.launcher.clone(),
            policy: self.settings.policy_for(&sensor.sensor_ref),
            restart: !self.single_sensor_mode,
        };
        tokio::spawn(async move {
            let exit = task.run(stop_rx).await;
            let _ = done_tx.send(Some(exit));
        });
        Ok(Runner {
            status,
            stop,
            done,
            fingerprint,
            trigger_types: sensor.trigger_types.clone(),
            conn,
        })
    }

    /// Stop every sensor (concurrently: shutdown takes one grace period).
    pub async fn stop_all(&self) {
        let mut runners = self.runners.lock().await;
        tracing::info!(count = runners.len(), "stopping sensors");
        let all: Vec<Runner> = std::mem::take(&mut *runners).into_values().collect();
        stop_runners(all).await;
        if let Some(run) = self.launcher.cgroup.clone() {
            let left = tokio::task::spawn_blocking(move || {
                run.kill_and_remove(std::time::Duration::from_secs(2))
            })
            .await
            .unwrap_or(0);
            if left > 0 {
                tracing::warn!("killed {left} process(es) left in the sensors' cgroups");
            }
        }
    }
}

/// Refuse cgroup limits (`memory_max`, `cpu_max`, `pids_max`) that this
/// host cannot apply, at start, naming the sensor and the reason.
fn check_cgroup_limits(
    settings: &ContainerSettings,
    run: Option<&crate::cgroup::RunCgroup>,
) -> Result<(), ContainerError> {
    let mut wanted: Vec<(String, &crate::cgroup::CgroupLimits)> =
        vec![("sensorcontainer.limits".into(), &settings.limits.cgroup)];
    for (r, p) in &settings.per_sensor {
        wanted.push((
            format!("sensorcontainer.sensors.{r}.limits"),
            &p.limits.cgroup,
        ));
    }
    for (key, limits) in wanted {
        if limits.is_empty() {
            continue;
        }
        let err = match run {
            None => "no writable cgroup v2 hierarchy for this container (see the start-up log)"
                .to_string(),
            Some(run) => match run.check(limits) {
                Ok(()) => continue,
                Err(e) => e.to_string(),
            },
        };
        return Err(ContainerError::Cgroup(format!(
            "{key}: memory_max, cpu_max and pids_max cannot be applied: {err}"
        )));
    }
    Ok(())
}

/// Ask every runner to stop, then wait for all of them.
async fn stop_runners(runners: Vec<Runner>) {
    for r in &runners {
        let _ = r.stop.send(true);
    }
    for mut r in runners {
        let _ = r.done.wait_for(|d| d.is_some()).await;
    }
}

/// Resolves once a stop is requested (without holding the watch guard
/// across an await).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A process exit as a shell would report it: the code, or 128 + signal.
fn shell_code(exit: ExitStatus) -> i32 {
    match exit {
        ExitStatus::Code(c) => c,
        ExitStatus::Signal(s) => 128 + s,
    }
}

struct SensorTask {
    conn: LiveConn,
    /// The sensor, its config as registered (templates not rendered).
    ctx: Arc<SensorContext>,
    /// The pack's config schema, for checking rendered values.
    config_schema: Option<Value>,
    deps: Arc<ServiceDeps>,
    status: Arc<SensorStatus>,
    launcher: Launcher,
    policy: SensorPolicy,
    restart: bool,
}

impl SensorTask {
    async fn run(self, mut stop: watch::Receiver<bool>) -> Option<ExitStatus> {
        let sensor = self.ctx.sensor_ref.as_str();
        let policy = &self.policy.restart;
        let mut streak = 0u32;
        let mut last_exit = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let started = Instant::now();
            let exit = self.run_once(&mut stop).await;
            last_exit = Some(exit);
            if *stop.borrow() {
                self.status.set_state(SensorState::Stopped);
                tracing::info!(sensor, "stopped");
                break;
            }
            if exit == ExitStatus::Code(0) {
                tracing::info!(sensor, "sensor exited 0: done, not restarted");
                self.status.set_state(SensorState::Stopped);
                break;
            }
            if !self.restart {
                self.status.set_state(SensorState::Failed);
                break;
            }
            if started.elapsed() >= policy.healthy_uptime {
                streak = 0;
            }
            streak += 1;
            if policy.max_restarts > 0 && streak > policy.max_restarts {
                self.status.set_state(SensorState::Failed);
                // One line (log parsers), the stderr tail joined with " | ".
                let tail = self.status.stderr_tail();
                let tail = tail[tail.len().saturating_sub(5)..].join(" | ");
                tracing::error!(
                    sensor,
                    "sensor failed {streak} times in a row ({exit:?}); giving up (state failed); last stderr: {tail}"
                );
                break;
            }
            let delay = policy.delay(streak);
            self.status.set_state(SensorState::Backoff);
            tracing::warn!(
                sensor,
                "sensor exited with {exit:?}; restarting in {:.1}s (attempt {streak})",
                delay.as_secs_f64()
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(&mut stop) => {
                    self.status.set_state(SensorState::Stopped);
                    break;
                }
            }
            self.status.restarted();
        }
        last_exit
    }

    async fn run_once(&self, stop: &mut watch::Receiver<bool>) -> ExitStatus {
        let sensor = self.ctx.sensor_ref.as_str();
        self.status.set_state(SensorState::Starting);
        let spec = match self.spec() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(sensor, "cannot start: {e}");
                return ExitStatus::Code(127);
            }
        };
        // Config templates are rendered at each start: a key set since the
        // last one is seen now.
        let ctx = match crate::config_template::render(
            &self.ctx.pack,
            &self.ctx.config,
            self.config_schema.as_ref(),
            &self.deps.kv.datastore,
        ) {
            Ok(config) if config == self.ctx.config => self.ctx.clone(),
            Ok(config) => Arc::new(SensorContext {
                config,
                ..(*self.ctx).clone()
            }),
            Err(e) => {
                tracing::error!(sensor, "cannot start: {e}");
                self.status.push_stderr(format!("cannot start: {e}"));
                return ExitStatus::Code(78);
            }
        };
        // Children and re-executed images of the sensor attach here; the
        // token also marks every process of this start, so whatever it
        // leaves behind can be found and killed.
        let mut spec = spec;
        let run_token = match crate::attach::new_token() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(sensor, "cannot start: {e}");
                return ExitStatus::Code(127);
            }
        };
        spec.env
            .push((protocol::RPC_TOKEN_ENV.to_string(), run_token.clone()));
        let attach = self.attach_point(&ctx, &run_token);
        match &attach {
            Ok(a) => spec.env.push(a.socket_env()),
            Err(e) => tracing::warn!(
                sensor,
                "no attach socket (only the first process can talk to the container): {e}"
            ),
        }
        // Its own cgroup: stopping it kills exactly its processes.
        let cgroup = match &self.launcher.cgroup {
            Some(run) => match run.sensor(sensor, &self.policy.limits.cgroup) {
                Ok(cg) => Some(cg),
                Err(e) if self.policy.limits.cgroup.is_empty() => {
                    tracing::warn!(sensor, "starting without a cgroup of its own: {e}");
                    None
                }
                Err(e) => {
                    tracing::error!(sensor, "cannot start: its cgroup (for its limits): {e}");
                    return ExitStatus::Code(78);
                }
            },
            None => None,
        };
        spec.cgroup_procs = cgroup.as_ref().map(|c| {
            use std::os::fd::AsRawFd;
            c.procs_fd().as_raw_fd()
        });
        let mut spawned = match spawn::spawn(&spec, self.status.clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(sensor, "cannot start {}: {e}", spec.command_line());
                return ExitStatus::Code(127);
            }
        };
        let pid = spawned.pid;
        self.status.started(pid);
        tracing::info!(sensor, pid, "spawned: {}", spec.command_line());
        internal::process_spawn(
            &self.deps.dispatcher,
            &self.ctx.class_name,
            pid,
            &spec.command_line(),
        );
        let (handle, conn) =
            service::serve(spawned.conn, ctx, self.deps.clone(), self.status.clone());
        self.conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(0, handle.clone());
        let waited = tokio::select! {
            r = spawned.child.wait() => r,
            _ = stopped(stop) => self.stop_child(&mut spawned.child, pid).await,
        };
        // The leader is gone; take any process it left in its group with it,
        // and any that left the group but still carries this start's token
        // (setsid daemons, double forks).
        spawn::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
        drop(attach);
        if let Some(cg) = cgroup {
            let left =
                tokio::task::spawn_blocking(move || cg.kill_all(std::time::Duration::from_secs(2)))
                    .await
                    .unwrap_or(0);
            if left > 0 {
                tracing::warn!(
                    sensor,
                    "killed {left} process(es) the sensor left in its cgroup"
                );
            }
        }
        let leftovers = spawn::kill_tagged(&run_token);
        if leftovers > 0 {
            tracing::warn!(
                sensor,
                "killed {leftovers} process(es) the sensor left behind outside its process group"
            );
        }
        let attached: Vec<ConnectionHandle> =
            std::mem::take(&mut *self.conn.lock().unwrap_or_else(|p| p.into_inner()));
        drop(attached);
        drop(handle);
        // Read what was already written, briefly; then close from our side,
        // so nothing the sensor left behind can dispatch in its name.
        let mut conn = conn;
        if tokio::time::timeout(DRAIN_AFTER_EXIT, &mut conn)
            .await
            .is_err()
        {
            conn.abort();
            tracing::debug!(
                sensor,
                "connection closed {DRAIN_AFTER_EXIT:?} after the exit"
            );
        }
        let exit = match waited {
            Ok(st) => {
                use std::os::unix::process::ExitStatusExt;
                match (st.code(), st.signal()) {
                    (Some(c), _) => ExitStatus::Code(c),
                    (None, Some(s)) => ExitStatus::Signal(s),
                    _ => ExitStatus::Code(-1),
                }
            }
            Err(e) => {
                tracing::error!(sensor, "waiting for pid {pid} failed: {e}");
                ExitStatus::Code(-1)
            }
        };
        self.status.exited(exit);
        tracing::info!(sensor, pid, "exited: {exit:?}");
        internal::process_exit(&self.deps.dispatcher, &self.ctx.class_name, exit.st2_code());
        exit
    }

    /// shutdown message + SIGTERM to the group, the grace period, then SIGKILL.
    /// The attach socket of one run: each authenticated connection is
    /// served like the pipe and joins the run's connections.
    fn attach_point(
        &self,
        ctx: &Arc<SensorContext>,
        token: &str,
    ) -> std::io::Result<crate::attach::AttachPoint> {
        let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (ctx, deps, status, conns, count) = (
            ctx.clone(),
            self.deps.clone(),
            self.status.clone(),
            self.conn.clone(),
            live.clone(),
        );
        crate::attach::AttachPoint::open(
            &self.launcher.data_dir,
            &self.ctx.sensor_ref,
            token,
            live,
            move |stream| {
                let (h, join) = service::serve(stream, ctx.clone(), deps.clone(), status.clone());
                {
                    let mut all = conns.lock().unwrap_or_else(|p| p.into_inner());
                    all.retain(|c| !c.is_closed());
                    all.push(h);
                }
                let count = count.clone();
                tokio::spawn(async move {
                    let _ = join.await;
                    count.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                });
            },
        )
    }

    async fn stop_child(
        &self,
        child: &mut tokio::process::Child,
        pid: u32,
    ) -> std::io::Result<std::process::ExitStatus> {
        let sensor = self.ctx.sensor_ref.as_str();
        tracing::info!(
            sensor,
            pid,
            "stopping (grace {:.1}s)",
            self.policy.stop_grace.as_secs_f64()
        );
        for h in self.conn.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            h.notify_now("shutdown", json!({"reason": "container stopping"}));
        }
        spawn::signal_group(pid, nix::sys::signal::Signal::SIGTERM);
        match tokio::time::timeout(self.policy.stop_grace, child.wait()).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(
                    sensor,
                    pid,
                    "did not exit within the grace period; sending SIGKILL to its process group"
                );
                spawn::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                child.wait().await
            }
        }
    }

    fn spec(&self) -> Result<SpawnSpec, String> {
        let ctx = &self.ctx;
        let mut env = vec![
            ("SENSOR_REF".to_string(), ctx.sensor_ref.clone()),
            ("SENSOR_PACK".to_string(), ctx.pack.clone()),
            ("SENSOR_CLASS_NAME".to_string(), ctx.class_name.clone()),
        ];
        if let Some(id) = &self.launcher.instance_id {
            env.push((crate::spawn::CONTAINER_ID_ENV.to_string(), id.clone()));
        }
        let (program, args): (PathBuf, Vec<OsString>) = match ctx.runner_type {
            RunnerType::Exec => (
                ctx.entry_point.clone(),
                ctx.args.iter().map(OsString::from).collect(),
            ),
            RunnerType::Python => {
                let python = match runtime::virtualenv_python(&self.launcher.data_dir, &ctx.pack) {
                    Some(venv) => venv,
                    None => self.launcher.python.clone()?,
                };
                let wrapper = self.launcher.runtime_dir.join(runtime::WRAPPER);
                let mut args: Vec<OsString> = vec![
                    wrapper.into(),
                    "--ref".into(),
                    ctx.sensor_ref.clone().into(),
                    "--pack".into(),
                    ctx.pack.clone().into(),
                    "--file".into(),
                    ctx.entry_point.clone().into(),
                    "--class-name".into(),
                    ctx.class_name.clone().into(),
                ];
                if let Some(p) = ctx.poll_interval {
                    args.push("--poll-interval".into());
                    args.push(p.to_string().into());
                }
                let mut pythonpath = self.launcher.runtime_dir.display().to_string();
                if let Ok(existing) = std::env::var("PYTHONPATH") {
                    if !existing.is_empty() {
                        pythonpath = format!("{pythonpath}:{existing}");
                    }
                }
                env.push(("PYTHONPATH".into(), pythonpath));
                env.push(("PYTHONUNBUFFERED".into(), "1".into()));
                env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
                (python, args)
            }
        };
        Ok(SpawnSpec {
            sensor_ref: ctx.sensor_ref.clone(),
            program,
            args,
            env,
            cwd: None,
            run_as: self.policy.run_as.clone(),
            limits: self.policy.limits.clone(),
            cgroup_procs: None,
        })
    }
}
