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
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub api: ApiSection,
    /// Where trigger instances are delivered (see [`crate::sink_config`]).
    #[serde(default)]
    pub sinks: Vec<crate::sink_config::SinkSection>,
    /// Masakari notifications (`notifications:`).
    #[serde(default)]
    pub notifications: NotificationsSection,
    /// Pack virtualenvs (`virtualenv:`).
    #[serde(default)]
    pub virtualenv: VirtualenvSection,
    /// Reading pack content (`content:`).
    #[serde(default)]
    pub content: ContentSection,
    /// The StackStorm deployment next to us (`st2:`).
    #[serde(default)]
    pub st2: crate::st2_config::St2Section,
}

/// `content:` — limits on reading pack files.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentSection {
    /// Largest content file (pack.yaml, sensor/trigger YAML, schema, config,
    /// requirements.txt, entry point); bytes or e.g. "4MiB".
    pub max_file_bytes: Option<serde_yaml::Value>,
}

/// `virtualenv:` — how `sensorctl pack setup-virtualenv` (and `reload
/// --register-setup-virtualenvs`) make pack virtualenvs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualenvSection {
    /// `--system-site-packages`, as StackStorm's `virtualenv_opts` (default true).
    pub system_site_packages: Option<bool>,
    /// Requirements installed into every pack venv (default `[six]`, as StackStorm).
    pub always_install: Option<Vec<String>>,
}

/// Resolved `virtualenv:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualenvSettings {
    /// Create venvs with `--system-site-packages`.
    pub system_site_packages: bool,
    /// Requirements installed into every pack venv besides requirements.txt.
    pub always_install: Vec<String>,
}

impl Default for VirtualenvSettings {
    fn default() -> Self {
        VirtualenvSettings {
            system_site_packages: true,
            always_install: vec!["six".into()],
        }
    }
}

/// `api.receivers:` — Senlin receivers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiversSection {
    /// Webhook triggers must carry an HMAC-SHA256 of the body made with
    /// the receiver's secret (default false, as in Senlin).
    pub require_signature: Option<bool>,
}

/// `notifications:` — Masakari notifications (durations: seconds or
/// strings such as "180s", "24h").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsSection {
    /// Duplicate window, against the notifications' `generated_time` (default 180s).
    pub duplicate_detection_interval: Option<serde_yaml::Value>,
    /// Unfinished notifications older than this become `failed` (default 24h).
    pub expired_interval: Option<serde_yaml::Value>,
    /// How often that is checked (default 600s).
    pub check_expired_interval: Option<serde_yaml::Value>,
}

/// `api.tls:` — PEM certificate chain and key for TLS on TCP.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// `api:` — the HTTP front door (see conf/sensorcontainer.yaml).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// "HOST:PORT" or a list of them; empty disables TCP.
    pub listen: Option<serde_yaml::Value>,
    #[serde(default)]
    pub tls: TlsSection,
    pub metrics_auth: Option<bool>,
    pub dedupe_window: Option<serde_yaml::Value>,
    pub dedupe_on_trace_tag: Option<bool>,
    pub read_timeout: Option<serde_yaml::Value>,
    pub max_connections: Option<usize>,
    pub max_body_bytes: Option<serde_yaml::Value>,
    /// Base URL of receivers' `alarm_url` (default: the first TCP address).
    pub public_url: Option<String>,
    #[serde(default)]
    pub receivers: ReceiversSection,
}

/// `log:` — the trigger-instance log (see conf/sensorcontainer.yaml).
/// Sizes are bytes or strings such as "64MiB"; durations are seconds or
/// strings such as "1h", "7d" (checked in [`log_options`], which names the
/// key in its errors).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// Roll the active segment at this size (default 64MiB).
    pub segment_bytes: Option<serde_yaml::Value>,
    /// Roll the active segment when its first record is this old (default 1h).
    pub segment_max_age: Option<serde_yaml::Value>,
    #[serde(default)]
    pub retention: RetentionSection,
}

/// `log.retention:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Delete closed segments whose newest record is older (default 7d).
    pub max_age: Option<serde_yaml::Value>,
    /// Keep the log at most this big (default 10GiB).
    pub max_bytes: Option<serde_yaml::Value>,
    /// `reject` (default) or `drop_oldest`.
    pub on_full: Option<eventlog::OnFull>,
}

