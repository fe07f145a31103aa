//! A private RabbitMQ node for the st2-bus tests: the Debian
//! `rabbitmq-server` (installed by scripts/install-peers.sh) started as this
//! user on free loopback ports, with its own epmd, cookie, database and
//! logs in a temp dir; nothing system-wide is used or touched. Killed (its
//! process group, and the epmd we started) on drop.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::peers::free_port;
use super::wait_until;

/// The broker's start script (runs as the calling user, unlike the
/// `/usr/sbin` wrapper, which switches to the `rabbitmq` user).
pub fn rabbitmq_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SC_RABBITMQ_SERVER") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server");
    p.is_file().then_some(p)
}

/// A running private node.
pub struct RabbitServer {
    broker: Option<Child>,
    epmd: Child,
    pub port: u16,
    dist_port: u16,
    epmd_port: u16,
    management_port: Option<u16>,
    tls_port: Option<u16>,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl RabbitServer {
    /// Start one, or `None` (printing why) when rabbitmq-server is not
    /// installed outside CI. Under CI=true a missing or failing broker
    /// fails the test.
    pub fn start() -> Option<RabbitServer> {
        Self::start_with(false, None)
    }

    /// Start one with the management plugin on [`RabbitServer::management_url`]
    /// (statistics every 500 ms, so queue consumers show quickly).
    pub fn start_with_management() -> Option<RabbitServer> {
        Self::start_with(true, None)
    }

    /// Start one with a TLS listener too, on [`RabbitServer::tls_port`],
    /// serving `cert` and `key` (PEM files).
    pub fn start_with_tls(cert: &Path, key: &Path) -> Option<RabbitServer> {
        Self::start_with(false, Some((cert, key)))
    }

    fn start_with(management: bool, tls: Option<(&Path, &Path)>) -> Option<RabbitServer> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let Some(bin) = rabbitmq_binary() else {
            let why = "rabbitmq-server not found: run scripts/install-peers.sh as root (or set SC_RABBITMQ_SERVER)";
            assert!(!ci, "{why}");
            eprintln!("SKIP: {why}");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let management_port = management.then(free_port);
        let mut plugins = "[].\n".to_string();
        let mut conf = String::new();
        if let Some(p) = management_port {
            plugins = "[rabbitmq_management].\n".into();
            conf.push_str(&format!("management.tcp.port = {p}\nmanagement.tcp.ip = 127.0.0.1\ncollect_statistics_interval = 500\n"));
        }
        let tls_port = tls.map(|_| free_port());
        if let (Some(p), Some((cert, key))) = (tls_port, tls) {
            conf.push_str(&format!(
                "listeners.ssl.1 = 127.0.0.1:{p}\nssl_options.cacertfile = {c}\nssl_options.certfile = {c}\nssl_options.keyfile = {k}\nssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n",
                c = cert.display(),
                k = key.display()
            ));
        }
        std::fs::write(dir.path().join("enabled_plugins"), plugins).unwrap();
        std::fs::write(dir.path().join("rabbitmq.conf"), conf).unwrap();
        let epmd_port = free_port();
        let epmd_bin = epmd_binary().expect("epmd next to the Erlang runtime");
        let epmd = Command::new(epmd_bin)
            .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start epmd");
        let mut s = RabbitServer {
            broker: None,
            epmd,
            port: free_port(),
            dist_port: free_port(),
            epmd_port,
            management_port,
            tls_port,
            dir,
            bin,
        };
        s.launch();
        Some(s)
    }

    /// `http://127.0.0.1:PORT` of the management API (its start-up is
    /// awaited too), if started with it.
    pub fn management_url(&self) -> Option<String> {
        self.management_port.map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// The TLS listener's port, if started with one.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/` (guest may log in over loopback).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/", self.port)
    }

    fn launch(&mut self) {
        let d = self.dir.path();
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(d)
            .env("HOME", d)
            .env("RABBITMQ_NODENAME", format!("sc{}@localhost", self.port))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(d.join("out.txt")).unwrap())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let port = self.port;
        let extra: Vec<u16> = self.management_port.into_iter().chain(self.tls_port).collect();
        let up = wait_until(Duration::from_secs(60), || {
            (std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && extra.iter().all(|m| std::net::TcpStream::connect(("127.0.0.1", *m)).is_ok()))
                || child.try_wait().ok().flatten().is_some()
        });
        if !up || child.try_wait().ok().flatten().is_some() {
            kill_group(&mut child);
            panic!(
                "rabbitmq-server did not start on port {port}:\n{}",
                std::fs::read_to_string(d.join("out.txt")).unwrap_or_default()
            );
        }
        self.broker = Some(child);
    }

    /// Kill the broker (as a crash would) and start it again on the same
    /// port with the same database: durable queues and persistent messages
    /// survive.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Start a killed broker again (same port, same database).
    pub fn revive(&mut self) {
        assert!(self.broker.is_none(), "the broker is running");
        self.launch();
    }

    /// Kill the broker, leaving its database.
    pub fn kill(&mut self) {
        if let Some(mut b) = self.broker.take() {
            kill_group(&mut b);
        }
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_err()),
            "broker still listening on {port}"
        );
    }

    /// The node's directory (logs in `log/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn epmd_binary() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/erlang")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin/epmd"))
        .find(|p| p.is_file())
        .or_else(|| Some(PathBuf::from("/usr/bin/epmd")).filter(|p| p.is_file()))
}

fn kill_group(child: &mut Child) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        // No asserting here: a drop during a panic must not panic again.
        if let Some(mut b) = self.broker.take() {
            kill_group(&mut b);
        }
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
    }
}
