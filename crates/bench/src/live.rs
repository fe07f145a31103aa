//! Running the real release binaries (`sensorcontainer`, `sensorctl`) on a
//! generated bench pack in a temp dir, and talking to the control API.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The release binaries.
#[derive(Debug, Clone)]
pub struct Bins {
    pub container: PathBuf,
    pub ctl: PathBuf,
    /// The Rust SDK bench sensor (this crate's `sc-bench-rust-sensor`).
    pub rust_sensor: PathBuf,
}

impl Bins {
    /// Next to this program (`target/release`), built first when run by
    /// cargo or when missing (unless `no_build`).
    pub fn locate(no_build: bool) -> Result<Bins> {
        let exe = std::env::current_exe()?;
        let dir = exe.parent().context("no parent dir of sc-bench")?;
        let bins = Bins {
            container: dir.join("sensorcontainer"),
            ctl: dir.join("sensorctl"),
            rust_sensor: dir.join("sc-bench-rust-sensor"),
        };
        let missing =
            !bins.container.is_file() || !bins.ctl.is_file() || !bins.rust_sensor.is_file();
        let cargo = std::env::var_os("CARGO");
        if !no_build && (missing || cargo.is_some()) {
            let cargo = cargo.unwrap_or_else(|| "cargo".into());
            let release = dir.file_name().is_some_and(|n| n == "release");
            let mut cmd = Command::new(&cargo);
            cmd.args(["build", "-p", "sc-cli", "-p", "sc-bench", "--bins"]);
            if release {
                cmd.arg("--release");
            }
            eprintln!(
                "sc-bench: building the binaries (cargo build{} -p sc-cli -p sc-bench --bins)",
                if release { " --release" } else { "" }
            );
            let st = cmd.status();
            if !st.as_ref().is_ok_and(|s| s.success()) && missing {
                bail!(
                    "binaries are missing in {} and building them failed ({st:?}); run `cargo build --release -p sc-cli -p sc-bench --bins` first",
                    dir.display()
                );
            }
        }
        for b in [&bins.container, &bins.ctl, &bins.rust_sensor] {
            if !b.is_file() {
                bail!(
                    "{} is missing: run `cargo build --release -p sc-cli -p sc-bench --bins` first",
                    b.display()
                );
            }
        }
        Ok(bins)
    }
}

/// A sensor of the generated `bench` pack.
#[derive(Debug, Clone)]
pub struct SensorSpec {
    pub class: String,
    /// Python file (or executable for `exec`), relative to `sensors/`.
    pub entry: String,
    /// `runner_type: exec` with these args.
    pub exec_args: Option<Vec<String>>,
    /// Declare the trigger type `bench.event` (exactly one sensor must).
    pub declares_event: bool,
}

impl SensorSpec {
    pub fn python(class: &str, entry: &str, declares_event: bool) -> SensorSpec {
        SensorSpec {
            class: class.into(),
            entry: entry.into(),
            exec_args: None,
            declares_event,
        }
    }
}

/// A temp dir with a data dir, a pack path holding the `bench` pack, a
/// configs dir, an out dir for sensor markers and a config file.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub packs: PathBuf,
    pub configs: PathBuf,
    pub out: PathBuf,
    pub config: PathBuf,
    pub bins: Bins,
}

impl Workspace {
    pub fn new(bins: &Bins, config_yaml: &str) -> Result<Workspace> {
        Workspace::new_in(bins, config_yaml, &std::env::temp_dir())
    }

    /// [`Workspace::new`] in a temp dir under `parent` (e.g. a tmpfs).
    pub fn new_in(bins: &Bins, config_yaml: &str, parent: &Path) -> Result<Workspace> {
        let dir = tempfile::tempdir_in(parent)?;
        let ws = Workspace {
            data: dir.path().join("data"),
            packs: dir.path().join("packs"),
            configs: dir.path().join("configs"),
            out: dir.path().join("out"),
            config: dir.path().join("sensorcontainer.yaml"),
            bins: bins.clone(),
            dir,
        };
        for d in [&ws.packs, &ws.configs, &ws.out] {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&ws.config, config_yaml)?;
        Ok(ws)
    }

