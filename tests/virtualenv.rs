//! End-to-end: a pack's requirements.txt gets a virtualenv and its sensor
//! imports the package from it. Needs PyPI (CI has it).

mod common;

use std::path::Path;
use std::time::Duration;

use common::Env;

const T: Duration = Duration::from_secs(30);

fn write_pack(root: &Path, requirements: &str) {
    let p = root.join("venvpack");
    std::fs::create_dir_all(p.join("sensors")).unwrap();
    std::fs::write(
        p.join("pack.yaml"),
        "name: venvpack\ndescription: d\nversion: 1.0.0\nauthor: me\n",
    )
    .unwrap();
    std::fs::write(p.join("requirements.txt"), requirements).unwrap();
    std::fs::write(
        p.join("sensors/uses_six.yaml"),
        "class_name: UsesSix\nentry_point: uses_six.py\ntrigger_types:\n  - name: imported\n",
    )
    .unwrap();
    std::fs::write(
        p.join("sensors/uses_six.py"),
        "import sys\nimport time\n\nimport six\n\nfrom st2reactor.sensor.base import Sensor\n\n\nclass UsesSix(Sensor):\n    def setup(self):\n        pass\n\n    def run(self):\n        self.sensor_service.dispatch(\"venvpack.imported\", {\"six\": six.__version__, \"prefix\": sys.prefix})\n        while True:\n            time.sleep(1)\n\n    def cleanup(self):\n        pass\n\n    def add_trigger(self, t):\n        pass\n\n    def update_trigger(self, t):\n        pass\n\n    def remove_trigger(self, t):\n        pass\n",
    )
    .unwrap();
}

fn pypi_reachable() -> bool {
    // pip's own index query: answers at once when PyPI is reachable.
    std::process::Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"])
        .arg(std::env::temp_dir().join("sc-pypi-probe"))
        .arg("six==1.16.0")
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn requirements_get_a_virtualenv_and_the_sensor_imports_from_it() {
    if !pypi_reachable() {
        assert!(
            std::env::var_os("CI").is_none(),
            "PyPI must be reachable in CI"
        );
        eprintln!("SKIP: PyPI not reachable");
        return;
    }
    let packs = tempfile::tempdir().unwrap();
    write_pack(packs.path(), "six==1.16.0\n");
    let env = Env::new(&[packs.path().to_str().unwrap()]);
    let out = env.sensorctl(&["reload", "--register-all", "--register-setup-virtualenvs"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("pack venvpack: creating virtualenv"),
        "progress is shown: {stdout}"
    );
    assert!(
        stdout.contains("pip:"),
        "pip's output is streamed: {stdout}"
    );
    let venv = env.data.join("virtualenvs/venvpack");
    assert!(venv.join("bin/python").exists());

    // Up to date: a second setup does nothing.
    let out = env.sensorctl(&["pack", "setup-virtualenv", "venvpack"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));

    let mut c = env.start_container(&["--sensor-ref", "venvpack.UsesSix"]);
    assert!(
        common::wait_until(T, || !env.instances_of("venvpack.imported").is_empty()),
        "{}",
        c.log()
    );
    assert!(c.terminate(T).success());
    let i = &env.instances_of("venvpack.imported")[0];
    assert_eq!(i["payload"]["six"], "1.16.0");
    assert!(
        i["payload"]["prefix"]
            .as_str()
            .unwrap()
            .ends_with("virtualenvs/venvpack"),
        "{i}"
    );
}

#[test]
fn a_requirement_that_cannot_install_is_named_and_leaves_no_venv() {
    if !pypi_reachable() {
        assert!(
            std::env::var_os("CI").is_none(),
            "PyPI must be reachable in CI"
        );
        eprintln!("SKIP: PyPI not reachable");
        return;
    }
    let packs = tempfile::tempdir().unwrap();
    write_pack(packs.path(), "sc-no-such-package-3f9a1==1.0\n");
    let env = Env::new(&[packs.path().to_str().unwrap()]);
    let out = env.sensorctl(&["pack", "setup-virtualenv", "venvpack"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pack venvpack") && err.contains("sc-no-such-package-3f9a1==1.0"),
        "{err}"
    );
    assert!(
        !env.data.join("virtualenvs/venvpack").exists(),
        "no half-built venv is left"
    );
    let out = env.sensorctl(&["pack", "setup-virtualenv", "nosuchpack"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("pack 'nosuchpack' not found"));
}
