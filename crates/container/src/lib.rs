//! The sensor container: runs every sensor as a child process, serves its
//! `SensorService` over a JSON-RPC pipe, and stores what it dispatches.
//!
//! Data flow, one module each:
//! - [`spawn`]: socketpair + child process (fd 3, own process group,
//!   parent-death signal, captured stdout/stderr);
//! - [`service`]: the per-sensor RPC loop (strictly ordered, replies held
//!   until earlier dispatches are durable);
//! - [`dispatcher`] + [`catalog`]: resolve the trigger, validate the payload,
//!   append to the trigger-instance log (group commit);
//! - [`kv`]: datastore operations and their internal triggers, and the
//!   expiry sweeper;
//! - [`supervisor`]: keeps each sensor running (backoff, states, stop);
//! - [`runtime`]: the embedded Python `st2reactor` shim and wrapper.

pub mod catalog;
pub mod dispatcher;
pub mod internal;
pub mod kv;
pub mod runtime;
pub mod service;
pub mod settings;
pub mod spawn;
pub mod status;
pub mod supervisor;

pub use settings::{ContainerSettings, RestartPolicy, SensorPolicy};
pub use supervisor::{ApplyReport, Container, ContainerError, Selection};
