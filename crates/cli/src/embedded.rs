//! The `core` pack, embedded so its internal trigger types are always
//! registered, whatever the pack search path holds.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

const CORE_FILES: &[(&str, &str)] = &[
    ("pack.yaml", include_str!("../../../packs/core/pack.yaml")),
    (
        "triggers/process_spawn.yaml",
        include_str!("../../../packs/core/triggers/process_spawn.yaml"),
    ),
    (
        "triggers/process_exit.yaml",
        include_str!("../../../packs/core/triggers/process_exit.yaml"),
    ),
    (
        "triggers/key_value_pair_create.yaml",
        include_str!("../../../packs/core/triggers/key_value_pair_create.yaml"),
    ),
    (
        "triggers/key_value_pair_update.yaml",
        include_str!("../../../packs/core/triggers/key_value_pair_update.yaml"),
    ),
    (
        "triggers/key_value_pair_delete.yaml",
        include_str!("../../../packs/core/triggers/key_value_pair_delete.yaml"),
    ),
    (
        "triggers/key_value_pair_value_change.yaml",
        include_str!("../../../packs/core/triggers/key_value_pair_value_change.yaml"),
    ),
    (
        "triggers/webhook.yaml",
        include_str!("../../../packs/core/triggers/webhook.yaml"),
    ),
    (
        "triggers/receiver_trigger.yaml",
        include_str!("../../../packs/core/triggers/receiver_trigger.yaml"),
    ),
    (
        "triggers/notification.yaml",
        include_str!("../../../packs/core/triggers/notification.yaml"),
    ),
    (
        "triggers/notification_status.yaml",
        include_str!("../../../packs/core/triggers/notification_status.yaml"),
    ),
];

/// The pack search path, with the embedded core pack appended when no
/// directory on it provides `core`.
pub fn packs_paths_with_core(paths: &[PathBuf], data_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = paths.to_vec();
    if paths
        .iter()
        .any(|p| p.join("core").join("pack.yaml").is_file())
    {
        return Ok(out);
    }
    let base = data_dir.join("runtime").join("packs");
    let core = base.join("core");
    for (rel, body) in CORE_FILES {
        let path = core.join(rel);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(*body) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
    }
    out.push(base);
    Ok(out)
}
