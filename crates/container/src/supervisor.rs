//! The supervisor: one task per sensor that spawns it, serves it, waits for
//! it, and restarts it with backoff; plus the container that owns them all.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use store::{SensorRecord, Store};
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::dispatcher::Dispatcher;
use crate::internal;
use crate::kv::{self, KvService};
use crate::runtime;
use crate::service::{self, ConnectionHandle, SensorContext, ServiceDeps};
use crate::settings::ContainerSettings;
use crate::spawn::{self, SpawnSpec};
use crate::status::{ExitStatus, SensorState, SensorStatus};

/// Which sensors to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Every enabled sensor in the registry.
    AllEnabled,
    /// Exactly this one (even if disabled), as `--sensor-ref` asks.
    One(String),
}

/// Errors starting the container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error("sensor '{0}' is not registered (run `sensorctl reload --register-all`, and check `sensorctl sensor list`)")]
    UnknownSensor(String),
}

/// How a sensor is started, prepared once.
#[derive(Clone)]
struct Launcher {
    python: Result<PathBuf, String>,
    runtime_dir: PathBuf,
}

/// One supervised sensor.
struct Runner {
    status: Arc<SensorStatus>,
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<Option<ExitStatus>>,
}

/// The sensor container.
pub struct Container {
    settings: ContainerSettings,
    store: Arc<Store>,
    deps: Arc<ServiceDeps>,
    launcher: Launcher,
    runners: BTreeMap<String, Runner>,
}

impl Container {
    /// Prepare: load the catalog, install the Python runtime, resolve Python.
    pub fn new(settings: ContainerSettings, store: Arc<Store>) -> Result<Container, ContainerError> {
        let catalog = Catalog::load(&store.registry)?;
        let dispatcher = Arc::new(Dispatcher::new(catalog, store.instances.clone()));
        let crypto = match &settings.encryption_key_path {
            Some(path) => Some(Arc::new(store::CryptoKey::load(path).map_err(store::StoreError::from)?)),
            None => None,
        };
        let kv = KvService::new(store.datastore.clone().with_crypto(crypto), dispatcher.clone());
        let deps = Arc::new(ServiceDeps { dispatcher, kv, max_frame_bytes: settings.max_frame_bytes });
        let runtime_dir = runtime::install(&settings.data_dir)?;
        let python = runtime::resolve_python(&settings.python_binary).map_err(|e| e.to_string());
        if let Err(e) = &python {
            tracing::error!("{e}; Python sensors cannot start");
        }
        Ok(Container { settings, store, deps, launcher: Launcher { python, runtime_dir }, runners: BTreeMap::new() })
    }

    /// Status snapshots of the supervised sensors, by ref.
    pub fn statuses(&self) -> BTreeMap<String, crate::status::StatusSnapshot> {
        self.runners.iter().map(|(r, runner)| (r.clone(), runner.status.snapshot())).collect()
    }