const SIZE_UNITS: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("B", 1),
];
const SPAN_UNITS: &[(&str, u64)] = &[("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];

/// A size (`what` = "size") or duration in seconds from a number or a
/// number with a unit; errors name `key`.
fn with_unit(key: &str, v: &serde_yaml::Value, units: &[(&str, u64)], what: &str) -> Result<u64> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    let bad = || anyhow::anyhow!("{key}: expected {what}, got {v:?}");
    let s = v.as_str().ok_or_else(bad)?.trim();
    for (unit, factor) in units {
        if let Some(num) = s.strip_suffix(unit) {
            let n: u64 = num.trim().parse().map_err(|_| bad())?;
            return n.checked_mul(*factor).ok_or_else(bad);
        }
    }
    s.parse().map_err(|_| bad())
}

pub(crate) fn size(key: &str, v: &Option<serde_yaml::Value>) -> Result<Option<u64>> {
    v.as_ref()
        .map(|v| {
            with_unit(
                key,
                v,
                SIZE_UNITS,
                "a size in bytes (a number, or e.g. \"64MiB\", \"10GiB\")",
            )
        })
        .transpose()
}

fn span(key: &str, v: &Option<serde_yaml::Value>) -> Result<Option<Duration>> {
    v.as_ref()
        .map(|v| {
            with_unit(
                key,
                v,
                SPAN_UNITS,
                "a duration (seconds, or e.g. \"30s\", \"1h\", \"7d\")",
            )
            .map(Duration::from_secs)
        })
        .transpose()
}

/// A duration with millisecond precision: seconds (a number, fractions
/// allowed) or a string such as "250ms", "30s", "5m", "1h", "7d".
pub(crate) fn duration(key: &str, v: &Option<serde_yaml::Value>) -> Result<Option<Duration>> {
    const UNITS: &[(&str, f64)] = &[
        ("ms", 0.001),
        ("d", 86_400.0),
        ("h", 3_600.0),
        ("m", 60.0),
        ("s", 1.0),
    ];
    let Some(v) = v else { return Ok(None) };
    let bad = || {
        anyhow::anyhow!(
            "{key}: expected a duration (seconds, or e.g. \"250ms\", \"30s\", \"5m\"), got {v:?}"
        )
    };
    let secs = match v.as_f64() {
        Some(n) => n,
        None => {
            let s = v.as_str().ok_or_else(bad)?.trim();
            let (num, factor) = UNITS
                .iter()
                .find_map(|(u, f)| s.strip_suffix(u).map(|n| (n, *f)))
                .unwrap_or((s, 1.0));
            num.trim().parse::<f64>().map_err(|_| bad())? * factor
        }
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(bad());
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

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
    /// `USER[:GROUP]` every sensor runs as (the container must be root).
    pub run_as: Option<String>,
    #[serde(default)]
    pub limits: LimitsSection,
    /// Per-sensor overrides, by sensor ref.
    #[serde(default)]
    pub sensors: std::collections::BTreeMap<String, SensorSection>,
}

/// `limits:` — resource limits of a sensor process.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub nofile: Option<u64>,
    pub nproc: Option<u64>,
    /// Address space: bytes or e.g. "2GiB".
    pub as_bytes: Option<serde_yaml::Value>,
    pub cpu_seconds: Option<u64>,
    /// cgroup v2 `memory.max` of the sensor and its children: bytes or e.g. "512MiB".
    pub memory_max: Option<serde_yaml::Value>,
    /// cgroup v2 `cpu.max` as CPUs (0.5 = half of one).
    pub cpu_max: Option<f64>,
    /// cgroup v2 `pids.max`: processes and threads of the sensor together.
    pub pids_max: Option<u64>,
}

/// One entry of `sensorcontainer.sensors:`; unset keys fall back to the
/// global values.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSection {
    pub stop_grace_seconds: Option<f64>,
    #[serde(default)]
    pub restart: RestartSection,
    pub run_as: Option<String>,
    pub limits: Option<LimitsSection>,
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
    /// The trigger-instance log (`log:`).
    pub log: eventlog::LogOptions,
    /// The HTTP front door (`api:`).
    pub api: api::ApiSettings,
    /// Where instances are delivered (`sinks:`).
    pub sinks: Vec<sinks::SinkSpec>,
    /// The StackStorm deployment (`st2:`).
    pub st2: crate::st2_config::St2Settings,
    /// Senlin receivers and Masakari notifications (`api.public_url`,
    /// `api.receivers`, `notifications:`).
    pub openstack: api::openstack::OpenStackSettings,
    /// Pack virtualenvs (`virtualenv:`).
    pub virtualenv: VirtualenvSettings,
    /// The flags and environment these came from (a reload reads the
    /// config file again with them).
    pub source: GlobalOpts,
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
        let log_level = crate::logging::check_level(&log_level).map_err(|e| anyhow::anyhow!(e))?;

        if let Some(n) = size("content.max_file_bytes", &file.content.max_file_bytes)? {
            anyhow::ensure!(
                n >= 1024,
                "content.max_file_bytes: must be at least 1024, got {n}"
            );
            content::fsread::set_max_file_bytes(n);
        }
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
        if let Some(spec) = &sc.run_as {
            container.run_as = Some(run_as("sensorcontainer.run_as", spec)?);
        }
        container.limits = limits("sensorcontainer.limits", &sc.limits)?;
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
            let run_as = match &section.run_as {
                Some(spec) => Some(run_as(&format!("{key}.run_as"), spec)?),
                None => container.run_as.clone(),
            };
            let limits = match &section.limits {
                Some(l) => limits(&format!("{key}.limits"), l)?,
                None => container.limits.clone(),
            };
            container.per_sensor.insert(
                sensor_ref.clone(),
                SensorPolicy {
                    restart,
                    stop_grace,
                    run_as,
                    limits,
                },
            );
        }
        container.encryption_key_path = opts
            .encryption_key_path
            .clone()
            .or(file.keyvalue.encryption_key_path);
        let st2 = crate::st2_config::st2_settings(&file.st2)?;
        Ok(Settings {
            data_dir,
            packs_paths,
            configs_dir,
            log_level,
            container,
            log: log_options(&file.log)?,
            api: api_settings(&file.api)?,
            sinks: crate::sink_config::sink_specs(&file.sinks, &st2)?,
            st2,
            openstack: openstack_settings(&file.api, &file.notifications)?,
            virtualenv: virtualenv_settings(&file.virtualenv)?,
            source: opts.clone(),
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
/// Parse `api.listen` (or `--api-listen`): comma-separated or a YAML list
/// of `HOST:PORT`; empty or `none` = no TCP.
pub fn listen_addrs(key: &str, items: &[String]) -> Result<Vec<std::net::SocketAddr>> {
    use std::net::ToSocketAddrs;
    let mut out = Vec::new();
    for item in items
        .iter()
        .flat_map(|i| i.split(','))
        .map(str::trim)
        .filter(|i| !i.is_empty() && *i != "none")
    {
        let addrs = item
            .to_socket_addrs()
            .with_context(|| format!("{key}: '{item}' is not HOST:PORT"))?;
        out.extend(addrs.take(1));
    }
    Ok(out)
}

/// A key holding one string or a YAML list of them (null = none); `what`
/// names an entry in errors.
pub(crate) fn string_list(key: &str, what: &str, v: &serde_yaml::Value) -> Result<Vec<String>> {
    match v {
        serde_yaml::Value::String(s) => Ok(vec![s.clone()]),
        serde_yaml::Value::Sequence(seq) => seq
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    anyhow::anyhow!("{key}: every entry must be a {what} string, got {x:?}")
                })
            })
            .collect(),
        serde_yaml::Value::Null => Ok(vec![]),
        other => anyhow::bail!("{key}: expected {what} or a list of them, got {other:?}"),
    }
}

