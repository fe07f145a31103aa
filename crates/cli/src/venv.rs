//! Pack virtualenvs: `<data-dir>/virtualenvs/<pack>`, created as StackStorm
//! makes them: `python3 -m venv --system-site-packages` (st2's
//! `virtualenv_opts` default; `virtualenv.system_site_packages`) so sensors
//! see what the host interpreter has (eventlet above all), then filled with
//! pip from `virtualenv.always_install` (`six`, as st2 always installs it)
//! and the pack's `requirements.txt`.
//!
//! Needs no database, so it runs in `sensorctl` whether or not a container
//! runs. A venv is marked ready only when complete; a failed setup removes
//! it, so sensors never start on half an environment.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use container::runtime::{virtualenv_dir, VIRTUALENV_READY};
use md5::{Digest, Md5};

use crate::config::Settings;

/// What setting up one pack did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    UpToDate,
}

/// Every loaded pack (ref, dir) with a `requirements.txt`.
pub fn packs_with_requirements(settings: &Settings) -> Vec<(String, PathBuf)> {
    let report = content::load_packs(&settings.load_options());
    report
        .packs
        .into_iter()
        .filter(|p| p.pack.path.join("requirements.txt").is_file())
        .map(|p| (p.pack.pack_ref, p.pack.path))
        .collect()
}

/// The directory of pack `pack_ref` on the search path.
pub fn pack_dir(settings: &Settings, pack_ref: &str) -> Result<PathBuf> {
    let report = content::load_packs(&settings.load_options());
    match report
        .packs
        .into_iter()
        .find(|p| p.pack.pack_ref == pack_ref)
    {
        Some(p) => Ok(p.pack.path),
        None => bail!(
            "pack '{pack_ref}' not found on the packs path {:?} (or its pack.yaml does not load)",
            settings.packs_paths
        ),
    }
}

/// Create (or re-create) the pack's virtualenv and install its requirements,
/// printing progress. An existing ready venv with unchanged requirements is
/// left alone unless `recreate`.
pub fn setup(
    settings: &Settings,
    pack_ref: &str,
    pack_dir: &Path,
    recreate: bool,
) -> Result<Outcome> {
    let dir = virtualenv_dir(&settings.data_dir, pack_ref);
    let requirements = pack_dir.join("requirements.txt");
    // The options are part of what the venv was made from: changing them
    // makes it again.
    let wanted = requirements_hash(&requirements, &settings.virtualenv)?;
    let ready = dir.join(VIRTUALENV_READY);
    if !recreate && std::fs::read_to_string(&ready).ok().as_deref() == Some(wanted.as_str()) {
        println!(
            "pack {pack_ref}: virtualenv {} is up to date",
            dir.display()
        );
        return Ok(Outcome::UpToDate);
    }
    let started = Instant::now();
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("pack {pack_ref}: cannot remove {}", dir.display()))?;
    }
    let result = build(settings, pack_ref, &dir, &requirements);
    if let Err(e) = result {
        // Never leave half an environment for sensors to start on.
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    std::fs::write(&ready, &wanted).with_context(|| format!("cannot write {}", ready.display()))?;
    println!(
        "pack {pack_ref}: virtualenv ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(Outcome::Created)
}

fn build(settings: &Settings, pack_ref: &str, dir: &Path, requirements: &Path) -> Result<()> {
    let python = &settings.container.python_binary;
    println!(
        "pack {pack_ref}: creating virtualenv {} with {python} -m venv",
        dir.display()
    );
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut venv = Command::new(python);
    venv.args(["-m", "venv"]);
    if settings.virtualenv.system_site_packages {
        venv.arg("--system-site-packages");
    }
    let out = venv
        .arg(dir)
        .output()
        .with_context(|| format!("pack {pack_ref}: cannot run {python} -m venv"))?;
    if !out.status.success() {
        bail!(
            "pack {pack_ref}: `{python} -m venv` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let always = &settings.virtualenv.always_install;
    let has_requirements = requirements.is_file();
    if !has_requirements && always.is_empty() {
        println!("pack {pack_ref}: no requirements.txt, nothing to install");
        return Ok(());
    }
    let mut pip = Command::new(dir.join("bin/python"));
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
    ]);
    if has_requirements {
        println!("pack {pack_ref}: installing {}", requirements.display());
        pip.arg("-r").arg(requirements);
    }
    if !always.is_empty() {
        println!(
            "pack {pack_ref}: installing {} (virtualenv.always_install)",
            always.join(" ")
        );
        pip.args(always);
    }
    let mut child = pip
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("pack {pack_ref}: cannot run pip"))?;
    // Progress: pip's stdout line by line as it comes; stderr kept for the error.
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        stderr
            .map(|e| {
                BufReader::new(e)
                    .lines()
                    .map_while(Result::ok)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("  pip: {line}");
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("pack {pack_ref}: waiting for pip"))?;
    let err_lines = err_thread.join().unwrap_or_default();
    if !status.success() {
        let culprit = failed_requirement(&err_lines);
        let detail: Vec<&String> = err_lines.iter().filter(|l| l.contains("ERROR")).collect();
        let detail = detail
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        match culprit {
            Some(req) => bail!(
                "pack {pack_ref}: pip could not install requirement '{req}' from {}: {detail}",
                requirements.display()
            ),
            None => bail!(
                "pack {pack_ref}: pip install -r {} failed ({status}): {detail}",
                requirements.display()
            ),
        }
    }
    Ok(())
}

/// The requirement pip names in its "no matching distribution" errors.
fn failed_requirement(lines: &[String]) -> Option<String> {
    for l in lines {
        for marker in [
            "No matching distribution found for ",
            "satisfies the requirement ",
        ] {
            if let Some(rest) = l.split(marker).nth(1) {
                return Some(rest.split(" (").next().unwrap_or(rest).trim().to_string());
            }
        }
    }
    None
}

/// What a ready venv was made from: requirements.txt and the options.
fn requirements_hash(path: &Path, opts: &crate::config::VirtualenvSettings) -> Result<String> {
    let mut bytes = match content::fsread::read_bounded(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // Venvs made before these options existed hash requirements.txt alone;
    // the defaults differ from what they were made with, so they are remade.
    bytes.extend_from_slice(
        format!(
            "\n#system_site_packages={} always_install={}",
            opts.system_site_packages,
            opts.always_install.join(",")
        )
        .as_bytes(),
    );
    Ok(format!("{:x}", Md5::digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_failed_requirement() {
        let lines = vec![
            "ERROR: Could not find a version that satisfies the requirement nope-pkg==1.0 (from versions: none)".to_string(),
            "ERROR: No matching distribution found for nope-pkg==1.0".to_string(),
        ];
        assert_eq!(failed_requirement(&lines).as_deref(), Some("nope-pkg==1.0"));
        assert_eq!(failed_requirement(&["boom".to_string()]), None);
    }
}
