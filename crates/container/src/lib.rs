//! The sensor container: runs every sensor as a child process, serves its
//! `SensorService` over a JSON-RPC pipe, and stores what it dispatches.
//!
//! Data flow, one module each:
//! - [`spawn`]: socketpair + child process (fd 3, own process group,
//!   parent-death signal, captured stdout/stderr);
//! - [`attach`]: the per-sensor socket where a sensor's other processes
//!   (children, re-executed images) join its service;
//! - [`service`]: the per-sensor RPC loop (strictly ordered, replies held
//!   until earlier dispatches are durable);
//! - [`dispatcher`] + [`catalog`]: resolve the trigger, validate the payload,
//!   append to the trigger-instance log (group commit);
//! - [`kv`]: datastore operations and their internal triggers, and the
//!   expiry sweeper;
//! - [`supervisor`]: keeps each sensor running (backoff, states, stop);
//! - [`config_template`]: StackStorm's `{{ st2kv.system.x }}` config
//!   templates, rendered at each sensor start;
//! - [`runtime`]: the embedded Python `st2reactor` shim and wrapper;
//! - [`ratelimit`]: bounded warnings about what a sensor sends, escaped
//!   sensor log text;
//! - [`sensor_check`]: Python entry points parsed (never run) at reload.

pub mod attach;
pub mod catalog;
pub mod cgroup;
pub mod config_template;
pub mod dispatcher;
pub mod internal;
pub mod kv;
pub mod ratelimit;
pub mod remote_kv;
pub mod runtime;
pub mod sensor_check;
pub mod service;
pub mod settings;
pub mod spawn;
pub mod status;
pub mod supervisor;

pub use cgroup::{CgroupLimits, RunCgroup};
pub use settings::{ContainerSettings, Limits, RestartPolicy, RunAs, SensorPolicy};
pub use supervisor::{ApplyReport, Container, ContainerError, Selection};
