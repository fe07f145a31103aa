//! StackStorm runtime fidelity, end to end with sensors written in the
//! style of StackStorm-Exchange packs (`tests/st2packs`): config templates
//! from encrypted keys, array item defaults, eventlet patched before the
//! sensor module loads (a Flask app made at import time), `st2common`
//! basics, a trigger type shared by two sensors, a sensor that re-execs
//! itself, pack venvs with the host's packages, reload's code check, and a
//! traceback as one log record.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{stderr, stdout, wait_until, Env};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A workspace on the Exchange-style packs, with a crypto key and
/// `extra` appended to the config file.
fn workspace(extra: &str) -> (Env, PathBuf) {
    let env = Env::new(&["tests/st2packs"]);
    let key = env.crypto_key("crypto.key.json");
    env.write_config(&format!(
        "sensorcontainer:\n  stop_grace_seconds: 5\nkeyvalue:\n  encryption_key_path: {}\n{extra}",
        key.display()
    ));
    (env, key)
}

fn ok(env: &Env, args: &[&str]) -> String {
    let out = env.sensorctl(args);
    assert!(out.status.success(), "sensorctl {args:?}: {}", stderr(&out));
    stdout(&out) + &stderr(&out)
}

fn write_pack_config(env: &Env, yaml: &str) {
    std::fs::write(
        env.configs.join("st2compat.yaml"),
        format!("out_dir: {}\n{yaml}", env.out.display()),
    )
    .unwrap();
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn config_templates_render_from_encrypted_keys_item_defaults_fill_and_key_changes_restart() {
    let (env, _key) = workspace("");
    ok(&env, &["key", "set", "api_token", "tok-123", "--encrypt"]);
    ok(&env, &["key", "set", "pw", "hunter2", "--encrypt"]);
    ok(&env, &["key", "set", "port", "8443"]);
    ok(&env, &["key", "set", "--scope", "user", "region", "eu-1"]);
    write_pack_config(
        &env,
        "api_token: \"{{ st2kv.system.api_token | decrypt_kv }}\"\n\
         port: \"{{ st2kv.system.port }}\"\n\
         password: \"{{ st2kv.system.pw }}\"\n\
         endpoint: \"https://{{ st2kv.user.region }}.example:{{ st2kv.system.port }}\"\n\
         repositories:\n  - url: https://a.example/r.git\n  - url: https://b.example/r.git\n    branch: dev\n",
    );
    // Strict registration: the template in the integer `port` is checked
    // once rendered, not as text.
    ok(&env, &["reload", "--register-all"]);
    let mut c = env.start_container(&["--sensor-ref", "st2compat.ConfigProbe"]);
    let marker = env.marker("config.json");
    env.wait_marker("config.json", T, &mut c);
    let config = read_json(&marker);
    assert_eq!(config["api_token"], "tok-123");
    assert_eq!(config["port"], 8443, "typed by the schema");
    assert_eq!(
        config["password"], "hunter2",
        "secret: true items are decrypted"
    );
    assert_eq!(config["endpoint"], "https://eu-1.example:8443");
    assert_eq!(
        config["repositories"],
        json!([{"url": "https://a.example/r.git", "branch": "master"}, {"url": "https://b.example/r.git", "branch": "dev"}])
    );
    assert!(
        !c.log().contains("tok-123") && !c.log().contains("hunter2"),
        "a decrypted value was logged"
    );

    // A key the config reads changed: reload restarts the sensor with it.
    std::fs::remove_file(&marker).unwrap();
    ok(&env, &["key", "set", "port", "9443"]);
    let out = ok(&env, &["reload", "--register-all"]);
    assert!(out.contains("restarted 1"), "{out}");
    env.wait_marker("config.json", T, &mut c);
    assert_eq!(read_json(&marker)["port"], 9443);

    // A key that is gone: the sensor does not start, and the log names the
    // config path and the key.
    ok(&env, &["key", "delete", "port"]);
    ok(&env, &["reload", "--register-all"]);
    c.wait_log("datastore key 'port'", T);
    let log = c.log();
    assert!(
        log.contains("config.endpoint of pack 'st2compat'")
            || log.contains("config.port of pack 'st2compat'"),
        "{log}"
    );
}

#[test]
fn a_flask_app_made_at_import_time_serves_concurrently_and_eventlet_timers_fire() {
    let Some(python) = common::pip_python(
        "flask-eventlet-venv",
        &["eventlet", "flask"],
        "import eventlet, flask",
    ) else {
        assert!(
            !ci(),
            "could not install eventlet and flask from PyPI in CI"
        );
        eprintln!("SKIP: eventlet/flask could not be installed (no PyPI?)");
        return;
    };
    let (env, _) = workspace("");
    write_pack_config(&env, "");
    ok(&env, &["reload", "--register-all"]);
    let mut c = env.start_container(&[
        "--sensor-ref",
        "st2compat.FlaskSensor",
        "--python",
        python.to_str().unwrap(),
    ]);
    env.wait_marker("flask.port", T, &mut c);
    let port = std::fs::read_to_string(env.marker("flask.port")).unwrap();
    let url = format!("http://127.0.0.1:{}/hello", port.trim());
    // Each request is answered only once all 10 are in flight together.
    let answers: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let url = url.clone();
                s.spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    loop {
                        match ureq::get(&url).timeout(Duration::from_secs(25)).call() {
                            Ok(r) => return r.into_string().unwrap_or_default(),
                            // The server may not listen yet right after the marker.
                            Err(ureq::Error::Transport(_)) if Instant::now() < deadline => {
                                std::thread::sleep(Duration::from_millis(50))
                            }
                            Err(e) => return format!("error: {e}"),
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers, vec!["hello".to_string(); 10], "{}", c.log());
    assert!(
        wait_until(T, || !env.instances_of("st2compat.flask_event").is_empty()),
        "the eventlet.spawn_after timer never fired: {}",
        c.log()
    );
    assert_eq!(
        env.instances_of("st2compat.flask_event")[0]["payload"]["timer"],
        "fired"
    );
    assert!(c.terminate(T).success(), "clean stop: {}", c.log());
}

#[test]
fn st2common_isotime_works_and_two_sensors_share_a_trigger_type_in_strict_mode() {
    let (env, _) = workspace("");
    write_pack_config(&env, "");
    // Strict: IsotimeSensor and ReexecSensor both declare shared_event.
    let out = ok(&env, &["reload", "--register-all"]);
    assert!(
        !out.contains("shared_event"),
        "identical declarations are not worth a warning: {out}"
    );
    let types = env.sensorctl_json(&["trigger-type", "get", "st2compat.shared_event", "--json"]);
    assert_eq!(types["ref"], "st2compat.shared_event");
    let mut c = env.start_container(&["--sensor-ref", "st2compat.IsotimeSensor"]);
    assert!(
        wait_until(T, || !env.instances_of("st2compat.shared_event").is_empty()
            || c.exited()),
        "{}",
        c.log()
    );
    let i = env.instances_of("st2compat.shared_event");
    assert_eq!(i.len(), 1, "{}", c.log());
    assert_eq!(i[0]["payload"]["source"], "isotime");
    assert_eq!(i[0]["payload"]["formatted"], "2026-12-01T10:00:00.000000Z");
}

#[test]
fn a_sensor_that_re_execs_itself_dispatches_from_the_new_process() {
    let (env, _) = workspace("");
    write_pack_config(&env, "");
    ok(&env, &["reload", "--register-all"]);
    let mut c = env.start_container(&["--sensor-ref", "st2compat.ReexecSensor"]);
    assert!(
        wait_until(T, || !env.instances_of("st2compat.shared_event").is_empty()
            || c.exited()),
        "{}",
        c.log()
    );
    let i = env.instances_of("st2compat.shared_event");
    assert_eq!(i.len(), 1, "{}", c.log());
    let spawned: Vec<u64> = env
        .instances_of("core.st2.sensor.process_spawn")
        .iter()
        .map(|s| s["payload"]["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(spawned.len(), 1, "no crash loop: {}", c.log());
    assert_eq!(i[0]["payload"]["source"], "reexec");
    assert_eq!(
        i[0]["payload"]["parent"], spawned[0],
        "dispatched by the re-executed child"
    );
    assert_ne!(i[0]["payload"]["pid"], spawned[0]);
    assert!(
        c.log().contains("attached to the sensor service"),
        "{}",
        c.log()
    );
    assert!(c.terminate(T).success(), "{}", c.log());
}

/// The user site of `PYTHONUSERBASE=base` for the host interpreter.
fn user_site(base: &std::path::Path) -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import site; print(site.getusersitepackages())"])
        .env("PYTHONUSERBASE", base)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

#[test]
fn pack_venvs_see_the_host_interpreters_packages_and_always_get_six() {
    // "The host's eventlet": installed for the host interpreter in a user
    // site of our own (PYTHONUSERBASE, never the real one).
    let (env, _) = workspace("");
    let base = env.dir.path().join("userbase");
    let Some(site) = user_site(&base) else {
        panic!("python3 cannot tell its user site");
    };
    let pip = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&site)
        .arg("eventlet")
        .status();
    if !pip.is_ok_and(|s| s.success()) {
        assert!(!ci(), "could not install eventlet from PyPI in CI");
        eprintln!("SKIP: eventlet could not be installed (no PyPI?)");
        return;
    }
    let base_env = [("PYTHONUSERBASE", base.to_str().unwrap())];
    let out = ok(&env, &["pack", "setup-virtualenv", "st2venv"]);
    assert!(out.contains("six (virtualenv.always_install)"), "{out}");
    let cfg = std::fs::read_to_string(env.data.join("virtualenvs/st2venv/pyvenv.cfg")).unwrap();
    assert!(cfg.contains("include-system-site-packages = true"), "{cfg}");
    ok(&env, &["reload", "--register-all"]);
    // One run of the sensor: what it could import (the newest instance).
    let found = |env: &Env| {
        let before = env.instances_of("st2venv.venv_event").len();
        let mut c = env.start_container_with(&["--sensor-ref", "st2venv.HostEventlet"], &base_env);
        assert!(
            wait_until(T, || env.instances_of("st2venv.venv_event").len() > before
                || c.exited()),
            "{}",
            c.log()
        );
        let v = env.instances_of("st2venv.venv_event")[0]["payload"].clone();
        c.terminate(T);
        v
    };
    let v = found(&env);
    let text = |k: &str| v["found"][k].as_str().unwrap_or_default().to_string();
    assert!(
        text("eventlet").starts_with(site.to_str().unwrap()),
        "eventlet from the host's (user) site: {v}"
    );
    // six: installed into the venv, or already satisfied by the host's site.
    assert!(!text("six").starts_with("missing"), "{v}");
    assert!(
        v["prefix"]
            .as_str()
            .unwrap()
            .contains("virtualenvs/st2venv"),
        "{v}"
    );

    // Isolated venvs, as before this change: the host's packages are gone.
    let key = env.dir.path().join("crypto.key.json");
    env.write_config(&format!(
        "keyvalue:\n  encryption_key_path: {}\nvirtualenv:\n  system_site_packages: false\n  always_install: []\n",
        key.display()
    ));
    let out = ok(&env, &["pack", "setup-virtualenv", "st2venv"]);
    assert!(
        out.contains("virtualenv ready"),
        "the changed options remake the venv: {out}"
    );
    let cfg = std::fs::read_to_string(env.data.join("virtualenvs/st2venv/pyvenv.cfg")).unwrap();
    assert!(
        cfg.contains("include-system-site-packages = false"),
        "{cfg}"
    );
    let v = found(&env);
    assert!(
        v["found"]["eventlet"]
            .as_str()
            .unwrap()
            .starts_with("missing"),
        "{v}"
    );
}

#[test]
fn reload_warns_on_a_misspelled_class_and_sensor_check_imports() {
    let (env, _) = workspace("");
    write_pack_config(&env, "");
    let out = env.sensorctl(&["reload", "--register-all"]);
    assert!(
        out.status.success(),
        "a warning, as StackStorm registers it: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("hello.py") && err.contains("sensor 'st2typo.HelloSensr'"),
        "{err}"
    );
    assert!(err.contains("did you mean 'HelloSensor'?"), "{err}");

    let strict = env.sensorctl(&[
        "reload",
        "--register-all",
        "--register-fail-on-sensor-errors",
    ]);
    assert!(!strict.status.success());
    assert!(
        stderr(&strict).contains("nothing was registered"),
        "{}",
        stderr(&strict)
    );
    assert!(stderr(&strict).contains("did you mean 'HelloSensor'?"));

    let check = env.sensorctl(&["sensor", "check", "st2typo.HelloSensr"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stderr(&check).contains("did you mean 'HelloSensor'?"),
        "{}",
        stderr(&check)
    );
    let good = env.sensorctl(&["sensor", "check", "st2compat.IsotimeSensor"]);
    assert!(good.status.success(), "{}", stderr(&good));
    assert!(stdout(&good).contains("ok"), "{}", stdout(&good));
}

#[test]
fn a_python_traceback_is_one_log_record_at_error() {
    let (env, _) = workspace("");
    write_pack_config(&env, "");
    ok(&env, &["reload", "--register-all"]);
    let mut c = env.start_container(&[
        "--sensor-ref",
        "st2compat.CrashingSensor",
        "--single-sensor-mode",
    ]);
    let status = c.wait_exit(T);
    assert_eq!(status.code(), Some(1), "{}", c.log());
    let log = c.log();
    let lines: Vec<&str> = log.lines().collect();
    let at: Vec<usize> = (0..lines.len())
        .filter(|n| lines[*n].contains("Traceback (most recent call last)"))
        .collect();
    assert_eq!(at.len(), 1, "one traceback: {log}");
    // One record: its first line (ERROR, naming the sensor) just above the
    // traceback, then only continuation lines (no timestamp of their own)
    // down to the exception.
    let head = lines[at[0] - 1];
    assert!(
        head.contains(" ERROR ") && head.contains("sensor st2compat.CrashingSensor wrote"),
        "{head}"
    );
    let exc = (at[0]..lines.len())
        .find(|n| lines[*n].contains("RuntimeError: the upstream API went away"))
        .expect("the exception line");
    assert!(
        lines[at[0]..=exc].iter().all(|l| !l.starts_with("20")),
        "{}",
        lines[at[0]..=exc].join("\n")
    );
    assert_eq!(
        log.matches("run() raised an exception").count(),
        1,
        "the summary once: {log}"
    );
}
