//! A private RabbitMQ node for the rows that need a broker (`st2`,
//! `openstack`), and the bench's own AMQP client helpers (lapin on the
//! bench's tokio runtime): every broker operation has a deadline, every
//! broker result is checked.

use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use lapin::{Connection, ConnectionProperties};

use super::sinks::CONNECT_TIMEOUT;
use crate::live;

/// Deadline of every broker operation of the bench's own (declare, purge,
/// get, channel open and close, a publish written).
pub(crate) const BROKER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a private node to listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

// --- the broker ---------------------------------------------------------------

/// `$SC_RABBITMQ_SERVER`, else Debian's `/usr/lib/rabbitmq/bin/rabbitmq-server`
/// (the start script that runs as the calling user, unlike the
/// `/usr/sbin` wrapper, which switches to the `rabbitmq` user).
pub fn rabbitmq_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SC_RABBITMQ_SERVER") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server");
    p.is_file().then_some(p)
}

/// `epmd` of the Erlang runtime the broker runs on.
fn epmd_binary() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/erlang")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin/epmd"))
        .find(|p| p.is_file())
        .or_else(|| Some(PathBuf::from("/usr/bin/epmd")).filter(|p| p.is_file()))
}

/// A loopback port free now (another process may take it meanwhile).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Have the child get `signal` when the thread that spawns it exits (so
/// an interrupted bench leaves no broker behind).
fn die_with_parent(cmd: &mut Command, signal: nix::sys::signal::Signal) {
    // SAFETY: between fork and exec the closure only calls prctl(2)
    // (through nix), which is async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(signal).map_err(std::io::Error::from)
        });
    }
}

/// CPU seconds (user + system) of the live processes of process group
/// `pgid`.
pub(crate) fn group_cpu_secs(pgid: u32) -> Result<f64> {
    let mut total = 0.0;
    if pgid == 0 {
        // Kernel threads are in group 0; no broker is.
        return Ok(total);
    }
    for e in std::fs::read_dir("/proc").context("read /proc")?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // Gone meanwhile: skip it.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        // After the command: state, ppid, pgrp, ...
        if rest.split_whitespace().nth(2).and_then(|g| g.parse::<u32>().ok()) != Some(pgid) {
            continue;
        }
        if let Ok(c) = live::cpu_secs(pid) {
            total += c;
        }
    }
    Ok(total)
}

