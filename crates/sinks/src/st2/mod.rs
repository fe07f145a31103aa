//! StackStorm's own bus: trigger instances onto RabbitMQ exchange
//! `<prefix>.trigger_instances_dispatch`, routing key `trigger_instance`,
//! as st2's rules engine reads them.
//!
//! [`message`] is the pickled body, [`publisher`] the confirmed AMQP
//! publisher (the `type: st2` sink), [`conf`] reads the broker settings
//! from an st2.conf's `[messaging]`, [`api`] reads st2's HTTP API and
//! RabbitMQ's management API for `sensorctl st2 check`, [`watch`] takes
//! st2's trigger change messages as hints to read its triggers again.

pub mod api;
pub mod conf;
pub mod message;
pub mod publisher;
pub mod watch;

pub use publisher::St2Sink;
