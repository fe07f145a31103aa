//! The measurements of our code: the real `sensorcontainer` (its sensors
//! and its HTTP API), and the trigger-instance log in-process.

pub mod latency;
pub mod log;
pub mod startup;
pub mod throughput;
pub mod webhooks;
