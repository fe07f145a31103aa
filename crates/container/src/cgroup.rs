//! Sensor cgroups (cgroup v2): every sensor process, and everything it
//! starts, lives in a cgroup of its own under one cgroup per container run,
//! so stopping a sensor kills exactly its processes (`cgroup.kill`), even
//! those that left its process group and scrubbed their environment, and
//! the reaper kills the whole run's tree when the container dies.
//!
//! Layout: `<cgroup2 mount><the container's cgroup>/sensorcontainer-<run id>/
//! <sensor ref>/`. A sensor joins its cgroup between fork and exec by
//! writing `0` to an already open `cgroup.procs` (no allocation there).
//!
//! Where no cgroup2 hierarchy is mounted or it is not writable (an
//! unprivileged container, another user), sensors run without, and the
//! process-group kill plus the environment scan for reparented processes
//! (see `spawn::kill_tagged` and the cli's reaper) is what remains; the
//! container says so at start. `memory_max`, `cpu_max` and `pids_max` need
//! the cgroup v2 controller of that name enabled for our cgroup; when it is
//! not (a cgroup v1 or hybrid host, no delegation), a sensor configured
//! with one is refused at start with the reason.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why cgroups cannot be used, or a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup v2 hierarchy is mounted.
    #[error("no cgroup v2 hierarchy is mounted")]
    NotMounted,
    /// A cgroup file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A limit needs a controller we cannot enable.
    #[error("{key} needs the cgroup v2 '{controller}' controller, which is not available to this container ({why})")]
    NoController {
        key: String,
        controller: &'static str,
        why: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Limits only a cgroup can set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupLimits {
    /// `memory.max`, bytes (the sensor and its children together).
    pub memory_max: Option<u64>,
    /// `cpu.max` as a number of CPUs (0.5 = half of one).
    pub cpu_max: Option<f64>,
    /// `pids.max`: processes and threads of the sensor together.
    pub pids_max: Option<u64>,
}

impl CgroupLimits {
    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        self.memory_max.is_none() && self.cpu_max.is_none() && self.pids_max.is_none()
    }

    /// (config key, controller, file, value) of each limit set.
    fn files(&self) -> Vec<(&'static str, &'static str, &'static str, String)> {
        let mut out = vec![];
        if let Some(b) = self.memory_max {
            out.push(("memory_max", "memory", "memory.max", b.to_string()));
        }
        if let Some(c) = self.cpu_max {
            let period = 100_000u64;
            let quota = ((c * period as f64).round() as u64).max(1000);
            out.push(("cpu_max", "cpu", "cpu.max", format!("{quota} {period}")));
        }
        if let Some(p) = self.pids_max {
            out.push(("pids_max", "pids", "pids.max", p.to_string()));
        }
        out
    }
}

/// The cgroup v2 mount point, from `/proc/self/mountinfo`.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        // ... mount-point ... - fstype source options
        let (left, right) = l.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        left.split(' ').nth(4).map(PathBuf::from)
    })
}

/// This process's cgroup v2 path (the `0::` line of `/proc/self/cgroup`).
fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_start_matches('/').to_string())
}

/// Where this run's cgroup goes: the directory (not created).
pub fn run_dir(run_id: &str) -> Result<PathBuf, CgroupError> {
    let mount = cgroup2_mount().ok_or(CgroupError::NotMounted)?;
    let own = own_cgroup().unwrap_or_default();
    Ok(mount.join(own).join(format!("sensorcontainer-{run_id}")))
}

/// One container run's cgroup.
#[derive(Debug)]
pub struct RunCgroup {
    dir: PathBuf,
}

impl RunCgroup {
    /// Create the run's cgroup (call before the reaper forks, so it knows).
    pub fn create(run_id: &str) -> Result<RunCgroup, CgroupError> {
        let dir = run_dir(run_id)?;
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        Ok(RunCgroup { dir })
    }

    /// An existing run cgroup (the reaper's view; the supervisor's).
    pub fn at(dir: PathBuf) -> RunCgroup {
        RunCgroup { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cgroup of one sensor, created if needed, with `limits` applied.
    pub fn sensor(
        &self,
        sensor_ref: &str,
        limits: &CgroupLimits,
    ) -> Result<SensorCgroup, CgroupError> {
        let files = limits.files();
        for (key, controller, _, _) in &files {
            self.enable(key, controller)?;
        }
        let dir = self.dir.join(leaf_name(sensor_ref));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(&dir)(e)),
        }
        for (_, _, file, value) in &files {
            write_file(&dir.join(file), value)?;
        }
        let procs_path = dir.join("cgroup.procs");
        let procs = OpenOptions::new()
            .write(true)
            .open(&procs_path)
            .map_err(io(&procs_path))?;
        Ok(SensorCgroup { dir, procs })
    }

