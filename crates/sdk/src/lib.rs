//! Write sensorcontainer sensors in Rust.
//!
//! A sensor is a child process of `sensorcontainer` that speaks JSON-RPC 2.0
//! over the Unix socket on fd 3 (`crates/protocol/PROTOCOL.md`). This crate
//! implements that side: the [`Sensor`] and [`PollingSensor`] traits
//! (StackStorm's), a [`SensorService`] client (pipelined dispatch, the
//! datastore, logging), and [`run`] / [`run_polling`], which drive the whole
//! lifecycle.
//!
//! ```no_run
//! use sdk::{BoxError, PollingSensor, SensorService};
//! use serde_json::json;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! #[derive(Default)]
//! struct Counter {
//!     last: AtomicU64,
//! }
//!
//! impl PollingSensor for Counter {
//!     async fn setup(&self, svc: &SensorService) -> Result<(), BoxError> {
//!         // `my_pack.Counter:last`, the checkpoint of the previous run.
//!         let last = svc.get_value("last", true, false).await?;
//!         self.last.store(last.map_or(Ok(0), |v| v.parse())?, Ordering::Relaxed);
//!         Ok(())
//!     }
//!
//!     async fn poll(&self, svc: &SensorService) -> Result<(), BoxError> {
//!         let n = self.last.fetch_add(1, Ordering::Relaxed) + 1;
//!         svc.dispatch("my_pack.event", json!({ "n": n })).await?;
//!         // Answered only once the dispatch above is durable.
//!         svc.set_value("last", n, None, true, false).await?;
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     sdk::run_polling(Counter::default())
//! }
//! ```
//!
//! The sensor's metadata declares it with `runner_type: exec` and an
//! executable `entry_point` (see `PROTOCOL.md`, "Declaring a non-Python
//! sensor").
//!
//! # Delivery
//!
//! [`SensorService::dispatch`] returns once the request is queued; its
//! [`DispatchHandle`] resolves when the container has made the trigger
//! instance durable. Up to [`Options::window`] dispatches (1024) are in
//! flight; [`SensorService::flush`] waits for all of them. Because the
//! container answers every later request only after the sensor's earlier
//! dispatches are durable, a `set_value` after a series of dispatches is a
//! safe checkpoint even without awaiting their handles.
//!
//! # Logging
//!
//! [`run`] installs a small `tracing` subscriber that forwards events (level
//! `SENSOR_LOG_LEVEL`, default info) to the container log as `log`
//! notifications, tagged with the sensor ref. stdout and stderr are
//! captured by the container too.

#![warn(missing_docs)]

mod client;
mod error;
mod logging;
mod runner;
mod sensor;
mod service;
mod types;

#[cfg(test)]
mod tests;

pub use client::StopReason;
pub use error::{BoxError, Error};
pub use logging::parse_level;
pub use runner::{run, run_polling, run_with, serve, serve_on, Options, Outcome, DEFAULT_WINDOW};
pub use sensor::{Polling, PollingSensor, Sensor, DEFAULT_POLL_INTERVAL};
pub use service::{DispatchHandle, SensorService, DATASTORE_NAME_SEPARATOR};
pub use types::{DispatchStats, KeyValuePair, SensorInfo, Trigger};

/// The wire contract this SDK implements (message types, error codes).
pub use protocol;
