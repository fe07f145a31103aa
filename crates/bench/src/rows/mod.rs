//! The measurements of our code: the real `sensorcontainer` (its sensors,
//! its HTTP API and its sinks), and the trigger-instance log in-process.

pub mod fairness;
pub mod latency;
pub mod log;
pub mod sinks;
pub mod startup;
pub mod throughput;
pub mod webhooks;
