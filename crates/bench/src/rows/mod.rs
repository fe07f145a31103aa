//! The measurements of our code: the real `sensorcontainer` (its sensors,
//! its HTTP API and its sinks, `st2` onto a private RabbitMQ node among
//! them; the openstack pack's notification listener off one), and the
//! trigger-instance log in-process.

pub mod fairness;
pub mod latency;
pub mod log;
pub mod openstack;
pub mod rabbit;
pub mod sinks;
pub mod st2;
pub mod startup;
pub mod throughput;
pub mod webhooks;
