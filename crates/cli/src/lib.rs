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
pub mod reaper;
pub mod reload;
pub mod sensorctl;
pub mod sink_cmd;
pub mod sink_config;
pub mod sink_ops;
pub mod st2_cmd;
pub mod st2_config;
pub mod st2_datastore;
pub mod st2_mirror;
pub mod venv;

/// Files this process creates are owner-only (the data directory holds
/// every payload and datastore value); sensors get 022 back (see
/// `container::spawn`).
pub fn private_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}