fn api_settings(a: &ApiSection) -> Result<api::ApiSettings> {
    let mut o = api::ApiSettings::default();
    if let Some(v) = &a.listen {
        let items = string_list("api.listen", "\"HOST:PORT\"", v)?;
        o.listen = listen_addrs("api.listen", &items)?;
    }
    o.tls = match (&a.tls.cert, &a.tls.key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => anyhow::bail!("api.tls: set both cert and key (PEM files), or neither"),
    };
    if let Some(b) = a.metrics_auth {
        o.metrics_auth = b;
    }
    if let Some(d) = span("api.dedupe_window", &a.dedupe_window)? {
        o.dedupe_window = d;
    }
    if let Some(b) = a.dedupe_on_trace_tag {
        o.dedupe_on_trace_tag = b;
    }
    if let Some(d) = span("api.read_timeout", &a.read_timeout)? {
        anyhow::ensure!(!d.is_zero(), "api.read_timeout: must be at least 1 second");
        o.read_timeout = d;
    }
    if let Some(n) = a.max_connections {
        anyhow::ensure!(n >= 1, "api.max_connections: must be at least 1");
        o.max_connections = n;
    }
    if let Some(b) = size("api.max_body_bytes", &a.max_body_bytes)? {
        anyhow::ensure!(
            b >= 1024,
            "api.max_body_bytes: must be at least 1024, got {b}"
        );
        o.max_body_bytes = b as usize;
    }
    Ok(o)
}