    /// The dispatcher shared by every sensor.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.deps.dispatcher
    }

    /// Run the selected sensors until `shutdown` resolves (or, in single
    /// sensor mode, until the sensor exits). Returns the process exit code:
    /// the child's in single-sensor mode, else 0.
    pub async fn run(
        mut self,
        selection: Selection,
        single_sensor_mode: bool,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<i32, ContainerError> {
        let records = self.select(&selection)?;
        if records.is_empty() {
            tracing::warn!("no enabled sensors to run (see `sensorctl sensor list`)");
        }
        let sweeper = tokio::spawn(kv::run_sweeper(self.deps.kv.clone()));
        tracing::info!(count = records.len(), "starting sensors");
        for record in records {
            self.start(record, single_sensor_mode)?;
        }
        tokio::pin!(shutdown);
        let code = if single_sensor_mode {
            let (sensor_ref, runner) = match self.runners.pop_first() {
                Some(r) => r,
                None => return Ok(1),
            };
            let mut join = runner.join;
            tokio::select! {
                exit = &mut join => {
                    let exit = exit.ok().flatten();
                    tracing::info!(sensor = %sensor_ref, "single sensor mode: sensor ended ({exit:?})");
                    exit.map(shell_code).unwrap_or(1)
                }
                _ = &mut shutdown => {
                    let _ = runner.stop.send(true);
                    let _ = join.await;
                    0
                }
            }
        } else {
            shutdown.await;
            0
        };
        self.stop_all().await;
        sweeper.abort();
        self.store.flush()?;
        Ok(code)
    }

    fn select(&self, selection: &Selection) -> Result<Vec<SensorRecord>, ContainerError> {
        match selection {
            Selection::AllEnabled => Ok(self.store.registry.sensors()?.into_iter().filter(|r| r.enabled()).collect()),
            Selection::One(r) => match self.store.registry.sensor(r)? {
                Some(rec) => Ok(vec![rec]),
                None => Err(ContainerError::UnknownSensor(r.clone())),
            },
        }
    }

    fn start(&mut self, record: SensorRecord, single_sensor_mode: bool) -> Result<(), ContainerError> {
        let sensor = &record.sensor;
        let config = self.store.registry.config(&sensor.pack)?.map(|c| c.values).unwrap_or_else(|| json!({}));
        let ctx = Arc::new(SensorContext {
            sensor_ref: sensor.sensor_ref.clone(),
            pack: sensor.pack.clone(),
            class_name: sensor.class_name.clone(),
            entry_point: sensor.entry_point.clone(),
            poll_interval: sensor.poll_interval,
            config,
            trigger_types: sensor.trigger_types.clone(),
        });
        let status = Arc::new(SensorStatus::default());
        let (stop, stop_rx) = watch::channel(false);
        let task = SensorTask {
            ctx,
            deps: self.deps.clone(),
            status: status.clone(),
            launcher: self.launcher.clone(),
            settings: self.settings.clone(),
            restart: !single_sensor_mode,
        };
        let join = tokio::spawn(task.run(stop_rx));
        self.runners.insert(sensor.sensor_ref.clone(), Runner { status, stop, join });
        Ok(())
    }

    async fn stop_all(&mut self) {
        tracing::info!(count = self.runners.len(), "stopping sensors");
        for runner in self.runners.values() {
            let _ = runner.stop.send(true);
        }
        for (sensor_ref, runner) in std::mem::take(&mut self.runners) {
            if let Err(e) = runner.join.await {
                tracing::error!(sensor = %sensor_ref, "supervisor task failed: {e}");
            }
        }
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
    ctx: Arc<SensorContext>,
    deps: Arc<ServiceDeps>,
    status: Arc<SensorStatus>,
    launcher: Launcher,
    settings: ContainerSettings,
    restart: bool,
}

impl SensorTask {
    async fn run(self, mut stop: watch::Receiver<bool>) -> Option<ExitStatus> {
        let sensor = self.ctx.sensor_ref.as_str();
        let policy = &self.settings.restart;
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
                tracing::error!(
                    sensor,
                    "sensor failed {} times in a row ({exit:?}); giving up (state failed). Last stderr lines:\n{}",
                    streak,
                    self.status.stderr_tail().join("\n")
                );
                break;
            }
            let delay = policy.delay(streak);
            self.status.set_state(SensorState::Backoff);
            tracing::warn!(sensor, "sensor exited with {exit:?}; restarting in {:.1}s (attempt {streak})", delay.as_secs_f64());
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
        internal::process_spawn(&self.deps.dispatcher, &self.ctx.class_name, pid, &spec.command_line());
        let (handle, conn) = service::serve(spawned.conn, self.ctx.clone(), self.deps.clone(), self.status.clone());
        let waited = tokio::select! {
            r = spawned.child.wait() => r,
            _ = stopped(stop) => self.stop_child(&mut spawned.child, pid, &handle).await,
        };
        // The leader is gone; take any process it left in its group with it.
        spawn::signal_group(pid, libc::SIGKILL);
        drop(handle);
        // Finish reading what the sensor wrote before it exited.
        if tokio::time::timeout(Duration::from_secs(5), conn).await.is_err() {
            tracing::warn!(sensor, "connection did not drain within 5s after exit");
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
    async fn stop_child(
        &self,
        child: &mut tokio::process::Child,
        pid: u32,
        handle: &ConnectionHandle,
    ) -> std::io::Result<std::process::ExitStatus> {
        let sensor = self.ctx.sensor_ref.as_str();
        tracing::info!(sensor, pid, "stopping (grace {:.1}s)", self.settings.stop_grace.as_secs_f64());
        handle.notify_now("shutdown", json!({"reason": "container stopping"}));
        spawn::signal_group(pid, libc::SIGTERM);
        match tokio::time::timeout(self.settings.stop_grace, child.wait()).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(sensor, pid, "did not exit within the grace period; sending SIGKILL to its process group");
                spawn::signal_group(pid, libc::SIGKILL);
                child.wait().await
            }
        }
    }

    fn spec(&self) -> Result<SpawnSpec, String> {
        let python = self.launcher.python.clone()?;
        let ctx = &self.ctx;
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
        Ok(SpawnSpec {
            sensor_ref: ctx.sensor_ref.clone(),
            program: python,
            args,
            env: vec![
                ("PYTHONPATH".into(), pythonpath),
                ("PYTHONUNBUFFERED".into(), "1".into()),
                ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
                ("SENSOR_REF".into(), ctx.sensor_ref.clone()),
                ("SENSOR_PACK".into(), ctx.pack.clone()),
                ("SENSOR_CLASS_NAME".into(), ctx.class_name.clone()),
            ],
            cwd: None,
        })
    }
}
