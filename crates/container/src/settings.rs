//! Container settings. The `cli` crate fills them from
//! `conf/sensorcontainer.yaml`, env vars and flags (documented there).

use std::path::PathBuf;
use std::time::Duration;

/// How a crashed sensor is restarted.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    /// Delay before the first restart.
    pub initial_delay: Duration,
    /// Each consecutive failure multiplies the delay by this.
    pub multiplier: f64,
    /// The delay never exceeds this.
    pub max_delay: Duration,
    /// A run at least this long resets the consecutive-failure count.
    pub healthy_uptime: Duration,
    /// Give up (state `failed`) after this many consecutive restarts; 0 = never.
    pub max_restarts: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(60),
            healthy_uptime: Duration::from_secs(10),
            max_restarts: 0,
        }
    }
}

impl RestartPolicy {
    /// The delay before restart number `n` (1-based) of a failure streak.
    pub fn delay(&self, n: u32) -> Duration {
        let factor = self
            .multiplier
            .max(1.0)
            .powi(n.saturating_sub(1).min(64) as i32);
        let secs = (self.initial_delay.as_secs_f64() * factor).min(self.max_delay.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }
}

/// The user a sensor runs as (`run_as: USER[:GROUP]`), resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// As written.
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Resource limits of a sensor process (`limits:`), applied with
/// `setrlimit` before it runs; `None` leaves the container's own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// RLIMIT_NOFILE.
    pub nofile: Option<u64>,
    /// RLIMIT_NPROC (processes of the sensor's user).
    pub nproc: Option<u64>,
    /// RLIMIT_AS, bytes.
    pub as_bytes: Option<u64>,
    /// RLIMIT_CPU, seconds.
    pub cpu_seconds: Option<u64>,
    /// Limits set through the sensor's cgroup (memory_max, cpu_max,
    /// pids_max): they need the cgroup v2 controllers (see `cgroup`).
    pub cgroup: crate::cgroup::CgroupLimits,
}

/// How one sensor is restarted, stopped and confined.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorPolicy {
    pub restart: RestartPolicy,
    /// Time between shutdown/SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// Drop to this user (the container must be root).
    pub run_as: Option<RunAs>,
    /// Resource limits.
    pub limits: Limits,
}

/// Everything the container needs to run sensors.
#[derive(Debug, Clone)]
pub struct ContainerSettings {
    /// The data directory (database, runtime files).
    pub data_dir: PathBuf,
    /// The Python interpreter for Python sensors (resolved to its real path once).
    pub python_binary: String,
    /// Stop: time between shutdown/SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// Largest accepted frame on the pipe.
    pub max_frame_bytes: usize,
    /// Restart policy for crashed sensors.
    pub restart: RestartPolicy,
    /// AES-256-GCM key file for datastore secrets (`None`: secrets refused).
    pub encryption_key_path: Option<PathBuf>,
    /// Per-sensor overrides of `restart`, `stop_grace`, `run_as` and
    /// `limits`, by sensor ref.
    pub per_sensor: std::collections::BTreeMap<String, SensorPolicy>,
    /// `sensorcontainer.run_as`: every sensor's user unless overridden.
    pub run_as: Option<RunAs>,
    /// `sensorcontainer.limits`: every sensor's limits unless overridden.
    pub limits: Limits,
    /// This container run's id, given to every sensor process as
    /// `SENSOR_CONTAINER_ID` so the reaper can find them all if the
    /// container dies (see the cli's `reaper`).
    pub instance_id: Option<String>,
    /// This run's cgroup (`cgroup::RunCgroup::create`), when the host
    /// lets us have one: each sensor gets a child cgroup of it.
    pub cgroup_dir: Option<PathBuf>,
    /// Sensors' `kv.*` go here instead of the local datastore
    /// (`st2.datastore: st2`).
    pub remote_datastore: Option<crate::remote_kv::RemoteKv>,
}

impl ContainerSettings {
    /// Defaults for a data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        ContainerSettings {
            data_dir,
            python_binary: "python3".into(),
            stop_grace: Duration::from_secs(5),
            max_frame_bytes: protocol::DEFAULT_MAX_FRAME_BYTES,
            restart: RestartPolicy::default(),
            encryption_key_path: None,
            per_sensor: Default::default(),
            run_as: None,
            limits: Limits::default(),
            instance_id: None,
            cgroup_dir: None,
            remote_datastore: None,
        }
    }

    /// The policy for one sensor: its override, else the global one.
    pub fn policy_for(&self, sensor_ref: &str) -> SensorPolicy {
        self.per_sensor
            .get(sensor_ref)
            .cloned()
            .unwrap_or_else(|| SensorPolicy {
                restart: self.restart.clone(),
                stop_grace: self.stop_grace,
                run_as: self.run_as.clone(),
                limits: self.limits.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RestartPolicy {
            initial_delay: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_millis(500),
            ..Default::default()
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(3), Duration::from_millis(400));
        assert_eq!(p.delay(4), Duration::from_millis(500));
        assert_eq!(p.delay(1000), Duration::from_millis(500));
    }
}