/// Resolve `USER[:GROUP]` (names or numbers) to ids; the group defaults to
/// the user's primary group.
fn run_as(key: &str, spec: &str) -> Result<container::RunAs> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u.trim(), Some(g.trim())),
        None => (spec.trim(), None),
    };
    let found = match user.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
        Err(_) => nix::unistd::User::from_name(user),
    }
    .with_context(|| format!("{key}: cannot look up user '{user}'"))?
    .with_context(|| format!("{key}: no user '{user}' on this host"))?;
    let gid = match group {
        None => found.gid.as_raw(),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => nix::unistd::Group::from_name(g)
                .with_context(|| format!("{key}: cannot look up group '{g}'"))?
                .with_context(|| format!("{key}: no group '{g}' on this host"))?
                .gid
                .as_raw(),
        },
    };
    Ok(container::RunAs {
        name: spec.to_string(),
        uid: found.uid.as_raw(),
        gid,
    })
}

fn limits(key: &str, l: &LimitsSection) -> Result<container::Limits> {
    for (name, v) in [
        ("nofile", l.nofile),
        ("nproc", l.nproc),
        ("cpu_seconds", l.cpu_seconds),
    ] {
        anyhow::ensure!(v != Some(0), "{key}.{name}: must be at least 1");
    }
    anyhow::ensure!(
        l.nofile.is_none_or(|n| n >= 16),
        "{key}.nofile: at least 16 (the runtime itself needs a few)"
    );
    let as_bytes = size(&format!("{key}.as_bytes"), &l.as_bytes)?;
    anyhow::ensure!(
        as_bytes.is_none_or(|b| b >= 64 * 1024 * 1024),
        "{key}.as_bytes: at least 64MiB (an interpreter does not start in less)"
    );
    let memory_max = size(&format!("{key}.memory_max"), &l.memory_max)?;
    anyhow::ensure!(
        memory_max.is_none_or(|b| b >= 16 * 1024 * 1024),
        "{key}.memory_max: at least 16MiB"
    );
    anyhow::ensure!(
        l.cpu_max
            .is_none_or(|c| c.is_finite() && (0.01..=1024.0).contains(&c)),
        "{key}.cpu_max: a number of CPUs from 0.01 to 1024 (0.5 = half of one)"
    );
    anyhow::ensure!(
        l.pids_max.is_none_or(|p| p >= 4),
        "{key}.pids_max: at least 4 (an interpreter has a few threads)"
    );
    Ok(container::Limits {
        nofile: l.nofile,
        nproc: l.nproc,
        as_bytes,
        cpu_seconds: l.cpu_seconds,
        cgroup: container::CgroupLimits {
            memory_max,
            cpu_max: l.cpu_max,
            pids_max: l.pids_max,
        },
    })
}

