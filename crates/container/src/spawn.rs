//! Starting a sensor process: a socketpair whose child end becomes fd 3,
//! its own process group, a parent-death signal, stdin from /dev/null and
//! stdout/stderr captured line by line.
//!
//! Pitfalls measured on this machine (see DESIGN.md): the parent-death
//! signal fires when the *thread* that forked exits, so spawn only from
//! runtime worker threads, never `spawn_blocking`; and the parent must drop
//! the child's end right after spawning, or it never sees EOF.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use protocol::{Frame, FrameReader};
use tokio::io::{AsyncRead, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

use crate::status::SensorStatus;

/// Environment variable marking every sensor process of one container run.
pub const CONTAINER_ID_ENV: &str = "SENSOR_CONTAINER_ID";

/// Longest stdout/stderr line logged; longer ones are summarized.
const MAX_LOG_LINE: usize = 16 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub sensor_ref: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// Drop to this user before exec (the container must be root).
    pub run_as: Option<crate::settings::RunAs>,
    /// Resource limits set before exec.
    pub limits: crate::settings::Limits,
    /// The sensor cgroup's open `cgroup.procs`: the child moves itself in
    /// before exec. Must stay open until `spawn` returns.
    pub cgroup_procs: Option<std::os::fd::RawFd>,
}

