//! Shared harness for the end-to-end tests: temp dirs, the real binaries,
//! bounded waits, and a container process that is always reaped.

#![allow(dead_code)]

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod http;
pub mod peers;
pub mod rabbit;
pub mod st2api;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A process's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A process's stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copy a directory tree (a pack a test is going to modify).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Poll `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Is `pid` a live (non-zombie) process?
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // state is the field after the ")" that closes the command name
            let state = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

/// A temp workspace: data dir, configs dir, an out dir for sensor markers,
/// and a config file.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub configs: PathBuf,
    pub out: PathBuf,
    pub config_file: PathBuf,
    pub packs_path: String,
}

impl Env {
    /// A workspace whose pack path is the given dirs (absolute or relative
    /// to the repo root).
    pub fn new(packs: &[&str]) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let configs = dir.path().join("configs");
        let out = dir.path().join("out");
        fs::create_dir_all(&configs).unwrap();
        fs::create_dir_all(&out).unwrap();
        let config_file = dir.path().join("sensorcontainer.yaml");
        let packs_path = packs
            .iter()
            .map(|p| {
                let p = Path::new(p);
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    repo().join(p)
                }
            })
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let env = Env {
            dir,
            data,
            configs,
            out,
            config_file,
            packs_path,
        };
        env.write_config("sensorcontainer:\n  stop_grace_seconds: 5\n");
        fs::write(
            env.configs.join("testpack.yaml"),
            format!("out_dir: {}\ncount: 50\n", env.out.display()),
        )
        .unwrap();
        env
    }

    /// Replace the config file.
    pub fn write_config(&self, yaml: &str) {
        fs::write(&self.config_file, yaml).unwrap();
    }

    /// The global flags pointing both binaries at this workspace.
    pub fn global_args(&self) -> Vec<OsString> {
        vec![
            "--config".into(),
            self.config_file.clone().into(),
            "--data-dir".into(),
            self.data.clone().into(),
            "--packs-path".into(),
            self.packs_path.clone().into(),
            "--configs-dir".into(),
            self.configs.clone().into(),
        ]
    }

    fn command(&self, bin: &str) -> Command {
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("SENSORCONTAINER_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Run `sensorctl <global flags> <args>`.
    pub fn sensorctl(&self, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_sensorctl"))
            .args(self.global_args())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run sensorctl")
    }

    /// Run sensorctl, asserting success (naming the args and its stderr);
    /// its stdout.
    pub fn sensorctl_ok(&self, args: &[&str]) -> String {
        let out = self.sensorctl(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// A new encryption key file `name` in the temp dir
    /// (`sensorctl key generate-crypto-key`); its path.
    pub fn crypto_key(&self, name: &str) -> PathBuf {
        let key = self.dir.path().join(name);
        let path = key.to_str().expect("temp paths are UTF-8");
        self.sensorctl_ok(&["key", "generate-crypto-key", "--path", path]);
        key
    }

    /// Run sensorctl and parse its stdout as JSON, asserting success.
    pub fn sensorctl_json(&self, args: &[&str]) -> Value {
        let out = self.sensorctl(args);
        assert!(
            out.status.success(),
            "sensorctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "sensorctl {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `reload --register-all`, asserting success.
    pub fn register(&self) {
        let out = self.sensorctl(&["reload", "--register-all"]);
        assert!(
            out.status.success(),
            "reload failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every stored trigger instance (newest first), read from the
    /// streamed NDJSON of `trigger-instance list --limit 0 --json`.
    pub fn instances(&self) -> Vec<Value> {
        let args = ["trigger-instance", "list", "--limit", "0", "--json"];
        let out = self.sensorctl(&args);
        assert!(
            out.status.success(),
            "sensorctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ndjson(&out.stdout)
    }

    /// Instances of one trigger (type) ref.
    pub fn instances_of(&self, trigger: &str) -> Vec<Value> {
        self.instances()
            .into_iter()
            .filter(|i| i["trigger"] == trigger || i["trigger_type"] == trigger)
            .collect()
    }

    /// A marker file a test sensor writes into the out dir.
    pub fn marker(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    /// Wait for a marker file.
    pub fn wait_marker(&self, name: &str, timeout: Duration, container: &mut Container) {
        let path = self.marker(name);
        if !wait_until(timeout, || path.exists() || container.exited()) || !path.exists() {
            panic!(
                "marker {name} did not appear within {timeout:?}; container log:\n{}",
                container.log()
            );
        }
    }

    /// Start `sensorcontainer <global flags> <args>`, logs to a file.
    pub fn start_container(&self, args: &[&str]) -> Container {
        self.start_container_with(args, &[])
    }

    /// Start the container with extra environment variables.
    pub fn start_container_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Container {
        let log = self.dir.path().join(format!(
            "container-{}.log",
            Instant::now().elapsed().as_nanos()
        ));
        let log = unique(log);
        let file = fs::File::create(&log).unwrap();
        let child = self
            .command(env!("CARGO_BIN_EXE_sensorcontainer"))
            .args(self.global_args())
            .args(["--log-level", "info"])
            .args(args)
            // No TCP listener unless a test asks for one (tests run in
            // parallel; a fixed port would collide).
            .env("SENSORCONTAINER_API_LISTEN", "none")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start sensorcontainer");
        let mut c = Container {
            child: Some(child),
            log,
            status: None,
        };
        // sensorctl calls go through the control API once it is up; before
        // that they would race the container for the database.
        let ready = wait_until(Duration::from_secs(30), || {
            c.log().contains("control API on") || c.exited()
        });
        assert!(ready, "container never became ready:\n{}", c.log());
        c
    }
}

fn unique(mut p: PathBuf) -> PathBuf {
    let mut n = 0;
    while p.exists() {
        n += 1;
        p.set_file_name(format!("container-{n}.log"));
    }
    p
}

/// A running `sensorcontainer`, killed and reaped on drop.
pub struct Container {
    child: Option<Child>,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Container {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The base URL of its TCP API (`http://127.0.0.1:PORT`), from the
    /// "HTTP API on ..." line it logs (start it with a TCP listen address).
    pub fn http_base(&self) -> String {
        // "control API on" (what start_container waits for) is logged
        // before the TCP listener is bound and named.
        wait_until(Duration::from_secs(30), || {
            self.log().contains("HTTP API on http")
        });
        let log = self.log();
        let at = log
            .find("HTTP API on http")
            .expect("the container logs its HTTP address");
        log[at + "HTTP API on ".len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_string()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Has it exited (reaping it if so)?
    pub fn exited(&mut self) -> bool {
        if self.status.is_some() {
            return true;
        }
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(st)) = child.try_wait() {
                self.status = Some(st);
                return true;
            }
        }
        false
    }

    /// Wait for a log line containing `needle`.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) {
        if !wait_until(timeout, || self.log().contains(needle)) {
            panic!(
                "log never contained {needle:?} within {timeout:?}; log:\n{}",
                self.log()
            );
        }
    }

    /// Wait for it to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if !wait_until(timeout, || self.exited()) {
            panic!(
                "container did not exit within {timeout:?}; log:\n{}",
                self.log()
            );
        }
        self.status.expect("exited")
    }

    /// Send a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid() as libc::pid_t, sig);
        }
    }

    /// SIGTERM and wait (bounded) for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(timeout)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A venv with eventlet, built once per target dir and reused.
