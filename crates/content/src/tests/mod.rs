//! Loader tests on pack trees built in temporary directories.

mod configs;
mod packs;
mod real_packs;
mod sensors;

use std::path::{Path, PathBuf};

use crate::{load_packs, ContentError, LoadOptions, LoadReport};

/// A packs directory and a configs directory in a temp dir.
struct Fixture {
    root: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            root: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// Write `text` at `rel` (under the temp root), creating directories.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    /// A valid pack `name` under `packs/`.
    fn pack(&self, name: &str) -> PathBuf {
        self.write(
            &format!("packs/{name}/pack.yaml"),
            &format!("name: {name}\ndescription: test pack\nversion: 0.1.0\nauthor: tester\n"),
        )
    }

    /// A sensor metadata file plus its entry point `sensors/<class>.py`.
    fn sensor(&self, pack: &str, file: &str, yaml: &str) -> PathBuf {
        self.write(
            &format!("packs/{pack}/sensors/sensor.py"),
            "class S: pass\n",
        );
        self.write(&format!("packs/{pack}/sensors/{file}"), yaml)
    }

    fn load(&self) -> LoadReport {
        self.load_paths(&["packs"])
    }

    fn load_paths(&self, paths: &[&str]) -> LoadReport {
        load_packs(&LoadOptions {
            packs_paths: paths.iter().map(|p| self.path(p)).collect(),
            configs_dir: self.path("configs"),
        })
    }
}

/// The one error of `report`, printed on failure.
fn only_error(report: &LoadReport) -> &ContentError {
    assert_eq!(
        report.errors.len(),
        1,
        "expected exactly one error, got {:#?}",
        messages(report)
    );
    &report.errors[0]
}

fn messages(report: &LoadReport) -> Vec<String> {
    report.errors.iter().map(ToString::to_string).collect()
}

/// Assert the message names the file (by its trailing path) and the field.
fn assert_names(err: &ContentError, file_suffix: &str, field: &str) {
    let msg = err.to_string();
    assert!(
        err.file().ends_with(file_suffix),
        "file {} in {msg}",
        err.file().display()
    );
    assert!(msg.contains(&err.file().display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("field '{field}'")),
        "expected field '{field}' in: {msg}"
    );
    assert_eq!(err.field(), Some(field), "{msg}");
}