impl SpawnSpec {
    /// The command line, for logs and the `process_spawn` trigger.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(|a| a.as_os_str()))
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A running sensor process.
pub struct Spawned {
    pub child: Child,
    pub pid: u32,
    /// The container's end of the RPC socket.
    pub conn: UnixStream,
}

/// Start the process. Must be called on a long-lived runtime worker thread.
pub fn spawn(spec: &SpawnSpec, status: Arc<SensorStatus>) -> std::io::Result<Spawned> {
    let (parent_end, child_end) = std::os::unix::net::UnixStream::pair()?;
    parent_end.set_nonblocking(true)?;
    let child_fd = child_end.as_raw_fd();
    let container_pid = nix::unistd::Pid::this();
    let root = nix::unistd::geteuid().is_root();
    let run_as = match &spec.run_as {
        // Already that user: nothing to drop.
        Some(r) if root || r.uid != nix::unistd::geteuid().as_raw() => {
            if !root {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("run_as {} needs the container to run as root", r.name),
                ));
            }
            Some((
                nix::unistd::Uid::from_raw(r.uid),
                nix::unistd::Gid::from_raw(r.gid),
            ))
        }
        _ => None,
    };
    use nix::sys::resource::Resource;
    let rlimits: Vec<(Resource, u64)> = [
        (Resource::RLIMIT_NOFILE, spec.limits.nofile),
        (Resource::RLIMIT_NPROC, spec.limits.nproc),
        (Resource::RLIMIT_AS, spec.limits.as_bytes),
        (Resource::RLIMIT_CPU, spec.limits.cpu_seconds),
    ]
    .into_iter()
    .filter_map(|(r, v)| v.map(|v| (r, v)))
    .collect();
    let cgroup_procs = spec.cgroup_procs;

    let mut cmd = Command::new(&spec.program);
    // A sensor gets no setting of ours: the SENSORCONTAINER_* variables
    // (the encryption key path among them) and sensorctl's credentials
    // stay with the container.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("SENSORCONTAINER_") || k.starts_with("SENSORCTL_") {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd.args(&spec.args)
        .env(protocol::RPC_FD_ENV, protocol::RPC_FD.to_string())
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    // SAFETY: the closure runs between fork and exec; it only makes
    // single syscalls through nix (no allocation, no lock: nix's error is
    // a plain errno, io::Error::from of it allocates nothing) on values
    // captured before the fork.
    unsafe {
        cmd.pre_exec(move || {
            use nix::sys::{prctl, stat};
            // Its own cgroup first (as root: the move needs it), so
            // everything it ever starts is in there too.
            if let Some(fd) = cgroup_procs {
                // SAFETY: `fd` is the open cgroup.procs of the sensor's
                // cgroup, kept open by the caller until spawn returns.
                let procs = std::os::fd::BorrowedFd::borrow_raw(fd);
                nix::unistd::write(procs, b"0")?;
            }
            // The container's own files are owner-only (umask 077); a
            // sensor writes files the usual way.
            stat::umask(stat::Mode::from_bits_truncate(0o022));
            // Limits first (as root they may be raised), then the user:
            // groups, gid, uid, in that order, so nothing is kept.
            for (resource, value) in &rlimits {
                nix::sys::resource::setrlimit(*resource, *value, *value)?;
            }
            if let Some((uid, gid)) = run_as {
                nix::unistd::setgroups(&[])?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
            }
            // Nothing the sensor executes can gain privileges (setuid
            // binaries, file capabilities).
            prctl::set_no_new_privs()?;
            prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            // The container may have died before prctl took effect.
            if nix::unistd::getppid() != container_pid {
                // SAFETY: ends the forked child at once, running nothing
                // of the parent's (nix has no _exit).
                libc::_exit(1);
            }
            // fd 3 = the child's end; nix's dup2 wants an OwnedFd for the
            // target, which fd 3 is not yet: plain dup2/fcntl here.
            if child_fd == protocol::RPC_FD {
                // SAFETY: fcntl(2) on a descriptor we own.
                if libc::fcntl(child_fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            // SAFETY: dup2(2) of a descriptor we own onto fd 3.
            } else if libc::dup2(child_fd, protocol::RPC_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Nothing above fd 3 crosses exec (nix has no close_range).
            let first = (protocol::RPC_FD + 1) as libc::c_uint;
            // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only marks
            // descriptors; it touches no memory.
            if libc::syscall(
                libc::SYS_close_range,
                first,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) != 0
            {
                for fd in first as i32..4096 {
                    // SAFETY: as above, per descriptor; EBADF is fine.
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop(child_end);
    drop(cmd);
    let pid = child.id().unwrap_or(0);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(capture(
            out,
            spec.sensor_ref.clone(),
            "stdout",
            status.clone(),
        ));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(capture(err, spec.sensor_ref.clone(), "stderr", status));
    }
    let conn = UnixStream::from_std(parent_end)?;
    Ok(Spawned { child, pid, conn })
}

/// Lines of stderr closer together than this form one burst.
const BURST_GAP: std::time::Duration = std::time::Duration::from_millis(15);
/// Most lines (and bytes) joined into one record.
const BURST_MAX_LINES: usize = 500;
const BURST_MAX_BYTES: usize = 256 * 1024;

/// Log a child's stream, tagged with the sensor ref: stdout line by line;
/// stderr line by line too, except that a burst of lines written within
/// a few milliseconds of each other (a Python traceback, above all)
/// becomes one record at ERROR, so a traceback is one log event.
async fn capture<R: AsyncRead + Unpin + Send + 'static>(
    stream: R,
    sensor_ref: String,
    name: &'static str,
    status: Arc<SensorStatus>,
) {
    // A reader task feeds a bounded channel, so waiting for the next line
    // of a burst (with a deadline) never cuts a half-read line.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1024);
    let reader_ref = sensor_ref.clone();
    tokio::spawn(async move {
        let mut reader =
            FrameReader::new(BufReader::with_capacity(64 * 1024, stream), MAX_LOG_LINE);
        loop {
            match reader.next_frame().await {
                Ok(Some(Frame::Line(bytes))) => {
                    if tx
                        .send(String::from_utf8_lossy(&bytes).into_owned())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(Some(Frame::TooLarge { len })) => {
                    tracing::warn!(sensor = %reader_ref, stream = name, "line of {len} bytes not shown (longer than {MAX_LOG_LINE})");
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(sensor = %reader_ref, stream = name, "reading the sensor's {name} failed: {e}");
                    return;
                }
            }
        }
    });
    while let Some(first) = rx.recv().await {
        if name != "stderr" {
            tracing::info!(sensor = %sensor_ref, stream = name, "{first}");
            continue;
        }
        status.push_stderr(first.clone());
        let mut burst = vec![first];
        let mut bytes = burst[0].len();
        while burst.len() < BURST_MAX_LINES && bytes < BURST_MAX_BYTES {
            match tokio::time::timeout(BURST_GAP, rx.recv()).await {
                Ok(Some(line)) => {
                    status.push_stderr(line.clone());
                    bytes += line.len();
                    burst.push(line);
                }
                Ok(None) | Err(_) => break,
            }
        }
        if burst.len() == 1 {
            tracing::info!(sensor = %sensor_ref, stream = name, "{}", burst[0]);
        } else {
            // The sensor is named on the first line: the record's fields
            // come after its last.
            let lines = burst.len();
            tracing::error!(
                sensor = %sensor_ref,
                stream = name,
                lines,
                "sensor {sensor_ref} wrote {lines} lines to stderr:\n{}",
                burst.join("\n")
            );
        }
    }
}

/// SIGKILL every process of ours whose environment carries
/// `SENSOR_RPC_TOKEN=<token>` (what a sensor start left behind outside its
/// process group: `setsid` daemons, double forks). Returns how many.
pub fn kill_tagged(token: &str) -> usize {
    kill_with_env(protocol::RPC_TOKEN_ENV, token)
}

/// SIGKILL every process (but this one) whose initial environment holds
/// `var=value`; processes of other users cannot be read and are skipped.
/// Returns how many were signalled.
pub fn kill_with_env(var: &str, value: &str) -> usize {
    let needle = format!("{var}={value}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let me = std::process::id();
    let mut killed = 0;
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            // ESRCH (gone meanwhile) is fine.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            killed += 1;
        }
    }
    killed
}

/// Send `signal` to the sensor's whole process group.
pub fn signal_group(pid: u32, signal: nix::sys::signal::Signal) {
    if pid == 0 {
        return;
    }
    // ESRCH (group already gone) is fine.
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), signal);
}
