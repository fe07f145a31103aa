//! End-to-end: restart policy, failed state, live reload, the control API
//! and process hygiene, against the real container.

mod common;

use std::time::Duration;

use common::{pid_alive, wait_until, Env};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn sensor(env: &Env, r: &str) -> Value {
    env.sensorctl_json(&["sensor", "get", r, "--json"])
}

#[test]
fn crashing_three_times_then_running_with_growing_delays() {
    let env = Env::new(&["tests/packs"]);
    env.write_config(
        "sensorcontainer:\n  restart:\n    initial_delay_seconds: 0.2\n    multiplier: 2\n    max_delay_seconds: 5\n",
    );
    env.register();
    let mut c = env.start_container(&["--sensor-ref", "testpack.CrashThenRun"]);
    env.wait_marker("crash_then_run.running", T, &mut c);
    assert!(wait_until(T, || sensor(&env, "testpack.CrashThenRun")
        ["state"]
        == "running"));
    let s = sensor(&env, "testpack.CrashThenRun");
    assert_eq!(s["restarts"], 3, "{s}");
    assert_eq!(s["last_exit"]["code"], 1, "{s}");
    assert!(s["pid"].as_u64().is_some_and(|p| pid_alive(p as u32)));
    let log = c.log();
    let delays: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("restarting in ").nth(1))
        .map(|rest| rest.split('s').next().unwrap())
        .collect();
    assert_eq!(delays, vec!["0.2", "0.4", "0.8"], "growing delays:\n{log}");
    assert!(c.terminate(T).success());
    assert!(
        env.marker("CrashThenRun.cleanup").exists(),
        "cleanup() runs on stop"
    );
}

