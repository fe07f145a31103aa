//! The sensor traits, StackStorm's `Sensor` and `PollingSensor`.

use std::future::Future;
use std::time::Duration;

use crate::error::BoxError;
use crate::service::SensorService;
use crate::types::Trigger;

/// StackStorm's default poll interval (`PollingSensor(poll_interval=5)`),
/// used when the metadata sets none.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// A sensor: StackStorm's `st2reactor.sensor.base.Sensor`.
///
/// Implement the methods with `async fn`; every one gets the
/// [`SensorService`]. The lifecycle ([`run`](crate::run)): `init`, then
/// [`add_trigger`](Sensor::add_trigger) for each existing trigger,
/// [`setup`](Sensor::setup), `ready`, [`run`](Sensor::run). Trigger
/// notifications from the container are delivered while `setup` and `run`
/// execute (concurrently with them, one callback at a time), so keep state
/// the callbacks share behind a lock.
///
/// - `run` returning `Ok` ends the sensor: `cleanup`, exit 0 (the container
///   does not restart it). An `Err` (or a panic) from `setup` or `run` is
///   logged, then `cleanup`, exit 1 (the container restarts it).
/// - On a stop request (`shutdown` from the container, SIGTERM, SIGINT) the
///   `setup`/`run` future is dropped at its current `.await`, `cleanup` runs,
///   unacknowledged dispatches are awaited (bounded) and the process exits 0.
///
/// ```no_run
/// use sdk::{BoxError, Sensor, SensorService};
/// use serde_json::json;
///
/// struct Ticker;
///
/// impl Sensor for Ticker {
///     async fn run(&self, svc: &SensorService) -> Result<(), BoxError> {
///         for n in 1.. {
///             svc.dispatch("examples.tick", json!({ "n": n })).await?;
///             tokio::time::sleep(std::time::Duration::from_secs(1)).await;
///         }
///         Ok(())
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
///     sdk::run(Ticker)
/// }
/// ```
pub trait Sensor: Send + Sync + 'static {
    /// One-time set-up, before `ready` is sent and `run` starts. Default:
    /// nothing.
    fn setup(&self, svc: &SensorService) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = svc;
        async { Ok(()) }
    }

    /// The sensor's main loop: watch something and dispatch. Returning `Ok`
    /// means "done" (exit 0, not restarted).
    fn run(&self, svc: &SensorService) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Release resources; called once on every exit path that ran `setup`
    /// (and on a stop during `setup`). Default: nothing.
    fn cleanup(&self, svc: &SensorService) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = svc;
        async { Ok(()) }
    }

    /// A trigger of one of the sensor's types exists: called for each
    /// trigger `init` returns (before `setup`), then for each `trigger.add`.
    /// An error is logged. Default: nothing.
    fn add_trigger(
        &self,
        svc: &SensorService,
        trigger: Trigger,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (svc, trigger);
        async { Ok(()) }
    }

    /// A trigger's parameters changed (`trigger.update`). Default: nothing.
    fn update_trigger(
        &self,
        svc: &SensorService,
        trigger: Trigger,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (svc, trigger);
        async { Ok(()) }
    }

    /// A trigger was deleted (`trigger.remove`). Default: nothing.
    fn remove_trigger(
        &self,
        svc: &SensorService,
        trigger: Trigger,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (svc, trigger);
        async { Ok(()) }
    }
}

/// A polling sensor: StackStorm's `PollingSensor`. Run it with
/// [`run_polling`](crate::run_polling).
///
/// `poll` is called at once, then again each time the poll interval has
/// passed after the previous `poll` returned. The interval is the
/// metadata's `poll_interval` (else [`DEFAULT_POLL_INTERVAL`]); change it
/// with [`SensorService::set_poll_interval`], effective from the next sleep.
/// An error from `poll` ends the sensor (exit 1, restarted with backoff),
/// as an exception in StackStorm's `poll()` does.
pub trait PollingSensor: Send + Sync + 'static {
    /// One-time set-up. Default: nothing.
    fn setup(&self, svc: &SensorService) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = svc;
        async { Ok(()) }
    }

    /// One poll: look, dispatch what is new, store a checkpoint.
    fn poll(&self, svc: &SensorService) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Release resources. Default: nothing.
    fn cleanup(&self, svc: &SensorService) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = svc;
        async { Ok(()) }
    }

    /// See [`Sensor::add_trigger`]. Default: nothing.
    fn add_trigger(
        &self,
        svc: &SensorService,
        trigger: Trigger,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (svc, trigger);
        async { Ok(()) }
    }

    /// See [`Sensor::update_trigger`]. Default: nothing.
    fn update_trigger(
        &self,
        svc: &SensorService,
        trigger: Trigger,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (svc, trigger);
        async { Ok(()) }
    }

    /// See [`Sensor::remove_trigger`]. Default: nothing.
    fn remove_trigger(
        &self,
        svc: &SensorService,
        trigger: Trigger,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (svc, trigger);
        async { Ok(()) }
    }
}

/// Adapts a [`PollingSensor`] to [`Sensor`]: its `run` is the poll loop.
/// [`run_polling`](crate::run_polling) wraps the sensor in it.
#[derive(Debug, Default, Clone)]
pub struct Polling<S>(pub S);

impl<S: PollingSensor> Sensor for Polling<S> {
    async fn setup(&self, svc: &SensorService) -> Result<(), BoxError> {
        if svc.get_poll_interval().is_none() {
            svc.set_poll_interval(DEFAULT_POLL_INTERVAL);
        }
        self.0.setup(svc).await
    }

    async fn run(&self, svc: &SensorService) -> Result<(), BoxError> {
        loop {
            self.0.poll(svc).await?;
            let interval = svc.get_poll_interval().unwrap_or(DEFAULT_POLL_INTERVAL);
            tokio::time::sleep(interval).await;
        }
    }

    async fn cleanup(&self, svc: &SensorService) -> Result<(), BoxError> {
        self.0.cleanup(svc).await
    }

    async fn add_trigger(&self, svc: &SensorService, trigger: Trigger) -> Result<(), BoxError> {
        self.0.add_trigger(svc, trigger).await
    }

    async fn update_trigger(&self, svc: &SensorService, trigger: Trigger) -> Result<(), BoxError> {
        self.0.update_trigger(svc, trigger).await
    }

    async fn remove_trigger(&self, svc: &SensorService, trigger: Trigger) -> Result<(), BoxError> {
        self.0.remove_trigger(svc, trigger).await
    }
}