fn virtualenv_settings(v: &VirtualenvSection) -> Result<VirtualenvSettings> {
    let mut o = VirtualenvSettings::default();
    if let Some(b) = v.system_site_packages {
        o.system_site_packages = b;
    }
    if let Some(list) = &v.always_install {
        for (n, req) in list.iter().enumerate() {
            let req = req.trim();
            anyhow::ensure!(
                !req.is_empty() && !req.starts_with('-'),
                "virtualenv.always_install[{n}]: expected a requirement such as \"six\" or \"six>=1.16\", got {req:?}"
            );
        }
        o.always_install = list.iter().map(|r| r.trim().to_string()).collect();
    }
    Ok(o)
}

fn openstack_settings(
    a: &ApiSection,
    n: &NotificationsSection,
) -> Result<api::openstack::OpenStackSettings> {
    let mut o = api::openstack::OpenStackSettings::default();
    if let Some(u) = &a.public_url {
        let u = u.trim();
        anyhow::ensure!(
            (u.starts_with("http://") || u.starts_with("https://")) && u.len() > "https://".len(),
            "api.public_url: expected an http:// or https:// URL, got {u:?}"
        );
        o.public_url = Some(u.to_string());
    }
    if let Some(b) = a.receivers.require_signature {
        o.require_signature = b;
    }
    if let Some(d) = span(
        "notifications.duplicate_detection_interval",
        &n.duplicate_detection_interval,
    )? {
        o.duplicate_detection_interval = d;
    }
    if let Some(d) = span("notifications.expired_interval", &n.expired_interval)? {
        anyhow::ensure!(
            !d.is_zero(),
            "notifications.expired_interval: must be at least 1 second"
        );
        o.expired_interval = d;
    }
    if let Some(d) = span(
        "notifications.check_expired_interval",
        &n.check_expired_interval,
    )? {
        anyhow::ensure!(
            !d.is_zero(),
            "notifications.check_expired_interval: must be at least 1 second"
        );
        o.check_expired_interval = d;
    }
    Ok(o)
}

fn log_options(l: &LogSection) -> Result<eventlog::LogOptions> {
    let mut o = eventlog::LogOptions::default();
    if let Some(b) = size("log.segment_bytes", &l.segment_bytes)? {
        anyhow::ensure!(
            b >= 4096,
            "log.segment_bytes: must be at least 4096, got {b}"
        );
        o.segment_bytes = b;
    }
    if let Some(d) = span("log.segment_max_age", &l.segment_max_age)? {
        anyhow::ensure!(
            !d.is_zero(),
            "log.segment_max_age: must be at least 1 second"
        );
        o.segment_max_age = d;
    }
    let r = &l.retention;
    if let Some(d) = span("log.retention.max_age", &r.max_age)? {
        o.retention.max_age = d;
    }
    if let Some(b) = size("log.retention.max_bytes", &r.max_bytes)? {
        o.retention.max_bytes = b;
    }
    if let Some(f) = r.on_full {
        o.retention.on_full = f;
    }
    if o.retention.max_bytes < 2 * o.segment_bytes {
        tracing::warn!(
            "log.retention.max_bytes ({}) is under twice log.segment_bytes ({}): retention can only delete whole closed segments",
            o.retention.max_bytes,
            o.segment_bytes
        );
    }
    Ok(o)
}

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
    fn log_section_takes_numbers_and_units() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            "log:\n  segment_bytes: 1MiB\n  segment_max_age: 90\n  retention: {max_age: 2d, max_bytes: 5000000, on_full: drop_oldest}\n",
        )
        .unwrap();
        let opts = GlobalOpts {
            config: Some(file.clone()),
            ..Default::default()
        };
        let s = Settings::resolve(&opts).unwrap();
        assert_eq!(s.log.segment_bytes, 1 << 20);
        assert_eq!(s.log.segment_max_age, Duration::from_secs(90));
        assert_eq!(s.log.retention.max_age, Duration::from_secs(2 * 86_400));
        assert_eq!(s.log.retention.max_bytes, 5_000_000);
        assert_eq!(s.log.retention.on_full, eventlog::OnFull::DropOldest);
        std::fs::write(&file, "log:\n  retention:\n    max_bytes: lots\n").unwrap();
        let err = format!("{:#}", Settings::resolve(&opts).unwrap_err());
        assert!(
            err.contains("log.retention.max_bytes") && err.contains("lots"),
            "{err}"
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
