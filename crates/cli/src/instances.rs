//! Opening the trigger-instance log of a data directory
//! (`<data-dir>/log/`), and the one-time migration of instances an earlier
//! release kept in sled.

use std::sync::Arc;

use anyhow::{Context, Result};
use eventlog::{instance::uuid_v7_ms, Log, RecordBatch};
use store::Store;

use crate::config::Settings;

/// Instances migrated per batch (one group commit each).
const MIGRATE_BATCH: usize = 4096;
/// A progress line every this many instances.
const MIGRATE_PROGRESS: u64 = 100_000;

/// Where a data directory's log lives.
pub fn log_dir(settings: &Settings) -> std::path::PathBuf {
    settings.data_dir.join("log")
}

/// Open the log, then move any instances of an earlier release's sled tree
/// into it (once: the tree is dropped after). `say` prints the migration's
/// progress lines (the container logs them, `sensorctl` writes stderr).
pub fn open(settings: &Settings, store: &Store, say: &dyn Fn(&str)) -> Result<Arc<Log>> {
    let dir = log_dir(settings);
    let log = Log::open(&dir, settings.log.clone())
        .with_context(|| format!("cannot open the trigger-instance log in {}", dir.display()))?;
    migrate(store, &log, say)?;
    Ok(Arc::new(log))
}

/// Copy the legacy sled instances into `log`, oldest first, keeping their
/// ids and times. Resumable: instances up to the log's newest one (by id,
/// which sorts by time) are skipped, so a crash mid-way duplicates nothing.
pub fn migrate(store: &Store, log: &Log, say: &dyn Fn(&str)) -> Result<Option<u64>> {
    let Some(legacy) = store.legacy_instances()? else {
        return Ok(None);
    };
    let total = legacy.len() as u64;
    let newest: Option<[u8; 16]> = log
        .read_back(u64::MAX, 1)?
        .first()
        .and_then(|r| eventlog::query::decode(r.seq, &r.body))
        .and_then(|i| uuid::Uuid::parse_str(&i.id).ok())
        .map(|u| *u.as_bytes());
    say(&format!(
        "migrating {total} trigger instances from the database of an earlier release into {}",
        log.dir().display()
    ));
    let mut batch = RecordBatch::new();
    let (mut moved, mut seen) = (0u64, 0u64);
    let flush = |batch: &mut RecordBatch| -> Result<()> {
        let b = std::mem::take(batch);
        log.append(b)
            .wait_blocking()
            .context("migrating trigger instances")?;
        Ok(())
    };
    for item in legacy.iter() {
        let (key, body) = item?;
        seen += 1;
        if newest.is_some_and(|n| key <= n) {
            continue;
        }
        // A batch's records share one append time: the newest id's, so no
        // record's append time is before its id's (what `get ID` relies on).
        batch.ts_ms = uuid_v7_ms(&uuid::Uuid::from_bytes(key)).or(batch.ts_ms);
        batch.push(&body);
        moved += 1;
        if batch.len() >= MIGRATE_BATCH {
            flush(&mut batch)?;
        }
        if seen % MIGRATE_PROGRESS == 0 {
            say(&format!("migrating trigger instances: {seen}/{total}"));
        }
    }
    if !batch.is_empty() {
        flush(&mut batch)?;
    }
    legacy.drop_tree()?;
    say(&format!(
        "migrated {moved} trigger instances into the log ({} were already there)",
        seen - moved
    ));
    Ok(Some(moved))
}
