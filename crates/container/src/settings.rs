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

/// How one sensor is restarted and stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorPolicy {
    pub restart: RestartPolicy,
    /// Time between shutdown/SIGTERM and SIGKILL.
    pub stop_grace: Duration,
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
    /// Per-sensor overrides of `restart` and `stop_grace`, by sensor ref.
    pub per_sensor: std::collections::BTreeMap<String, SensorPolicy>,
    /// This container run's id, given to every sensor process as
    /// `SENSOR_CONTAINER_ID` so the reaper can find them all if the
    /// container dies (see the cli's `reaper`).
    pub instance_id: Option<String>,
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
            instance_id: None,
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
