//! [`Sinks`]: the running set of sinks — started from the config, changed
//! by `reload` without a restart, paused, resumed, listed, retried.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use eventlog::EventLog;
use serde::Serialize;
use store::{DeadLetter, SinkFlags, SinkState as Letters};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::destination::Destination;
use crate::runner::Runner;
use crate::shared::{Shared, SinkState, SinkView};
use crate::spec::{SinkSpec, Start};
use crate::status::{Resolver, SinkSnapshot};
use crate::SinkError;

/// How long a stopping sink may take to notice (it drops its delivery).
const STOP_DEADLINE: Duration = Duration::from_secs(5);

struct Running {
    spec: SinkSpec,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What a reload changed.
#[derive(Debug, Default, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ApplyReport {
    /// Sinks started.
    pub added: Vec<String>,
    /// Sinks stopped and forgotten (cursor, dead letters, flags).
    pub removed: Vec<String>,
    /// Sinks restarted with new settings (cursor kept).
    pub changed: Vec<String>,
    /// Sinks left running.
    pub unchanged: usize,
}

/// The sinks of one container.
pub struct Sinks {
    log: Arc<dyn EventLog>,
    letters: Letters,
    running: Mutex<BTreeMap<String, Running>>,
    apply_lock: tokio::sync::Mutex<()>,
}

/// Check a whole `sinks:` list: names valid and unique.
pub fn check_specs(specs: &[SinkSpec]) -> Result<(), SinkError> {
    let mut seen = std::collections::BTreeSet::new();
    for (n, s) in specs.iter().enumerate() {
        if !crate::spec::valid_name(&s.name) {
            return Err(SinkError::Config(format!(
                "sinks[{n}].name: '{}' must be 1-64 characters of A-Z a-z 0-9 - _",
                s.name
            )));
        }
        if !seen.insert(s.name.as_str()) {
            return Err(SinkError::Config(format!(
                "sinks[{n}].name: '{}' is used by two sinks",
                s.name
            )));
        }
        if s.batch_max == 0 {
            return Err(SinkError::Config(format!(
                "sinks[{n}] ('{}'): batch_max must be at least 1",
                s.name
            )));
        }
    }
    Ok(())
}

