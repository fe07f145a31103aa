//! Catch Python sensor code errors before the sensor runs: parse and
//! byte-compile each entry point and check its class is bound at module
//! level (`python/sensor_check.py`, nothing executed or imported), and, for
//! `sensorctl sensor check`, import it in a subprocess with a deadline.
//! StackStorm registers a sensor whose class does not exist and fails only
//! when it runs; `reload` reports these as warnings (errors with
//! `--register-fail-on-sensor-errors`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

/// The checker script (also part of the embedded runtime).
const CHECKER: &str = include_str!("../python/sensor_check.py");

/// A sensor to check.
#[derive(Debug, Clone)]
pub struct CheckItem {
    /// The sensor ref (for messages).
    pub sensor_ref: String,
    /// Its entry point.
    pub file: PathBuf,
    /// The class it names.
    pub class_name: String,
}

/// What is wrong with one sensor's code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorProblem {
    /// The sensor ref.
    #[serde(default)]
    pub sensor_ref: String,
    /// The entry point.
    pub file: PathBuf,
    /// The class the metadata names.
    #[serde(rename = "class")]
    pub class_name: String,
    /// Line of a syntax error.
    pub line: Option<u32>,
    /// What is wrong.
    pub message: String,
    /// Near-miss class names.
    #[serde(default)]
    pub did_you_mean: Vec<String>,
}

impl std::fmt::Display for SensorProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": sensor '{}': {}", self.sensor_ref, self.message)?;
        match self.did_you_mean.as_slice() {
            [] => Ok(()),
            [one] => write!(f, "; did you mean '{one}'?"),
            many => write!(f, "; did you mean one of: {}?", many.join(", ")),
        }
    }
}

/// Why the check itself could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot run {python}: {source}")]
    Spawn {
        python: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

/// Wait for `child` at most `limit`; kill it after that.
fn wait_with_deadline(
    mut child: std::process::Child,
    limit: Duration,
) -> Result<std::process::Output, CheckError> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => {
                return child
                    .wait_with_output()
                    .map_err(|e| CheckError::Failed(e.to_string()))
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CheckError::Failed(format!(
                    "did not finish within {limit:?} (killed)"
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(CheckError::Failed(e.to_string())),
        }
    }
}

/// Check `items` with one `python` process (parse only).
pub fn check_sources(python: &Path, items: &[CheckItem]) -> Result<Vec<SensorProblem>, CheckError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let input: Vec<_> = items
        .iter()
        .map(|i| json!({"file": i.file, "class": i.class_name}))
        .collect();
    let mut child = Command::new(python)
        .args(["-I", "-c", CHECKER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| CheckError::Spawn {
            python: python.display().to_string(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let body = serde_json::to_vec(&input).unwrap_or_default();
        stdin
            .write_all(&body)
            .map_err(|e| CheckError::Failed(format!("cannot write to the checker: {e}")))?;
    }
    let out = wait_with_deadline(child, Duration::from_secs(60))?;
    if !out.status.success() {
        return Err(CheckError::Failed(format!(
            "the checker failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let mut problems: Vec<SensorProblem> = serde_json::from_slice(&out.stdout)
        .map_err(|e| CheckError::Failed(format!("unreadable checker output: {e}")))?;
    for p in &mut problems {
        if let Some(i) = items
            .iter()
            .find(|i| i.file == p.file && i.class_name == p.class_name)
        {
            p.sensor_ref = i.sensor_ref.clone();
        }
    }
    Ok(problems)
}

/// Import the entry point and look the class up, in a subprocess with the
/// runtime on its path, killed after `limit`: what `sensorctl sensor
/// check` adds to [`check_sources`]. `Err` holds the error (the last line
/// of the traceback, or the timeout).
pub fn import_check(
    python: &Path,
    runtime_dir: &Path,
    item: &CheckItem,
    limit: Duration,
) -> Result<(), String> {
    let script = r#"
import importlib.util, sys
path, cls = sys.argv[1], sys.argv[2]
import os
sys.path.append(os.path.dirname(path))
spec = importlib.util.spec_from_file_location("_st2sensor_check", path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
if not isinstance(getattr(mod, cls, None), type):
    raise SystemExit("importing worked, but the module has no class named %r" % cls)
"#;
    let child = Command::new(python)
        .args(["-c", script])
        .arg(&item.file)
        .arg(&item.class_name)
        .env("PYTHONPATH", runtime_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let out = wait_with_deadline(child, limit).map_err(|e| format!("the import {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)");
    Err(format!("importing {} failed: {last}", item.file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_and_missing_classes_are_found_without_running_the_code() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            p
        };
        let ok = write(
            "ok.py",
            "import os\nif True:\n    class Good(object):\n        pass\n",
        );
        let imported = write("imp.py", "from elsewhere import Good as Alias\n");
        let typo = write(
            "typo.py",
            "raise SystemExit('never run')\nclass HelloSensor(object):\n    pass\n",
        );
        let broken = write("broken.py", "class A:\n    def f(self)\n        pass\n");
        let star = write("star.py", "from somewhere import *\n");
        let item = |f: &PathBuf, c: &str| CheckItem {
            sensor_ref: format!("p.{c}"),
            file: f.clone(),
            class_name: c.into(),
        };
        let problems = check_sources(
            Path::new("python3"),
            &[
                item(&ok, "Good"),
                item(&imported, "Alias"),
                item(&typo, "HeloSensor"),
                item(&broken, "A"),
                item(&star, "Anything"),
                item(&dir.path().join("missing.py"), "X"),
            ],
        )
        .unwrap();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert_eq!(problems[0].did_you_mean, vec!["HelloSensor"]);
        assert!(
            problems[0]
                .to_string()
                .contains("did you mean 'HelloSensor'?"),
            "{}",
            problems[0]
        );
        assert_eq!(problems[0].sensor_ref, "p.HeloSensor");
        assert_eq!(problems[1].line, Some(2));
        assert!(
            problems[1].message.starts_with("syntax error"),
            "{}",
            problems[1]
        );
        assert!(
            problems[1].to_string().contains("broken.py:2"),
            "{}",
            problems[1]
        );
        assert!(
            problems[2].message.contains("cannot read"),
            "{}",
            problems[2]
        );
    }
}
