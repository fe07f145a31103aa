//! Isolation and hardening: regression tests for what a fault-injection
//! run found. A sensor that stops reading cannot stall the control plane
//! or shutdown; nothing a sensor leaves behind dispatches in its name;
//! content files that are not regular files, or are huge or deeply nested,
//! are refused at once.

mod common;

use std::time::{Duration, Instant};

use common::{pid_alive, stderr, wait_until, Env};

const T: Duration = Duration::from_secs(60);

fn env_with_grace(grace: u32) -> Env {
    let env = Env::new(&["tests/packs"]);
    env.write_config(&format!("sensorcontainer:\n  stop_grace_seconds: {grace}\n"));
    env.register();
    env
}

#[test]
fn a_sensor_that_stops_reading_cannot_stall_triggers_the_control_plane_or_shutdown() {
    let env = env_with_grace(2);
    let mut c = env.start_container(&["--sensor-ref", "testpack.DeafSensor"]);
    env.wait_marker("deaf.flooding", T, &mut c);
    // Let its answers pile up until the container's queue to it is full.
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let out = env.sensorctl(&[
        "trigger",
        "create",
        "--type",
        "testpack.deaf_watch",
        "--parameters",
        r#"{"x": 1}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "trigger create took {:?}",
        started.elapsed()
    );
    c.wait_log("restarting: it did not take trigger.add", T);
    // The control plane answers meanwhile.
    let listed = env.sensorctl(&["sensor", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(common::stdout(&listed).contains("testpack.DeafSensor"));

    // Shutdown: the grace period (2 s) plus at most a second, whatever the
    // sensor does (it ignores SIGTERM and reads nothing).
    env.wait_marker("deaf.flooding", T, &mut c);
    std::thread::sleep(Duration::from_millis(300));
    let stopping = Instant::now();
    c.signal(libc::SIGTERM);
    c.wait_exit(Duration::from_secs(10));
    assert!(
        stopping.elapsed() < Duration::from_secs(3) + Duration::from_millis(900),
        "shutdown took {:?}:\n{}",
        stopping.elapsed(),
        c.log()
    );
}

#[test]
fn nothing_a_sensor_leaves_behind_can_dispatch_in_its_name() {
    let env = env_with_grace(2);
    let mut c = env.start_container(&["--sensor-ref", "testpack.OrphanSensor"]);
    env.wait_marker("orphan.pid", T, &mut c);
    let orphan: u32 = std::fs::read_to_string(env.marker("orphan.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    c.wait_log("exited: Code(0)", T);
    // The setsid grandchild (outside the process group) was killed...
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(orphan)),
        "the orphan {orphan} lives on:\n{}",
        c.log()
    );
    assert!(c.log().contains("left behind outside its process group"), "{}", c.log());
    // ...and nothing more arrives in the sensor's name.
    let settled = env.instances_of("testpack.orphan_event").len();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(env.instances_of("testpack.orphan_event").len(), settled);
    // The exit did not wait for a connection held open by the orphan.
    assert!(!c.log().contains("did not drain"), "{}", c.log());
}
