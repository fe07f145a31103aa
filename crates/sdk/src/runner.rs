//! The lifecycle: connect, `init`, triggers, `setup`, `ready`, `run`, and
//! every way of stopping.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::Value;
use tokio::net::UnixStream;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::client::{self, Client, Event, StopReason, TriggerChange};
use crate::error::{BoxError, Error};
use crate::logging;
use crate::sensor::{Polling, PollingSensor, Sensor};
use crate::service::SensorService;
use crate::types::{SensorInfo, Trigger};

/// The default in-flight dispatch window (the Python shim's too).
pub const DEFAULT_WINDOW: usize = 1024;

/// How long to wait for the answer to `init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Tunables of [`run_with`] / [`serve`]. [`Options::from_env`] reads the
/// same environment variables as the Python wrapper.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Maximum unacknowledged dispatches (env `SENSOR_DISPATCH_WINDOW`,
    /// default 1024).
    pub window: usize,
    /// On a normal exit (`run` returned, or failed), how long to wait for
    /// outstanding acks (env `SENSOR_ACK_TIMEOUT`, seconds, default 10).
    pub ack_timeout: Duration,
    /// From a stop request to the exit: `cleanup` and the wait for acks
    /// must fit (env `SENSOR_STOP_TIMEOUT`, seconds, default 4; the
    /// container's grace period is 5 s). If the process has not finished by
    /// then plus one second, it exits 1 regardless (when a runtime thread is
    /// free to notice; past the grace period the container kills the
    /// process group anyway).
    pub stop_timeout: Duration,
    /// Forward `tracing` events at this level and above to the container
    /// log (env `SENSOR_LOG_LEVEL`: debug, info, warning, error; default
    /// info). `None`: do not install the log bridge.
    pub log_level: Option<tracing::Level>,
    /// Worker threads of the runtime [`run_with`] builds (env
    /// `SENSOR_WORKER_THREADS`). `0` (the default): a current-thread
    /// runtime, everything on the main thread; the cheapest in CPU, which
    /// matters when the sensor shares a small machine with the container.
    /// `n > 0`: the sensor's own futures still run on the main thread, and
    /// the pipe's reader and writer, the signal handling and anything the
    /// sensor spawns run on `n` workers, so they keep going (and the stop
    /// deadline is enforced) even if sensor code blocks its thread.
    pub worker_threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            window: DEFAULT_WINDOW,
            ack_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(4),
            log_level: Some(tracing::Level::INFO),
            worker_threads: 0,
        }
    }
}

impl Options {
    /// The defaults, overridden by `SENSOR_DISPATCH_WINDOW`,
    /// `SENSOR_ACK_TIMEOUT`, `SENSOR_STOP_TIMEOUT`, `SENSOR_LOG_LEVEL` and
    /// `SENSOR_WORKER_THREADS` when they are set and valid.
    pub fn from_env() -> Options {
        let mut o = Options::default();
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if let Some(w) = var("SENSOR_DISPATCH_WINDOW").and_then(|v| v.trim().parse().ok()) {
            o.window = w;
        }
        if let Some(n) = var("SENSOR_WORKER_THREADS").and_then(|v| v.trim().parse().ok()) {
            o.worker_threads = n;
        }
        let secs = |k: &str| {
            var(k)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
        };
        if let Some(d) = secs("SENSOR_ACK_TIMEOUT") {
            o.ack_timeout = d;
        }
        if let Some(d) = secs("SENSOR_STOP_TIMEOUT") {
            o.stop_timeout = d;
        }
        if let Some(l) = var("SENSOR_LOG_LEVEL").and_then(|v| logging::parse_level(&v)) {
            o.log_level = Some(l);
        }
        o
    }
}

/// How a sensor process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `run` returned `Ok` (exit 0: done, not restarted).
    Finished,
    /// Stopped on request (`shutdown`, SIGTERM, SIGINT) (exit 0).
    Stopped,
    /// The pipe closed: the container is gone (exit 0).
    ConnectionClosed,
    /// Connecting, `init`, `setup`, `run` or `cleanup` failed (exit 1).
    Failed,
}

impl Outcome {
    /// The process exit code for this outcome.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Failed => 1,
            _ => 0,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        ExitCode::from(o.exit_code())
    }
}

/// Run `sensor` as this process's sensor: build a tokio runtime, connect on
/// `SENSOR_RPC_FD`, and go through the lifecycle (see [`Sensor`]). Return
/// its result from `main`:
///
/// ```no_run
/// # struct MySensor;
/// # impl sdk::Sensor for MySensor {
/// #     async fn run(&self, _: &sdk::SensorService) -> Result<(), sdk::BoxError> { Ok(()) }
/// # }
/// fn main() -> std::process::ExitCode {
///     sdk::run(MySensor)
/// }
/// ```
pub fn run<S: Sensor>(sensor: S) -> ExitCode {
    run_with(sensor, Options::from_env())
}

