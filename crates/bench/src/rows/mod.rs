//! The measurements that run the real `sensorcontainer`.

pub mod latency;
pub mod startup;
pub mod throughput;