    /// Write the `bench` pack: `files` under `sensors/`, one YAML per sensor.
    pub fn write_pack(&self, sensors: &[SensorSpec], files: &[(String, String)]) -> Result<()> {
        let pack = self.packs.join("bench");
        let dir = pack.join("sensors");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            pack.join("pack.yaml"),
            "ref: bench\nname: bench\ndescription: sc-bench\nversion: 1.0.0\nauthor: sc-bench\n",
        )?;
        for (name, body) in files {
            std::fs::write(dir.join(name), body)?;
        }
        for s in sensors {
            let mut y = format!("class_name: {}\nentry_point: {}\n", s.class, s.entry);
            if let Some(args) = &s.exec_args {
                y += "runner_type: exec\n";
                y += &format!("args: {}\n", serde_json::to_string(args)?);
            }
            if s.declares_event {
                y += "trigger_types:\n  - name: event\n    payload_schema:\n      type: object\n      properties:\n        n: {type: integer, required: true}\n        source: {type: string}\n";
            }
            std::fs::write(dir.join(format!("{}.yaml", s.class)), y)?;
        }
        Ok(())
    }

    /// Write the `bench` pack with one Rust SDK sensor `class` (the
    /// `sc-bench-rust-sensor` binary, copied in) declaring `bench.event`.
    pub fn write_rust_sensor_pack(&self, bins: &Bins, class: &str) -> Result<()> {
        self.write_pack(
            &[SensorSpec {
                class: class.into(),
                entry: "rust_sensor".into(),
                exec_args: Some(vec![]),
                declares_event: true,
            }],
            &[],
        )?;
        std::fs::copy(
            &bins.rust_sensor,
            self.packs.join("bench/sensors/rust_sensor"),
        )
        .with_context(|| format!("copy {}", bins.rust_sensor.display()))?;
        Ok(())
    }

    pub fn global_args(&self) -> Vec<OsString> {
        vec![
            "--config".into(),
            self.config.clone().into(),
            "--data-dir".into(),
            self.data.clone().into(),
            "--packs-path".into(),
            self.packs.clone().into(),
            "--configs-dir".into(),
            self.configs.clone().into(),
        ]
    }

    fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("SENSORCONTAINER_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        // No TCP API: rows may run containers side by side.
        cmd.env("SENSORCONTAINER_API_LISTEN", "none");
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }

    /// `sensorctl <args>`, failing on a non-zero exit; returns stdout.
    pub fn sensorctl(&self, args: &[&str]) -> Result<String> {
        let out = self
            .command(&self.bins.ctl)
            .args(self.global_args())
            .args(args)
            .output()
            .context("run sensorctl")?;
        if !out.status.success() {
            bail!(
                "sensorctl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Register the pack (before the timed start).
    pub fn register(&self) -> Result<()> {
        self.sensorctl(&["reload", "--register-all"]).map(|_| ())
    }

    /// A marker path in the out dir.
    pub fn marker(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    /// Start `sensorcontainer` (log to a file); does not wait.
    pub fn start(&self, extra: &[&str], env: &[(&str, String)]) -> Result<Running> {
        let log = self.dir.path().join(format!(
            "container-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ));
        let file = std::fs::File::create(&log)?;
        let child = self
            .command(&self.bins.container)
            .args(self.global_args())
            .args(["--log-level", "info"])
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("BENCH_OUT", &self.out)
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .context("start sensorcontainer")?;
        Ok(Running {
            child: Some(child),
            sock: self.data.join("control.sock"),
            log,
        })
    }
}

/// A running `sensorcontainer`; SIGKILLed and reaped on drop.
pub struct Running {
    child: Option<Child>,
    sock: PathBuf,
    pub log: PathBuf,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fail (with the log) if the container exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut() {
            if let Some(st) = c.try_wait()? {
                self.child = None;
                bail!(
                    "sensorcontainer exited ({st}); log:\n{}",
                    tail(&self.log_text(), 40)
                );
            }
        }
        Ok(())
    }

    /// Wait until the control API answers.
    pub fn wait_api(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if UnixStream::connect(&self.sock).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the control API never came up; log:\n{}",
                    tail(&self.log_text(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The TCP address of the HTTP API (started with
    /// `SENSORCONTAINER_API_LISTEN=127.0.0.1:0`), from the log line `HTTP
    /// API on http://ADDR`.
    pub fn wait_http_addr(&mut self, timeout: Duration) -> Result<SocketAddr> {
        let log = self.log.clone();
        let mut addr: Option<SocketAddr> = None;
        let mut find = || {
            addr = std::fs::read_to_string(&log).ok().and_then(|t| {
                t.lines().find_map(|l| {
                    let rest = l.split("HTTP API on http://").nth(1)?;
                    rest.split_whitespace().next()?.parse().ok()
                })
            });
            addr.is_some()
        };
        let deadline = Instant::now() + timeout;
        while !find() {
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "timed out after {timeout:?} waiting for the `HTTP API on http://…` log line; log:\n{}",
                    tail(&self.log_text(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        addr.context("no HTTP API address")
    }

    /// `POST /v1/<op>` on the control socket.
    pub fn api(&self, op: &str, body: &Value) -> Result<Value> {
        let mut s = UnixStream::connect(&self.sock)
            .with_context(|| format!("connect {}", self.sock.display()))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let body = body.to_string();
        write!(
            s,
            "POST /v1/control/{op} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no HTTP header end")?;
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let mut body = raw[split + 4..].to_vec();
        if head.contains("transfer-encoding: chunked") {
            body = dechunk(&body)?;
        }
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("bad HTTP status line")?;
        let v: Value = serde_json::from_slice(&body).context("control API: not JSON")?;
        if status >= 400 {
            bail!("control API {op}: {status} {v}");
        }
        Ok(v)
    }

    /// SIGTERM, then wait (SIGKILL after `grace`).
    pub fn stop(&mut self, grace: Duration) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("sensorcontainer did not stop within {grace:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..line_end])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Poll `cond` every 2 ms until it holds; error after `timeout`.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<()>,
    mut cond: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        alive()?;
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Seconds since the epoch (what Python's `time.time()` returns).
pub fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Resident set size of a process in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?;
    Ok(kb * 1024)
}

/// The Python base every bench sensor file starts with.
pub const PY_HEADER: &str = r#"
import os
import time

from st2reactor.sensor.base import Sensor

OUT = os.environ["BENCH_OUT"]


def marker(name, text=""):
    tmp = os.path.join(OUT, "." + name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(OUT, name))


class BenchBase(Sensor):
    def setup(self):
        pass

    def run(self):
        while True:
            time.sleep(60)

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
"#;

/// CPU time (user + system) a live process has used, in seconds.
pub fn cpu_secs(pid: u32) -> Result<f64> {
    stat_cpu_secs(&format!("/proc/{pid}/stat"))
}

/// CPU time (user + system) one thread of a live process has used, in
/// seconds.
pub fn thread_cpu_secs(pid: u32, tid: u32) -> Result<f64> {
    stat_cpu_secs(&format!("/proc/{pid}/task/{tid}/stat"))
}

fn stat_cpu_secs(path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("read {path}"))?;
    let rest = stat.rsplit_once(')').context("bad /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

/// CPU time (user + system) of every reaped child of this process so far.
pub fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// When a live process started, in epoch seconds (`/proc/<pid>/stat`
/// starttime, clock-tick resolution).
pub fn start_epoch(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("bad /proc stat")?.1;
    let ticks: f64 = rest
        .split_whitespace()
        .nth(19)
        .context("starttime")?
        .parse()?;
    let btime: f64 = std::fs::read_to_string("/proc/stat")?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .context("btime")?
        .trim()
        .parse()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(btime + ticks / hz)
}
