//! `examples.RustSensor`: a polling sensor written with the Rust SDK
//! (`crates/sdk`).
//!
//! Every poll dispatches `rust_sensor.events_per_poll` (pack config,
//! default 3) `examples.rust_event` trigger instances numbered on from the
//! previous run, then stores the last number in the datastore
//! (`examples.RustSensor:count`). That is the checkpoint pattern: the
//! container answers `set_value` only once the dispatches before it are
//! durable, so a restart continues the count without losing an event.
//!
//! Built by `cargo build -p examples-rust-sensor`; the container runs it
//! through `../sensors/rust_sensor.sh` (`runner_type: exec`).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use sdk::{BoxError, PollingSensor, SensorService, Trigger};
use serde::Serialize;

/// The trigger type this sensor declares in `rust_sensor.yaml`.
const TRIGGER: &str = "examples.rust_event";
/// Datastore key (local: stored as `examples.RustSensor:count`).
const COUNT_KEY: &str = "count";

/// The payload of `examples.rust_event` (see its `payload_schema`).
#[derive(Serialize)]
struct RustEvent<'a> {
    count: u64,
    greeting: &'a str,
    language: &'static str,
}

/// The sensor's state: the number of the last event dispatched.
#[derive(Default)]
struct RustSensor {
    count: AtomicU64,
}

impl PollingSensor for RustSensor {
    async fn setup(&self, svc: &SensorService) -> Result<(), BoxError> {
        // Resume from the checkpoint of the previous run, if any.
        let count = match svc.get_value(COUNT_KEY, true, false).await? {
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|e| format!("datastore key {COUNT_KEY} holds {v:?}, not a count: {e}"))?,
            None => 0,
        };
        self.count.store(count, Ordering::SeqCst);
        tracing::info!(
            "RustSensor resuming after count {count} (poll interval {:?})",
            svc.get_poll_interval()
                .unwrap_or(sdk::DEFAULT_POLL_INTERVAL)
        );
        Ok(())
    }

    async fn poll(&self, svc: &SensorService) -> Result<(), BoxError> {
        let config = svc.config();
        let per_poll = config["rust_sensor"]["events_per_poll"]
            .as_u64()
            .unwrap_or(3);
        let greeting = config["greeting"].as_str().unwrap_or("Hello from Rust");
        let mut count = self.count.load(Ordering::SeqCst);
        // Pipelined: each dispatch returns once queued; the handles say
        // whether the container accepted the event.
        let mut acks = Vec::new();
        for _ in 0..per_poll {
            count += 1;
            let event = RustEvent {
                count,
                greeting,
                language: "rust",
            };
            acks.push(svc.dispatch(TRIGGER, &event).await?);
        }
        for ack in acks {
            ack.ack().await?;
        }
        // The checkpoint: stored only after the events above are durable.
        svc.set_value(COUNT_KEY, count, None, true, false).await?;
        self.count.store(count, Ordering::SeqCst);
        tracing::debug!("dispatched up to count {count}");
        Ok(())
    }

    async fn cleanup(&self, _svc: &SensorService) -> Result<(), BoxError> {
        tracing::info!(
            "RustSensor stopping at count {}",
            self.count.load(Ordering::SeqCst)
        );
        Ok(())
    }

    async fn add_trigger(&self, _svc: &SensorService, trigger: Trigger) -> Result<(), BoxError> {
        tracing::info!("RustSensor has trigger {}", trigger.trigger_ref);
        Ok(())
    }
}

fn main() -> ExitCode {
    sdk::run_polling(RustSensor::default())
}
