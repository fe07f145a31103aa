//! The reaper: a small process forked by `sensorcontainer` before it
//! starts any thread, which outlives it only to kill what it leaves.
//!
//! Sensors die with the container through their parent-death signal, but
//! their own children (a `subprocess.Popen`, a `setsid` daemon) would be
//! reparented to init and live on after a `kill -9` of the container. The
//! reaper (its own session, deaf to SIGINT/SIGTERM/SIGHUP) watches its
//! parent; once the container is gone, by any death, it SIGKILLs every
//! process whose environment carries this run's `SENSOR_CONTAINER_ID`, and
//! exits. Guarantee: every sensor process that keeps the variable it was
//! started with (the initial environment, which `/proc/PID/environ` shows)
//! is killed within ~0.2 s of the container's death; a process that
//! re-execs itself with the variable removed, or kills the reaper, escapes.
//! cgroups would close that gap; they are not used yet.

use std::time::Duration;

/// How often the reaper looks at its parent.
const POLL: Duration = Duration::from_millis(200);

/// Fork the reaper (call before any thread exists); returns the run id to
/// give sensors. A failed fork is logged and the container runs without.
pub fn start() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let parent = std::process::id();
    // SAFETY: called from main before the async runtime or any other
    // thread exists, so the child is a copy of a single-threaded process
    // and may run ordinary code; it never returns into main (it _exits).
    match unsafe { libc::fork() } {
        -1 => {
            eprintln!(
                "warning: cannot start the reaper ({}): sensors' children may outlive a killed container",
                std::io::Error::last_os_error()
            );
            id
        }
        0 => reap(parent, &id),
        _ => id,
    }
}

fn reap(parent: u32, id: &str) -> ! {
    // SAFETY: setsid/signal/getppid/_exit are plain syscalls on this
    // process's own state.
    unsafe {
        libc::setsid();
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
    // SAFETY: as above.
    while unsafe { libc::getppid() } as u32 == parent {
        std::thread::sleep(POLL);
    }
    // Twice: a process may have been forking while the first pass ran.
    let first = container::spawn::kill_with_env(container::spawn::CONTAINER_ID_ENV, id);
    std::thread::sleep(Duration::from_millis(50));
    let second = container::spawn::kill_with_env(container::spawn::CONTAINER_ID_ENV, id);
    if first + second > 0 {
        eprintln!(
            "sensorcontainer reaper: the container is gone; killed {} process(es) of its sensors",
            first + second
        );
    }
    // SAFETY: ends this process without running the parent's destructors.
    unsafe { libc::_exit(0) }
}