pub fn eventlet_python() -> Option<PathBuf> {
    pip_python("eventlet-venv", &["eventlet"], "import eventlet")
}

/// A venv under the target dir named `name` with `packages` from PyPI,
/// built once and reused while `check` (Python code) runs in it; `None`
/// when pip could not install them (no PyPI).
pub fn pip_python(name: &str, packages: &[&str], check: &str) -> Option<PathBuf> {
    // Tests of one binary run in parallel threads: one of them makes the
    // venv while the others wait, instead of all racing to delete and
    // recreate it.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin/python");
    let ok = |p: &PathBuf| {
        Command::new(p)
            .args(["-c", check])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok(&python) {
        return Some(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let st = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .ok()?;
    assert!(st.success(), "python3 -m venv failed");
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(packages)
        .status()
        .ok()?;
    if !pip.success() {
        return None;
    }
    ok(&python).then_some(python)
}

/// Parse NDJSON (one JSON value per line), panicking on a bad line.
pub fn ndjson(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A cold build of a Rust sensor on a busy 2-core machine.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// Where cargo puts this test's binaries: (target dir, profile dir name).
fn target_and_profile() -> (PathBuf, String) {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_sensorctl"));
    let profile_dir = bin.parent().expect("profile dir");
    let profile = profile_dir
        .file_name()
        .expect("profile name")
        .to_string_lossy()
        .into_owned();
    let target = profile_dir.parent().expect("target dir").to_path_buf();
    (target, profile)
}

/// Build the workspace package `package` (a Rust sensor whose binary has
/// the same name) into the target dir and profile this test runs from,
/// with a bounded wait; the environment its pack's launcher script needs
/// to find exactly that binary (`RUST_SENSOR_TARGET_DIR`,
/// `RUST_SENSOR_PROFILE`). Call it once per test process (`OnceLock`).
pub fn build_sensor(package: &str) -> Vec<(String, String)> {
    let (target, profile) = target_and_profile();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(repo())
        .args(["build", "--quiet", "-p", package])
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let mut child = cmd.spawn().expect("run cargo build");
    let done = wait_until(BUILD_TIMEOUT, || matches!(child.try_wait(), Ok(Some(_))));
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        panic!("cargo build -p {package} did not finish within {BUILD_TIMEOUT:?}");
    }
    let out = child.wait_with_output().expect("cargo build output");
    assert!(
        out.status.success(),
        "cargo build -p {package} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = target.join(&profile).join(package);
    assert!(bin.is_file(), "{} was not built", bin.display());
    vec![
        (
            "RUST_SENSOR_TARGET_DIR".to_string(),
            target.display().to_string(),
        ),
        // Exactly the binary just built, not an older one of another profile.
        ("RUST_SENSOR_PROFILE".to_string(), profile),
    ]
}

/// The StackStorm semantics and raw-protocol error codes every datastore
/// (ours or st2's) must show in `testpack.DatastoreProbe`'s `probe.json`.
pub fn assert_datastore_probe_semantics(r: &Value) {
    assert_eq!(r["missing"], Value::Null);
    assert_eq!(r["delete_missing"], false);
    assert_eq!(r["delete_present"], true);
    assert_eq!(r["global_value"], "g");
    let listed: Vec<&str> = r["listed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&"testpack.DatastoreProbe:sticky"),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .all(|n| n.starts_with("testpack.DatastoreProbe:")),
        "local listing only: {listed:?}"
    );
    // The raw protocol rejects bad input with documented codes.
    let raw = &r["raw"];
    assert_eq!(raw["non_string_value"], -32602);
    assert_eq!(raw["negative_ttl"], -32602);
    assert_eq!(raw["float_ttl"], -32602);
    assert_eq!(raw["empty_name"], -32020);
    assert_eq!(raw["long_name"], -32020);
    assert_eq!(raw["user_scope"], -32020);
}