impl Sinks {
    /// No sinks yet; [`Sinks::apply`] starts them.
    pub fn new(log: Arc<dyn EventLog>, letters: Letters) -> Arc<Sinks> {
        Arc::new(Sinks {
            log,
            letters,
            running: Mutex::new(BTreeMap::new()),
            apply_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn running(&self) -> MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make the running set match `specs`: start new sinks, restart
    /// changed ones (keeping their cursor), stop and forget removed ones.
    /// Every new destination is built first: a bad entry changes nothing.
    pub async fn apply(&self, specs: Vec<SinkSpec>) -> Result<ApplyReport, SinkError> {
        check_specs(&specs)?;
        let _one = self.apply_lock.lock().await;
        let mut report = ApplyReport::default();
        let current: BTreeMap<String, SinkSpec> = self
            .running()
            .iter()
            .map(|(k, r)| (k.clone(), r.spec.clone()))
            .collect();
        let mut start = Vec::new();
        for spec in specs.iter() {
            match current.get(&spec.name) {
                Some(old) if old == spec => report.unchanged += 1,
                other => {
                    let dest = Destination::new(spec)
                        .map_err(|e| SinkError::Config(format!("sink '{}': {e}", spec.name)))?;
                    if other.is_some() {
                        report.changed.push(spec.name.clone());
                    } else {
                        report.added.push(spec.name.clone());
                    }
                    start.push((spec.clone(), dest));
                }
            }
        }
        let wanted: std::collections::BTreeSet<&str> =
            specs.iter().map(|s| s.name.as_str()).collect();
        report.removed = current
            .keys()
            .filter(|k| !wanted.contains(k.as_str()))
            .cloned()
            .collect();
        let stopping: Vec<Running> = {
            let mut run = self.running();
            report
                .removed
                .iter()
                .chain(report.changed.iter())
                .filter_map(|n| run.remove(n))
                .collect()
        };
        for r in stopping {
            stop(r).await;
        }
        for name in &report.removed {
            self.log.delete_cursor(&crate::spec::cursor_name(name))?;
            self.letters.forget(name)?;
            tracing::info!("sink '{name}' removed: its cursor and dead letters are gone");
        }
        for (spec, dest) in start {
            let running = self.start(spec, dest)?;
            self.running().insert(running.spec.name.clone(), running);
        }
        Ok(report)
    }

    fn start(&self, spec: SinkSpec, dest: Destination) -> Result<Running, SinkError> {
        let initial = match spec.start {
            Start::Latest => self.log.last_seq(),
            Start::Earliest => self.log.first_seq().saturating_sub(1),
        };
        let cursor = self.log.open_cursor(&spec.cursor_name(), initial)?;
        let flags = self.letters.flags(&spec.name)?;
        let shared = Arc::new(Shared::new(&spec, cursor, flags.paused));
        {
            let mut run = shared.run();
            for l in self.letters.dead_letters(&spec.name)? {
                if l.requeued {
                    run.requeued.insert(l.seq);
                } else {
                    run.dead.insert(l.seq);
                }
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        tracing::info!(
            "sink '{}' ({}) started at seq {}{}",
            spec.name,
            spec.kind.type_name(),
            cursor + 1,
            if flags.paused { " (paused)" } else { "" }
        );
        let runner = Runner {
            spec: spec.clone(),
            shared: shared.clone(),
            log: self.log.clone(),
            letters: self.letters.clone(),
            dest,
            stop: stop_rx,
            ahead: Default::default(),
        };
        let task = tokio::spawn(runner.run());
        Ok(Running {
            spec,
            shared,
            stop: stop_tx,
            task,
        })
    }

    /// Stop every sink (shutdown). In-flight deliveries are dropped and
    /// redone at the next start.
    pub async fn stop(&self) {
        let _one = self.apply_lock.lock().await;
        let all: Vec<Running> = std::mem::take(&mut *self.running()).into_values().collect();
        for r in all {
            stop(r).await;
        }
    }

    fn shared(&self, name: &str) -> Result<Arc<Shared>, SinkError> {
        self.running()
            .get(name)
            .map(|r| r.shared.clone())
            .ok_or_else(|| SinkError::NotFound(name.to_string()))
    }

    /// Every sink, by name.
    pub fn list(&self) -> Vec<SinkView> {
        let last = self.log.last_seq();
        self.running()
            .values()
            .map(|r| r.shared.view(last))
            .collect()
    }

    /// A sink's dead letters, oldest first.
    pub fn dead_letters(&self, name: &str) -> Result<Vec<DeadLetter>, SinkError> {
        self.shared(name)?;
        Ok(self.letters.dead_letters(name)?)
    }

    /// Queue dead letters (by id or seq; all when `None`) for re-delivery,
    /// in seq order, before anything new. Returns how many.
    pub fn retry(&self, name: &str, which: Option<&[String]>) -> Result<usize, SinkError> {
        let shared = self.shared(name)?;
        let seqs = self.letters.requeue(name, which)?;
        {
            let mut run = shared.run();
            for seq in &seqs {
                run.dead.remove(seq);
                run.requeued.insert(*seq);
            }
        }
        shared.wake.notify_one();
        Ok(seqs.len())
    }

    /// Pause (`true`) or resume a sink; remembered across restarts.
    pub fn set_paused(&self, name: &str, paused: bool) -> Result<SinkView, SinkError> {
        let shared = self.shared(name)?;
        self.letters.set_flags(name, &SinkFlags { paused })?;
        {
            let mut run = shared.run();
            run.paused = paused;
            run.state = if paused {
                SinkState::Paused
            } else {
                SinkState::Ok
            };
        }
        shared.wake.notify_one();
        tracing::info!(
            "sink '{name}' {}",
            if paused { "paused" } else { "resumed" }
        );
        Ok(shared.view(self.log.last_seq()))
    }

    /// Statuses of instances as the running sinks see them now.
    pub fn resolver(&self) -> Resolver {
        Resolver::new(
            self.running()
                .values()
                .map(|r| {
                    let run = r.shared.run();
                    SinkSnapshot {
                        name: r.spec.name.clone(),
                        selector: r.spec.selector.clone(),
                        cursor: r.shared.cursor(),
                        retrying: run.retrying,
                        dead: run.dead.clone(),
                        requeued: run.requeued.clone(),
                    }
                })
                .collect(),
        )
    }

    /// The shared state of every sink (metrics).
    pub(crate) fn all_shared(&self) -> Vec<Arc<Shared>> {
        self.running().values().map(|r| r.shared.clone()).collect()
    }

    /// The log the sinks read.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }
}

async fn stop(r: Running) {
    let _ = r.stop.send(true);
    r.shared.wake.notify_one();
    let mut task = r.task;
    if tokio::time::timeout(STOP_DEADLINE, &mut task)
        .await
        .is_err()
    {
        tracing::warn!(
            "sink '{}' did not stop within {STOP_DEADLINE:?}; aborted",
            r.spec.name
        );
        task.abort();
    }
}

/// Sinks as the database and log know them when no container runs:
/// configured specs with their stored cursor, dead letters and flags.
pub fn offline_views(
    specs: &[SinkSpec],
    log: &dyn EventLog,
    letters: &Letters,
) -> Result<Vec<SinkView>, SinkError> {
    let last = log.last_seq();
    specs
        .iter()
        .map(|s| {
            let cursor = log.cursor(&s.cursor_name());
            let flags = letters.flags(&s.name)?;
            Ok(SinkView {
                name: s.name.clone(),
                type_name: s.kind.type_name().into(),
                state: if flags.paused {
                    SinkState::Paused
                } else {
                    SinkState::Stopped
                },
                cursor: cursor.unwrap_or(0),
                lag: cursor.map(|c| last.saturating_sub(c)).unwrap_or(0),
                delivered: 0,
                retries: 0,
                dead_letters: letters.dead_letter_count(&s.name) as u64,
                last_error: None,
                triggers: s.selector.triggers(),
                sensors: s.selector.sensors(),
            })
        })
        .collect()
}

/// [`Resolver`] from what is stored, when no container runs. A sink that
/// never ran (no cursor) leaves what it selects `pending`.
pub fn offline_resolver(
    specs: &[SinkSpec],
    log: &dyn EventLog,
    letters: &Letters,
) -> Result<Resolver, SinkError> {
    let mut snaps = Vec::new();
    for s in specs {
        let mut snap = SinkSnapshot {
            name: s.name.clone(),
            selector: s.selector.clone(),
            cursor: log.cursor(&s.cursor_name()).unwrap_or(0),
            retrying: None,
            dead: Default::default(),
            requeued: Default::default(),
        };
        for l in letters.dead_letters(&s.name)? {
            if l.requeued {
                snap.requeued.insert(l.seq);
            } else {
                snap.dead.insert(l.seq);
            }
        }
        snaps.push(snap);
    }
    Ok(Resolver::new(snaps))
}