/// [`run`] for a [`PollingSensor`].
pub fn run_polling<S: PollingSensor>(sensor: S) -> ExitCode {
    run_with(Polling(sensor), Options::from_env())
}

/// [`run`] with explicit [`Options`] (see [`Options::worker_threads`] for
/// the runtime it builds).
pub fn run_with<S: Sensor>(sensor: S, options: Options) -> ExitCode {
    let built = match options.worker_threads {
        0 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .thread_name("sensor-worker")
            .enable_all()
            .build(),
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sensor: cannot start the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = rt.block_on(serve(sensor, options));
    // Tasks the sensor left behind get a moment, not forever.
    rt.shutdown_timeout(Duration::from_millis(500));
    outcome.into()
}

/// The lifecycle inside an existing tokio runtime (with I/O, time and
/// signal drivers enabled): connect on `SENSOR_RPC_FD` and run `sensor`.
/// The caller should exit the process with [`Outcome::exit_code`].
pub async fn serve<S: Sensor>(sensor: S, options: Options) -> Outcome {
    let stream = client::stream_from_env().and_then(|std_stream| {
        std_stream.set_nonblocking(true)?;
        Ok(UnixStream::from_std(std_stream)?)
    });
    match stream {
        Ok(stream) => serve_on(sensor, options, stream).await,
        Err(e) => {
            eprintln!("sensor: {e}");
            Outcome::Failed
        }
    }
}

/// [`serve`] on an already connected stream (tests, embedding).
pub async fn serve_on<S: Sensor>(sensor: S, options: Options, stream: UnixStream) -> Outcome {
    let (client, events) = Client::start(stream, options.window);
    let bridged = match options.log_level {
        Some(level) if logging::install(level) => {
            logging::attach(Some(client.clone()));
            true
        }
        _ => false,
    };
    let mut life = Lifecycle {
        client: client.clone(),
        events,
        options,
        label: std::env::var("SENSOR_REF").unwrap_or_else(|_| "sensor".into()),
    };
    let watchers = life.spawn_stop_watchers();
    let outcome = life.go(&sensor).await;
    // The last log lines (cleanup's, errors) reach the container before we go.
    let _ = tokio::time::timeout(Duration::from_millis(500), client.drain()).await;
    for w in watchers {
        w.abort();
    }
    if bridged {
        logging::attach(None);
    }
    if client.logs_dropped() > 0 {
        eprintln!(
            "{}: {} log line(s) dropped (more than {} waiting to be written)",
            life.label,
            client.logs_dropped(),
            client::MAX_LOG_BACKLOG
        );
    }
    outcome
}

struct Lifecycle {
    client: Client,
    events: mpsc::UnboundedReceiver<Event>,
    options: Options,
    label: String,
}

/// How driving a `setup`/`run` future ended.
enum Driven<T> {
    Done(T),
    Stop(StopReason),
    Closed(String),
}

impl Lifecycle {
    /// SIGTERM/SIGINT become stop requests; a stop request arms the hard
    /// deadline (the sensor's futures run on the caller's thread, which
    /// user code might block).
    fn spawn_stop_watchers(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for (kind, name) in [
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::interrupt(), "SIGINT"),
        ] {
            match signal(kind) {
                Ok(mut sig) => {
                    let client = self.client.clone();
                    tasks.push(tokio::spawn(async move {
                        if sig.recv().await.is_some() {
                            client.request_stop(StopReason::Signal(name));
                        }
                    }));
                }
                Err(e) => eprintln!("{}: cannot handle {name}: {e}", self.label),
            }
        }
        let mut stop = self.client.stop_watch();
        let hard = self.options.stop_timeout + Duration::from_secs(1);
        let label = self.label.clone();
        tasks.push(tokio::spawn(async move {
            if stop.wait_for(Option::is_some).await.is_ok() {
                tokio::time::sleep(hard).await;
                eprintln!(
                    "{label}: did not finish within {:.1}s of the stop request; exiting",
                    hard.as_secs_f64()
                );
                std::process::exit(1);
            }
        }));
        tasks
    }

    async fn go<S: Sensor>(&mut self, sensor: &S) -> Outcome {
        // -- init
        let info = match self.init().await {
            Ok(Some(info)) => info,
            Ok(None) => return Outcome::Stopped,
            Err(e) if e.is_closed() => {
                self.fatal("the sensor container closed the pipe before answering init");
                return Outcome::Failed;
            }
            Err(e) => {
                self.fatal(&format!("init failed: {e}"));
                return Outcome::Failed;
            }
        };
        if !info.sensor_ref.is_empty() {
            self.label = info.sensor_ref.clone();
        }
        if let Some(limit) = info.max_frame_bytes {
            self.client.set_max_frame_bytes(limit);
        }
        let triggers = info.triggers.clone();
        let svc = SensorService::new(self.client.clone(), info);

        // -- existing triggers, then setup
        let label = self.label.clone();
        let setup = async {
            for raw in triggers {
                match serde_json::from_value::<Trigger>(raw) {
                    Ok(t) => {
                        let r = t.trigger_ref.clone();
                        if let Err(e) = sensor.add_trigger(&svc, t).await {
                            tracing::error!(target: "sdk", "{label} add_trigger({r}) failed: {e}");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target: "sdk", "ignoring a malformed trigger from init: {e}")
                    }
                }
            }
            sensor.setup(&svc).await
        };
        match self.drive(sensor, &svc, setup).await {
            Driven::Done(Ok(())) => {}
            Driven::Done(Err(e)) => {
                self.fatal(&format!("{} setup() failed: {e}", self.label));
                return self.finish(sensor, &svc, Outcome::Failed).await;
            }
            Driven::Stop(reason) => return self.stop(sensor, &svc, reason).await,
            Driven::Closed(why) => return self.closed(sensor, &svc, &why).await,
        }
        let _ = self.client.notify("ready", &Value::Null);

        // -- run
        match self.drive(sensor, &svc, sensor.run(&svc)).await {
            Driven::Done(Ok(())) => self.finish(sensor, &svc, Outcome::Finished).await,
            Driven::Done(Err(e)) => {
                self.fatal(&format!("{} run() failed: {e}", self.label));
                self.finish(sensor, &svc, Outcome::Failed).await
            }
            Driven::Stop(reason) => self.stop(sensor, &svc, reason).await,
            Driven::Closed(why) => self.closed(sensor, &svc, &why).await,
        }
    }

    /// `Ok(None)`: asked to stop before init was answered.
    async fn init(&mut self) -> Result<Option<SensorInfo>, Error> {
        let mut stop = self.client.stop_watch();
        let params = serde_json::json!({});
        let call = self.client.call("init", &params);
        let result = tokio::select! {
            r = tokio::time::timeout(INIT_TIMEOUT, call) => match r {
                Ok(r) => r,
                Err(_) => return Err(Error::Timeout("init".into())),
            },
            _ = stop.wait_for(Option::is_some) => return Ok(None),
        };
        match result {
            Ok(v) => serde_json::from_value::<SensorInfo>(v)
                .map(Some)
                .map_err(|e| Error::Protocol {
                    method: "init".into(),
                    detail: e.to_string(),
                }),
            Err(e) if e.code() == Some(protocol::codes::METHOD_NOT_FOUND) => {
                // An older container: take what the environment says.
                let env = |k: &str| std::env::var(k).unwrap_or_default();
                eprintln!("{}: the container does not implement init; using the environment, an empty config and no triggers", self.label);
                Ok(Some(SensorInfo {
                    sensor_ref: env("SENSOR_REF"),
                    pack: env("SENSOR_PACK"),
                    class_name: env("SENSOR_CLASS_NAME"),
                    config: Value::Object(Default::default()),
                    ..SensorInfo::default()
                }))
            }
            Err(e) => Err(e),
        }
    }

    /// Poll `fut` to completion while delivering trigger notifications (one
    /// callback at a time, concurrently with `fut`), unless a stop request
    /// or the end of the pipe comes first.
    async fn drive<S: Sensor, F: Future<Output = Result<(), BoxError>> + Send>(
        &mut self,
        sensor: &S,
        svc: &SensorService,
        fut: F,
    ) -> Driven<Result<(), BoxError>> {
        let mut main = CatchUnwind(Box::pin(fut));
        let mut callback: Option<CatchUnwind<BoxedCallback<'_>>> = None;
        let mut callback_label = String::new();
        let mut stop = self.client.stop_watch();
        loop {
            tokio::select! {
                biased;
                r = stop.wait_for(Option::is_some) => {
                    let reason = r.ok().and_then(|r| r.clone()).unwrap_or(StopReason::Signal("stop"));
                    return Driven::Stop(reason);
                }
                r = &mut main => return Driven::Done(r.unwrap_or_else(Err)),
                r = async { match callback.as_mut() { Some(c) => c.await, None => std::future::pending().await } }, if callback.is_some() => {
                    callback = None;
                    match r {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) | Err(e) => tracing::error!(target: "sdk", "{} {callback_label} failed: {e}", self.label),
                    }
                }
                ev = self.events.recv(), if callback.is_none() => match ev {
                    Some(Event::Trigger(change, trigger)) => {
                        callback_label = format!("{change:?}_trigger({})", trigger.trigger_ref).to_lowercase();
                        let fut: BoxedCallback<'_> = match change {
                            TriggerChange::Add => Box::pin(sensor.add_trigger(svc, trigger)),
                            TriggerChange::Update => Box::pin(sensor.update_trigger(svc, trigger)),
                            TriggerChange::Remove => Box::pin(sensor.remove_trigger(svc, trigger)),
                        };
                        callback = Some(CatchUnwind(fut));
                    }
                    Some(Event::Closed(why)) => return Driven::Closed(why),
                    None => return Driven::Closed("the reader stopped".into()),
                },
            }
        }
    }

    /// A stop request: drop the sensor's future (already done), `cleanup`,
    /// wait for acks, all within the stop timeout.
    async fn stop<S: Sensor>(
        &mut self,
        sensor: &S,
        svc: &SensorService,
        reason: StopReason,
    ) -> Outcome {
        tracing::info!(target: "sdk", "stopping ({reason})");
        let deadline = Instant::now() + self.options.stop_timeout;
        let cleanup_deadline = deadline
            .checked_sub(Duration::from_millis(300))
            .unwrap_or(deadline)
            .max(Instant::now());
        let mut outcome = Outcome::Stopped;
        if !self.cleanup(sensor, svc, cleanup_deadline).await {
            outcome = Outcome::Failed;
        }
        self.wait_acks(svc, deadline).await;
        outcome
    }

    /// `run` returned or `setup`/`run` failed: `cleanup`, then wait for
    /// acks (bounded by the ack timeout).
    async fn finish<S: Sensor>(
        &mut self,
        sensor: &S,
        svc: &SensorService,
        outcome: Outcome,
    ) -> Outcome {
        let deadline = Instant::now() + self.options.ack_timeout;
        let mut outcome = outcome;
        if !self.cleanup(sensor, svc, deadline).await {
            outcome = Outcome::Failed;
        }
        // A stop request while cleaning up shortens the wait.
        let stop_deadline = {
            let stopping = self.client.stop_watch().borrow().is_some();
            stopping.then(|| Instant::now() + self.options.stop_timeout)
        };
        self.wait_acks(svc, stop_deadline.map_or(deadline, |d| d.min(deadline)))
            .await;
        outcome
    }

    /// The container is gone: `cleanup` and leave.
    async fn closed<S: Sensor>(&mut self, sensor: &S, svc: &SensorService, why: &str) -> Outcome {
        eprintln!(
            "{}: the sensor pipe was closed ({why}); exiting",
            self.label
        );
        let deadline = Instant::now() + self.options.stop_timeout;
        self.cleanup(sensor, svc, deadline).await;
        Outcome::ConnectionClosed
    }

    /// Run `cleanup` until `deadline`; false if it failed or timed out.
    async fn cleanup<S: Sensor>(&self, sensor: &S, svc: &SensorService, deadline: Instant) -> bool {
        let fut = CatchUnwind(Box::pin(sensor.cleanup(svc)));
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(Ok(Ok(()))) => true,
            Ok(Ok(Err(e))) | Ok(Err(e)) => {
                self.fatal(&format!("{} cleanup() failed: {e}", self.label));
                false
            }
            Err(_) => {
                self.fatal(&format!("{} cleanup() did not return in time", self.label));
                false
            }
        }
    }

    async fn wait_acks(&self, svc: &SensorService, deadline: Instant) {
        if svc.is_closed() {
            return;
        }
        if tokio::time::timeout_at(deadline, svc.flush())
            .await
            .is_err()
        {
            eprintln!(
                "{}: {} dispatch(es) were still unacknowledged at exit",
                self.label,
                svc.stats().in_flight
            );
        }
    }

    /// A fatal error: one line on stderr (the container keeps the last
    /// stderr lines of a failing sensor) and one in the container log.
    fn fatal(&self, message: &str) {
        eprintln!("{message}");
        let _ = self.client.log("error", message, Some("sdk"));
    }
}

/// A trigger callback's future.
type BoxedCallback<'a> = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'a>>;

/// Turns a panic while polling the inner future into an error.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(panic_message(payload).into())),
        }
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    format!("panicked: {text}")
}
