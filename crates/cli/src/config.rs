//! Configuration: `conf/sensorcontainer.yaml`, env vars and flags.
//!
//! Precedence: flag > environment variable > config file > built-in
//! default. Every key is documented in `conf/sensorcontainer.yaml`; the
//! struct fields below mirror it. Relative paths are relative to the
//! current directory (like the defaults), not to the config file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use container::{ContainerSettings, RestartPolicy, SensorPolicy};
use serde::Deserialize;

/// The config file used when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG: &str = "conf/sensorcontainer.yaml";

/// Options shared by both binaries.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalOpts {
    /// Config file [default: conf/sensorcontainer.yaml if present]
    #[arg(
        long,
        global = true,
        env = "SENSORCONTAINER_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Data directory: database and runtime files [default: ./data]
    #[arg(
        long,
        global = true,
        env = "SENSORCONTAINER_DATA_DIR",
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,
    /// Colon-separated pack search path; the first pack with a ref wins [default: ./packs]
    #[arg(
        long,
        global = true,
        env = "SENSORCONTAINER_PACKS_PATH",
        value_name = "PATHS"
    )]
    pub packs_path: Option<String>,
    /// Directory of pack configs, <pack>.yaml [default: ./conf/configs]
    #[arg(
        long,
        global = true,
        env = "SENSORCONTAINER_CONFIGS_DIR",
        value_name = "DIR"
    )]
    pub configs_dir: Option<PathBuf>,
    /// AES-256-GCM key file for datastore secrets [config: keyvalue.encryption_key_path]
    #[arg(
        long,
        global = true,
        env = "SENSORCONTAINER_ENCRYPTION_KEY_PATH",
        value_name = "PATH"
    )]
    pub encryption_key_path: Option<PathBuf>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive [default: info]
    #[arg(
        long,
        global = true,
        env = "SENSORCONTAINER_LOG_LEVEL",
        value_name = "LEVEL"
    )]
    pub log_level: Option<String>,
}

/// The config file, as written. Unknown keys are errors so typos show.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub packs_path: Option<String>,
    pub configs_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    #[serde(default)]
    pub sensorcontainer: SensorContainerSection,
    #[serde(default)]
    pub keyvalue: KeyValueSection,
}

/// The `keyvalue:` section (StackStorm's name for it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValueSection {
    pub encryption_key_path: Option<PathBuf>,
}

/// The `sensorcontainer:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorContainerSection {
    pub python_binary: Option<String>,
    pub stop_grace_seconds: Option<f64>,
    pub max_frame_bytes: Option<usize>,
    #[serde(default)]
    pub restart: RestartSection,
    /// Per-sensor overrides, by sensor ref.
    #[serde(default)]
    pub sensors: std::collections::BTreeMap<String, SensorSection>,
}

/// One entry of `sensorcontainer.sensors:`; unset keys fall back to the
/// global values.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSection {
    pub stop_grace_seconds: Option<f64>,
    #[serde(default)]
    pub restart: RestartSection,
}

/// The `sensorcontainer.restart:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartSection {
    pub initial_delay_seconds: Option<f64>,
    pub multiplier: Option<f64>,
    pub max_delay_seconds: Option<f64>,
    pub healthy_uptime_seconds: Option<f64>,
    pub max_restarts: Option<u32>,
}

/// Resolved settings common to both binaries.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub packs_paths: Vec<PathBuf>,
    pub configs_dir: PathBuf,
    pub log_level: String,
    pub container: ContainerSettings,
}

impl Settings {
    /// Resolve flags/env (already merged by clap) over the config file over defaults.
    pub fn resolve(opts: &GlobalOpts) -> Result<Settings> {
        let file = load_file(opts.config.as_deref())?;
        let data_dir = opts
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let packs_path = opts
            .packs_path
            .clone()
            .or(file.packs_path)
            .unwrap_or_else(|| "./packs".into());
        let packs_paths = packs_path
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        let configs_dir = opts
            .configs_dir
            .clone()
            .or(file.configs_dir)
            .unwrap_or_else(|| PathBuf::from("./conf/configs"));
        let log_level = opts
            .log_level
            .clone()
            .or(file.log_level)
            .unwrap_or_else(|| "info".into());

        let sc = file.sensorcontainer;
        let mut container = ContainerSettings::new(data_dir.clone());
        if let Some(p) = sc.python_binary {
            container.python_binary = p;
        }
        if let Some(s) = sc.stop_grace_seconds {
            container.stop_grace = seconds("sensorcontainer.stop_grace_seconds", s)?;
        }
        if let Some(m) = sc.max_frame_bytes {
            anyhow::ensure!(
                m >= 1024,
                "sensorcontainer.max_frame_bytes: must be at least 1024, got {m}"
            );
            container.max_frame_bytes = m;
        }
        container.restart = restart_policy(
            "sensorcontainer.restart",
            &sc.restart,
            &RestartPolicy::default(),
        )?;
        for (sensor_ref, section) in &sc.sensors {
            let key = format!("sensorcontainer.sensors.{sensor_ref}");
            let restart = restart_policy(
                &format!("{key}.restart"),
                &section.restart,
                &container.restart,
            )?;
            let stop_grace = opt_seconds(
                &format!("{key}.stop_grace_seconds"),
                section.stop_grace_seconds,
            )?
            .unwrap_or(container.stop_grace);
            container.per_sensor.insert(
                sensor_ref.clone(),
                SensorPolicy {
                    restart,
                    stop_grace,
                },
            );
        }
        container.encryption_key_path = opts
            .encryption_key_path
            .clone()
            .or(file.keyvalue.encryption_key_path);
        Ok(Settings {
            data_dir,
            packs_paths,
            configs_dir,
            log_level,
            container,
        })
    }