    /// Whether `limits` can be applied (their controllers enabled).
    pub fn check(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        for (key, controller, _, _) in limits.files() {
            self.enable(key, controller)?;
        }
        Ok(())
    }

    /// Enable `controller` for the run's children: in our own cgroup's
    /// `subtree_control` (for the run cgroup) and in the run cgroup's.
    fn enable(&self, key: &str, controller: &'static str) -> Result<(), CgroupError> {
        let no = |why: String| CgroupError::NoController {
            key: format!("limits.{key}"),
            controller,
            why,
        };
        let parent = self.dir.parent().unwrap_or(&self.dir);
        for dir in [parent, self.dir.as_path()] {
            let enabled =
                std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            if enabled.split_whitespace().any(|c| c == controller) {
                continue;
            }
            let available =
                std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            if !available.split_whitespace().any(|c| c == controller) {
                return Err(no(format!(
                    "{} offers: {}",
                    dir.join("cgroup.controllers").display(),
                    if available.trim().is_empty() {
                        "none"
                    } else {
                        available.trim()
                    }
                )));
            }
            write_file(
                &dir.join("cgroup.subtree_control"),
                &format!("+{controller}"),
            )
            .map_err(|e| no(e.to_string()))?;
        }
        Ok(())
    }

    /// Kill every process of the run (all sensors) and remove the cgroups,
    /// waiting up to `deadline` for them to empty. Returns the processes
    /// that were still there.
    pub fn kill_and_remove(&self, deadline: Duration) -> usize {
        let killed = kill_tree(&self.dir, deadline);
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
        killed
    }
}

/// A cgroup directory name for a sensor ref: the ref itself when it is
/// plain, otherwise its hex.
fn leaf_name(sensor_ref: &str) -> String {
    let plain = !sensor_ref.is_empty()
        && !sensor_ref.starts_with("cgroup.")
        && sensor_ref
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !matches!(sensor_ref, "." | "..");
    if plain {
        sensor_ref.to_string()
    } else {
        sensor_ref.bytes().map(|b| format!("{b:02x}")).collect()
    }
}

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(io(path))
}

/// Pids in `dir`'s `cgroup.procs` and those of its children.
fn procs(dir: &Path) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(procs(&e.path()));
            }
        }
    }
    out
}

/// SIGKILL everything in the cgroup tree at `dir` (`cgroup.kill`, or one
/// pid at a time on kernels before 5.14) until it is empty or `deadline`
/// passes; returns how many processes were found in it first.
fn kill_tree(dir: &Path, deadline: Duration) -> usize {
    let found = procs(dir).len();
    if found == 0 {
        return 0;
    }
    let until = Instant::now() + deadline;
    let has_kill = write_file(&dir.join("cgroup.kill"), "1").is_ok();
    loop {
        let left = procs(dir);
        if left.is_empty() || Instant::now() >= until {
            return found;
        }
        if !has_kill {
            for pid in left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One sensor's cgroup.
#[derive(Debug)]
pub struct SensorCgroup {
    dir: PathBuf,
    /// `cgroup.procs`, open for the child to join between fork and exec.
    procs: File,
}

impl SensorCgroup {
    /// The open `cgroup.procs`: writing `0` to it moves the writer in.
    pub fn procs_fd(&self) -> BorrowedFd<'_> {
        self.procs.as_fd()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kill every process left in the sensor's cgroup (waiting up to
    /// `deadline` until it is empty); how many there were. Processes
    /// already dying (its process group was just sent SIGKILL) get a few
    /// milliseconds to leave first, so they are not counted as left behind.
    pub fn kill_all(&self, deadline: Duration) -> usize {
        let settle = Instant::now() + Duration::from_millis(50);
        while !procs(&self.dir).is_empty() && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(2));
        }
        kill_tree(&self.dir, deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_names_are_the_ref_or_its_hex() {
        assert_eq!(leaf_name("examples.Sample"), "examples.Sample");
        assert_eq!(leaf_name("a/b"), "612f62");
        assert_eq!(leaf_name(".."), "2e2e");
        assert_eq!(leaf_name("cgroup.procs"), hex("cgroup.procs"));
    }

    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn limits_become_cgroup_files() {
        let l = CgroupLimits {
            memory_max: Some(1 << 30),
            cpu_max: Some(0.5),
            pids_max: Some(64),
        };
        let f: Vec<(String, String)> = l
            .files()
            .into_iter()
            .map(|(_, _, f, v)| (f.to_string(), v))
            .collect();
        assert_eq!(
            f,
            vec![
                ("memory.max".into(), "1073741824".into()),
                ("cpu.max".into(), "50000 100000".into()),
                ("pids.max".into(), "64".into()),
            ]
        );
    }
}