/// A private RabbitMQ node: `rabbitmq-server` started as this user on free
/// loopback ports, with its own epmd, cookie (`HOME`), database and logs
/// in a temp dir; nothing system-wide is used or touched. On drop its
/// process group is killed and our child reaped, then the epmd. Start it
/// from a thread that outlives it (the main thread): both get a signal
/// when the thread that started them exits.
pub struct RabbitServer {
    /// The start script (a shell that runs the Erlang VM), leader of its
    /// own process group; `None` only while starting.
    broker: Option<Child>,
    epmd: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl RabbitServer {
    /// Start a node with `bin` (see [`rabbitmq_binary`]) and wait until it
    /// listens (at most a minute; it takes 5–15 s).
    pub fn start(bin: &Path) -> Result<RabbitServer> {
        if !bin.is_file() {
            bail!(
                "{} not found: install rabbitmq-server: scripts/install-peers.sh as root (or set SC_RABBITMQ_SERVER)",
                bin.display()
            );
        }
        let epmd_bin = epmd_binary().context(
            "no epmd (/usr/lib/erlang/*/bin/epmd, /usr/bin/epmd): install rabbitmq-server: scripts/install-peers.sh as root",
        )?;
        let dir = tempfile::tempdir().context("temp dir for rabbitmq-server")?;
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n")?;
        let (epmd_port, port, dist_port) = (free_port()?, free_port()?, free_port()?);
        let mut cmd = Command::new(&epmd_bin);
        cmd.args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut cmd, nix::sys::signal::Signal::SIGKILL);
        let epmd = cmd
            .spawn()
            .with_context(|| format!("start {}", epmd_bin.display()))?;
        // From here on, an error drops `s`: whatever runs is stopped.
        let mut s = RabbitServer {
            broker: None,
            epmd,
            port,
            dir,
        };
        let epmd_up = wait_listening(epmd_port, Duration::from_secs(10), || {
            Ok(s.epmd.try_wait()?.is_some())
        })?;
        if !epmd_up {
            bail!("epmd did not listen on 127.0.0.1:{epmd_port} within 10 s");
        }
        let d = s.dir.path().to_path_buf();
        let out = std::fs::File::create(d.join("out.txt"))?;
        let mut cmd = Command::new(bin);
        cmd.current_dir(&d)
            .env("HOME", &d)
            .env("RABBITMQ_NODENAME", format!("sc{port}@localhost"))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        // SIGTERM: the script's trap stops the VM.
        die_with_parent(&mut cmd, nix::sys::signal::Signal::SIGTERM);
        s.broker = Some(
            cmd.spawn()
                .with_context(|| format!("start {}", bin.display()))?,
        );
        let up = wait_listening(port, START_TIMEOUT, || match s.broker.as_mut() {
            Some(b) => Ok(b.try_wait()?.is_some()),
            None => Ok(true),
        })?;
        if !up {
            bail!(
                "rabbitmq-server {} did not listen on 127.0.0.1:{port} within {START_TIMEOUT:?} (or exited); its output:\n{}",
                bin.display(),
                live::tail(
                    &std::fs::read_to_string(d.join("out.txt")).unwrap_or_default(),
                    20
                )
            );
        }
        Ok(s)
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/` (guest may log in over
    /// loopback), as an st2.conf's `[messaging] url` would say.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/", self.port)
    }

    /// The AMQP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's process group (the start script leads it).
    pub fn pgid(&self) -> u32 {
        self.broker.as_ref().map_or(0, Child::id)
    }

    /// CPU seconds the node's processes have used so far.
    pub fn cpu_secs(&self) -> Result<f64> {
        group_cpu_secs(self.pgid())
    }
}

/// Poll until 127.0.0.1:`port` accepts a connection (true), `exited` says
/// the process is gone or `timeout` passed (false).
fn wait_listening(
    port: u16,
    timeout: Duration,
    mut exited: impl FnMut() -> Result<bool>,
) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(true);
        }
        if exited()? || Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        if let Some(mut b) = self.broker.take() {
            // The process group our child leads (`process_group(0)`): the
            // script, the Erlang VM, its helpers.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(b.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = b.wait();
        }
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
    }
}

// --- the bench's AMQP client ------------------------------------------------------

/// `fut` within `limit`, its error (or the timeout) naming `what`.
pub(crate) async fn within<T>(
    what: &str,
    limit: Duration,
    fut: impl Future<Output = lapin::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(anyhow!("{what}: {e}")),
        Err(_) => Err(anyhow!("{what}: no answer within {limit:?}")),
    }
}

/// A connection as the `st2` sink opens its own: `parse_uri` (kombu's empty
/// vhost is `/`), lapin on the current tokio runtime.
pub(crate) async fn connect(url: &str, name: &str) -> Result<Connection> {
    let uri =
        sinks::st2::publisher::parse_uri(url, CONNECT_TIMEOUT).map_err(anyhow::Error::msg)?;
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current())
        .with_connection_name(name.into());
    within(
        "connect to RabbitMQ",
        CONNECT_TIMEOUT + Duration::from_secs(1),
        Connection::connect_uri(uri, props),
    )
    .await
}

/// [`connect`], again every 200 ms until `timeout` (a node that just
/// started listening may still refuse the login for a moment).
pub(crate) async fn connect_retrying(
    url: &str,
    name: &str,
    timeout: Duration,
) -> Result<Connection> {
    let deadline = Instant::now() + timeout;
    loop {
        match connect(url, name).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context(format!(
                    "RabbitMQ did not accept a connection within {timeout:?}"
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