#[test]
fn max_restarts_reached_means_failed_and_an_error_log() {
    let env = Env::new(&["tests/packs"]);
    env.write_config(
        "sensorcontainer:\n  restart:\n    initial_delay_seconds: 0.05\n  sensors:\n    testpack.CrashThenRun:\n      restart:\n        max_restarts: 2\n",
    );
    env.register();
    let mut c = env.start_container(&["--sensor-ref", "testpack.CrashThenRun"]);
    assert!(
        wait_until(T, || sensor(&env, "testpack.CrashThenRun")["state"]
            == "failed"),
        "never failed:\n{}",
        c.log()
    );
    let s = sensor(&env, "testpack.CrashThenRun");
    assert_eq!(s["restarts"], 2);
    assert_eq!(s["pid"], Value::Null);
    let log = c.log();
    let line = log
        .lines()
        .find(|l| l.contains("giving up"))
        .unwrap_or_else(|| panic!("no give-up line:\n{log}"));
    assert!(
        line.contains("ERROR") && line.contains("testpack.CrashThenRun"),
        "{line}"
    );
    assert!(
        log.contains("crash number 3"),
        "the last stderr lines are reported:\n{log}"
    );
    assert!(!env.marker("crash_then_run.running").exists());
    // A failed sensor can be restarted by hand.
    let out = env.sensorctl(&["sensor", "restart", "testpack.CrashThenRun"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.wait_marker("crash_then_run.running", T, &mut c);
    assert!(c.terminate(T).success());
}

#[test]
fn live_reload_restarts_only_what_changed_and_the_api_works_while_running() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(
        &common::repo().join("tests/packs/testpack"),
        &dir.path().join("testpack"),
    );
    let env = Env::new(&[dir.path().to_str().unwrap()]);
    env.register();
    for s in ["testpack.SteadyOne", "testpack.SteadyTwo"] {
        assert!(env.sensorctl(&["sensor", "enable", s]).status.success());
    }
    for s in ["testpack.PollingCounter", "testpack.ThreadedSensor"] {
        assert!(env.sensorctl(&["sensor", "disable", s]).status.success());
    }
    let mut c = env.start_container(&[]);
    let pid_of = |r: &str| sensor(&env, r)["pid"].as_u64();
    // "running" = setup() done, so a stop from here on must call cleanup().
    let running = |r: &str| sensor(&env, r)["state"] == "running";
    assert!(wait_until(T, || running("testpack.SteadyOne")
        && running("testpack.SteadyTwo")));
    let (one, two) = (
        pid_of("testpack.SteadyOne").unwrap(),
        pid_of("testpack.SteadyTwo").unwrap(),
    );

    // The datastore and reads work through the control API.
    let out = env.sensorctl(&["key", "set", "live", "yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.sensorctl(&["key", "get", "live"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "yes");

    // Unchanged reload: nothing restarts.
    let out = env.sensorctl(&["reload", "--register-all"]);
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("started 0, stopped 0, restarted 0, unchanged 2"));
    assert_eq!(
        (pid_of("testpack.SteadyOne"), pid_of("testpack.SteadyTwo")),
        (Some(one), Some(two))
    );

    // Change one sensor's file: only it restarts.
    let file = dir.path().join("testpack/sensors/steady_one.py");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("\n# changed\n");
    std::fs::write(&file, text).unwrap();
    let out = env.sensorctl(&["reload", "--register-all"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("restarted 1, unchanged 1"), "{stdout}");
    assert!(wait_until(T, || pid_of("testpack.SteadyOne").is_some_and(|p| p != one)));
    assert!(wait_until(T, || running("testpack.SteadyOne")));
    assert_eq!(
        pid_of("testpack.SteadyTwo"),
        Some(two),
        "the unchanged sensor keeps its pid"
    );
    assert!(
        env.marker("SteadyOne.cleanup").exists(),
        "cleanup() ran on the restart:\n{}",
        c.log()
    );

    // SIGHUP reloads too.
    let one_b = pid_of("testpack.SteadyOne").unwrap();
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("# changed again\n");
    std::fs::write(&file, text).unwrap();
    c.signal(libc::SIGHUP);
    assert!(
        wait_until(T, || pid_of("testpack.SteadyOne")
            .is_some_and(|p| p != one_b)),
        "{}",
        c.log()
    );
    assert!(wait_until(T, || running("testpack.SteadyOne")));
    assert_eq!(pid_of("testpack.SteadyTwo"), Some(two));

    // Disable stops it now; enable starts it again.
    assert!(env
        .sensorctl(&["sensor", "disable", "testpack.SteadyTwo"])
        .status
        .success());
    assert_eq!(sensor(&env, "testpack.SteadyTwo")["state"], "disabled");
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(
        two as u32
    )));
    assert!(env.marker("SteadyTwo.cleanup").exists());
    assert!(env
        .sensorctl(&["sensor", "enable", "testpack.SteadyTwo"])
        .status
        .success());
    assert!(wait_until(T, || pid_of("testpack.SteadyTwo").is_some()));

    // A removed sensor is stopped.
    std::fs::remove_file(dir.path().join("testpack/sensors/steady_Two.yaml")).unwrap();
    let out = env.sensorctl(&["reload", "--register-all"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stopped 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let names: Vec<String> = env
        .sensorctl_json(&["sensor", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ref"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.contains(&"testpack.SteadyTwo".to_string()));

    // A bad file makes a reload fail and changes nothing.
    std::fs::write(
        dir.path().join("testpack/sensors/broken.yaml"),
        "class_name: [\n",
    )
    .unwrap();
    let out = env.sensorctl(&["reload", "--register-all"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.yaml"));
    assert!(sensor(&env, "testpack.SteadyOne")["state"] == "running");

    let started = std::time::Instant::now();
    assert!(c.terminate(T).success());
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "shutdown within grace + 1 s"
    );
}

#[test]
fn restart_without_a_container_is_a_clear_error() {
    let env = Env::new(&["tests/packs"]);
    env.register();
    let out = env.sensorctl(&["sensor", "restart", "testpack.PollingCounter"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no sensorcontainer is running"));
    let list = env.sensorctl_json(&["sensor", "list", "--json"]);
    let p = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ref"] == "testpack.PollingCounter")
        .unwrap();
    assert_eq!(p["state"], "stopped");
    assert_eq!(p["pid"], Value::Null);
}

/// The container's steady fd count: the minimum over 25 samples 10 ms
/// apart, since a sample can land mid-cycle while a child's socketpair
/// and pipes are open. A leak raises the minimum; a cycle in flight doesn't.
fn fd_count(pid: u32) -> usize {
    (0..25)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .min()
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// 500 crash-and-restart cycles with zero backoff: the container's fd count
/// and RSS stay flat, and no zombie is left. The "interpreter" is a shell
/// script that answers the interpreter probe and otherwise exits 1 at once,
/// so each cycle costs a fork/exec, not a Python start.
#[test]
fn fd_and_rss_stay_flat_over_500_crash_restart_cycles() {
    let env = Env::new(&["tests/packs"]);
    let fake = env.dir.path().join("crashing-python");
    std::fs::write(&fake, "#!/bin/sh\nif [ \"$1\" = \"-c\" ]; then echo \"$0\"; exit 0; fi\necho crashing >&2\nexit 1\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&fake).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.write_config(&format!(
        "sensorcontainer:\n  python_binary: {}\n  restart:\n    initial_delay_seconds: 0\n    multiplier: 1\n",
        fake.display()
    ));
    env.register();
    let mut c = env.start_container_with(&["--sensor-ref", "testpack.PollingCounter"], &[]);
    let restarts = |env: &Env| {
        sensor(env, "testpack.PollingCounter")["restarts"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(wait_until(T, || restarts(&env) >= 50), "{}", c.log());
    let (fd_early, rss_early) = (fd_count(c.pid()), rss_kib(c.pid()));
    assert!(
        wait_until(Duration::from_secs(120), || restarts(&env) >= 550),
        "only {} restarts",
        restarts(&env)
    );
    let (fd_late, rss_late) = (fd_count(c.pid()), rss_kib(c.pid()));
    eprintln!("fds {fd_early} -> {fd_late}, RSS {rss_early} KiB -> {rss_late} KiB over 500 cycles");
    assert!(fd_late <= fd_early + 2, "fd leak: {fd_early} -> {fd_late}");
    assert!(
        rss_late <= rss_early + 4 * 1024,
        "RSS grew {rss_early} -> {rss_late} KiB"
    );
    // No zombie children.
    let children = std::fs::read_to_string(format!("/proc/{}/task/{}/children", c.pid(), c.pid()))
        .unwrap_or_default();
    for child in children.split_whitespace() {
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        assert!(!stat.contains(") Z "), "zombie {child}");
    }
    assert!(c.terminate(T).success());
}
