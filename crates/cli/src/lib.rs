//! Shared code of the `sensorcontainer` and `sensorctl` binaries: global
//! options and configuration, output formatting, and the commands.

pub mod config;
pub mod control;
pub mod embedded;
pub mod instances;
pub mod key;
pub mod logging;
pub mod openstack_cmd;
pub mod openstack_ops;
pub mod ops;
pub mod output;
pub mod reload;
pub mod sensorctl;
pub mod sink_cmd;
pub mod sink_config;
pub mod sink_ops;
pub mod venv;
