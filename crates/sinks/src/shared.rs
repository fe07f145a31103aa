//! What a running sink shares with the rest of the container: counters,
//! its state, the seqs it is retrying or gave up on, and a wake-up for
//! operator commands (pause, resume, retry, stop).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use serde::Serialize;
use tokio::sync::Notify;

use crate::filter::Selector;
use crate::spec::SinkSpec;

/// What a sink is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkState {
    /// Delivering (or caught up).
    Ok,
    /// Holding back on an instance the destination refused for now.
    Retrying,
    /// Paused by `sensorctl sink pause`.
    Paused,
    /// Configured, but no container runs it now.
    Stopped,
}

/// Mutable run state.
#[derive(Debug)]
pub(crate) struct Run {
    pub state: SinkState,
    /// Seqs (first, last) of the instances being retried.
    pub retrying: Option<(u64, u64)>,
    pub last_error: Option<String>,
    /// Dead-lettered seqs (not requeued).
    pub dead: BTreeSet<u64>,
    /// Dead letters queued for re-delivery.
    pub requeued: BTreeSet<u64>,
    pub paused: bool,
}

/// One sink's shared state.
#[derive(Debug)]
pub struct Shared {
    /// Sink name.
    pub name: String,
    /// `file`, `http` or `nats`.
    pub type_name: &'static str,
    /// Its filters.
    pub selector: Selector,
    pub(crate) cursor: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    /// Seconds from append to confirmed delivery.
    pub(crate) latency: Histogram,
    pub(crate) run: Mutex<Run>,
    /// Woken by operator commands and stop.
    pub(crate) wake: Notify,
}

/// Delivery latency buckets: 100 µs … ~26 s.
pub(crate) fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

impl Shared {
    pub(crate) fn new(spec: &SinkSpec, cursor: u64, paused: bool) -> Shared {
        Shared {
            name: spec.name.clone(),
            type_name: spec.kind.type_name(),
            selector: spec.selector.clone(),
            cursor: AtomicU64::new(cursor),
            delivered: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            latency: latency_histogram(),
            run: Mutex::new(Run {
                state: if paused {
                    SinkState::Paused
                } else {
                    SinkState::Ok
                },
                retrying: None,
                last_error: None,
                dead: BTreeSet::new(),
                requeued: BTreeSet::new(),
                paused,
            }),
            wake: Notify::new(),
        }
    }

    pub(crate) fn run(&self) -> MutexGuard<'_, Run> {
        // Plain values: consistent even if a holder panicked.
        self.run.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last seq this sink finished.
    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::Relaxed)
    }

    /// A view for `sink list`.
    pub fn view(&self, last_seq: u64) -> SinkView {
        let run = self.run();
        let cursor = self.cursor();
        SinkView {
            name: self.name.clone(),
            type_name: self.type_name.to_string(),
            state: run.state,
            cursor,
            lag: last_seq.saturating_sub(cursor),
            delivered: self.delivered.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            dead_letters: (run.dead.len() + run.requeued.len()) as u64,
            last_error: run.last_error.clone(),
            triggers: self.selector.triggers(),
            sensors: self.selector.sensors(),
        }
    }
}

/// One line of `sensorctl sink list`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct SinkView {
    /// Sink name.
    pub name: String,
    /// `file`, `http` or `nats`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// `ok`, `retrying`, `paused` or `stopped`.
    pub state: SinkState,
    /// Last seq it finished.
    pub cursor: u64,
    /// Log records after its cursor.
    pub lag: u64,
    /// Instances delivered since the container started.
    pub delivered: u64,
    /// Retried attempts since the container started.
    pub retries: u64,
    /// Dead letters it holds.
    pub dead_letters: u64,
    /// The newest delivery error.
    pub last_error: Option<String>,
    /// Trigger filters.
    pub triggers: Vec<String>,
    /// Sensor filters.
    pub sensors: Vec<String>,
}
