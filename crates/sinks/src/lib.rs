//! Delivery out of the trigger-instance log.
//!
//! Every configured sink ([`spec::SinkSpec`]) runs as its own task
//! ([`runner`]): read a batch from the log after its durable cursor
//! (`sink.<name>`), keep what its filters select, deliver it to its
//! destination, and move the cursor only once the destination confirmed.
//! So delivery is at-least-once and in log order per sink; a failing
//! instance holds its sink back (head of line) until it is delivered or
//! dead-lettered, and a slow or dead sink never slows a source: the log's
//! retention is the only link between them.
//!
//! Destinations, one module each: [`file`] (JSON Lines), [`http`] (JSON
//! or StackStorm's webhook), [`nats`] (JetStream with `Nats-Msg-Id`).
//! [`Sinks`] starts, reloads, pauses and lists them; [`status`] derives
//! StackStorm's instance status (`pending`, `processing`, `processed`,
//! `processing_failed`) from cursors and dead letters without rewriting a
//! log record; [`metrics`] exports their counters to `/metrics`.

pub mod destination;
pub mod file;
pub mod filter;
pub mod http;
mod manager;
pub mod metrics;
pub mod nats;
pub mod retry;
mod runner;
mod shared;
pub mod spec;
pub mod st2;
pub mod status;

pub use filter::Selector;
pub use manager::{check_specs, offline_resolver, offline_views, ApplyReport, Sinks};
pub use shared::{SinkState as RunState, SinkView};
pub use spec::{RetryPolicy, SinkKind, SinkSpec, Start};
pub use status::Resolver;

/// What can go wrong managing sinks.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A sink's settings are unusable (the message names the key).
    #[error("{0}")]
    Config(String),
    /// A sink of that name is not configured.
    #[error("sink '{0}' is not configured (see `sensorctl sink list`)")]
    NotFound(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] eventlog::LogError),
}