    /// Options for the content loader.
    pub fn load_options(&self) -> content::LoadOptions {
        content::LoadOptions {
            packs_paths: self.packs_paths.clone(),
            configs_dir: self.configs_dir.clone(),
        }
    }
}

/// A restart section over `base` (the defaults, or the global policy for a
/// per-sensor override). `key` names the section in errors.
fn restart_policy(key: &str, r: &RestartSection, base: &RestartPolicy) -> Result<RestartPolicy> {
    let p = RestartPolicy {
        initial_delay: opt_seconds(
            &format!("{key}.initial_delay_seconds"),
            r.initial_delay_seconds,
        )?
        .unwrap_or(base.initial_delay),
        multiplier: r.multiplier.unwrap_or(base.multiplier),
        max_delay: opt_seconds(&format!("{key}.max_delay_seconds"), r.max_delay_seconds)?
            .unwrap_or(base.max_delay),
        healthy_uptime: opt_seconds(
            &format!("{key}.healthy_uptime_seconds"),
            r.healthy_uptime_seconds,
        )?
        .unwrap_or(base.healthy_uptime),
        max_restarts: r.max_restarts.unwrap_or(base.max_restarts),
    };
    anyhow::ensure!(
        p.multiplier >= 1.0,
        "{key}.multiplier: must be at least 1, got {}",
        p.multiplier
    );
    Ok(p)
}

fn seconds(key: &str, s: f64) -> Result<Duration> {
    anyhow::ensure!(
        s.is_finite() && s >= 0.0,
        "{key}: must be a non-negative number of seconds, got {s}"
    );
    Ok(Duration::from_secs_f64(s))
}

fn opt_seconds(key: &str, s: Option<f64>) -> Result<Option<Duration>> {
    s.map(|s| seconds(key, s)).transpose()
}

fn load_file(explicit: Option<&Path>) -> Result<FileConfig> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = PathBuf::from(DEFAULT_CONFIG);
            if !p.is_file() {
                return Ok(FileConfig::default());
            }
            p
        }
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    let parsed: Option<FileConfig> = serde_yaml::from_str(&text)
        .with_context(|| format!("invalid config file {}", path.display()))?;
    Ok(parsed.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            "data_dir: /from/file\npacks_path: a:b\nsensorcontainer:\n  stop_grace_seconds: 2.5\n  restart:\n    max_restarts: 3\n  sensors:\n    p.S:\n      stop_grace_seconds: 1\n      restart: {multiplier: 3}\n",
        )
        .unwrap();
        let opts = GlobalOpts {
            config: Some(file.clone()),
            data_dir: Some("/from/flag".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&opts).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(s.packs_paths, vec![PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(s.configs_dir, PathBuf::from("./conf/configs"));
        assert_eq!(s.container.stop_grace, Duration::from_millis(2500));
        assert_eq!(s.container.restart.max_restarts, 3);
        assert_eq!(s.container.data_dir, PathBuf::from("/from/flag"));
        let p = s.container.policy_for("p.S");
        assert_eq!(p.stop_grace, Duration::from_secs(1));
        assert_eq!(p.restart.multiplier, 3.0);
        assert_eq!(
            p.restart.max_restarts, 3,
            "unset keys inherit the global policy"
        );
        assert_eq!(
            s.container.policy_for("other.X").stop_grace,
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(&file, "data_dirr: x\n").unwrap();
        let opts = GlobalOpts {
            config: Some(file),
            ..Default::default()
        };
        let err = format!("{:#}", Settings::resolve(&opts).unwrap_err());
        assert!(err.contains("data_dirr"), "{err}");
        assert!(err.contains("c.yaml"), "{err}");
    }
}
