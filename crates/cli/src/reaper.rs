//! The reaper: a small process forked by `sensorcontainer` before it
//! starts any thread, which outlives it only to kill what it leaves.
//!
//! Sensors die with the container through their parent-death signal, but
//! their own children (a `subprocess.Popen`, a `setsid` daemon) would be
//! reparented to init and live on after a `kill -9` of the container. The
//! reaper (its own session, deaf to SIGINT/SIGTERM/SIGHUP) watches its
//! parent; once the container is gone, by any death, it kills the run's
//! cgroup tree (`cgroup.kill`: every process any sensor ever started,
//! whatever it did to its session or environment) when the host gave us
//! one, then SIGKILLs every process whose environment carries this run's
//! `SENSOR_CONTAINER_ID`, and exits.
//!
//! Guarantees: with a run cgroup (a writable cgroup v2 hierarchy: root on
//! most hosts), no sensor process survives the container, within ~0.2 s.
//! Without one, every sensor process that keeps the variable it was
//! started with (the initial environment, which `/proc/PID/environ`
//! shows) is killed; a process that re-execs itself with the variable
//! removed escapes. Killing the reaper too (`kill -9` of both) leaves the
//! cgroup's processes running until the cgroup is killed by hand.

use std::path::PathBuf;
use std::time::Duration;

/// How often the reaper looks at its parent.
const POLL: Duration = Duration::from_millis(200);

/// A new id for this container run (given to sensors as
/// `SENSOR_CONTAINER_ID`, and naming its cgroup).
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Fork the reaper for run `id` and its cgroup `cgroup` (call before any
/// thread exists). A failed fork is logged and the container runs without.
pub fn start(id: &str, cgroup: Option<PathBuf>) {
    let parent = nix::unistd::getpid();
    // SAFETY: called from main before the async runtime or any other
    // thread exists, so the child is a copy of a single-threaded process
    // and may run ordinary code; it never returns into main (it _exits).
    match unsafe { nix::unistd::fork() } {
        Err(e) => eprintln!(
            "warning: cannot start the reaper ({e}): sensors' children may outlive a killed container"
        ),
        Ok(nix::unistd::ForkResult::Child) => reap(parent, id, cgroup),
        Ok(nix::unistd::ForkResult::Parent { .. }) => {}
    }
}

fn reap(parent: nix::unistd::Pid, id: &str, cgroup: Option<PathBuf>) -> ! {
    use nix::sys::signal::{signal, SigHandler, Signal};
    let _ = nix::unistd::setsid();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        // SAFETY: SIG_IGN installs no handler code, so nothing can run
        // at an unsafe point.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    while nix::unistd::getppid() == parent {
        std::thread::sleep(POLL);
    }
    let in_cgroup = cgroup
        .map(|dir| container::RunCgroup::at(dir).kill_and_remove(Duration::from_secs(5)))
        .unwrap_or(0);
    // Twice: a process may have been forking while the first pass ran.
    let first = container::spawn::kill_with_env(container::spawn::CONTAINER_ID_ENV, id);
    std::thread::sleep(Duration::from_millis(50));
    let second = container::spawn::kill_with_env(container::spawn::CONTAINER_ID_ENV, id);
    let killed = in_cgroup + first + second;
    if killed > 0 {
        eprintln!(
            "sensorcontainer reaper: the container is gone; killed {killed} process(es) of its sensors"
        );
    }
    // SAFETY: ends this process without running the parent's destructors
    // (nix has no _exit).
    unsafe { libc::_exit(0) }
}
