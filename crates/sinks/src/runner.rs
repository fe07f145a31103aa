//! One sink's task: read after the cursor, deliver, move the cursor.
//!
//! The cursor moves only past instances the destination confirmed, that
//! the filters did not select, or that are durably dead-lettered. Stopping
//! (reload, shutdown) drops an in-flight delivery: its instances are
//! delivered again by the next run (at-least-once; duplicates are bounded
//! by one batch).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use eventlog::{EventLog, TriggerInstance};
use store::{DeadLetter, SinkState as Letters};
use tokio::sync::watch;

use crate::destination::{Destination, Failure, Head, Item};
use crate::retry;
use crate::shared::{Shared, SinkState};
use crate::spec::SinkSpec;

/// Longest idle wait before the loop looks around again.
const IDLE: Duration = Duration::from_secs(1);

/// Records read from the log at once, whatever `batch_max` is: each read
/// seeks through the segment's sparse index, so reading one record per
/// delivery cost ~1 ms (measured: an HTTP sink at 763/s against the
/// server's 7.9k/s). ~300 KiB at 300 B a record.
const READ_AHEAD: usize = 1024;

/// Everything one run needs.
pub(crate) struct Runner {
    pub spec: SinkSpec,
    pub shared: Arc<Shared>,
    pub log: Arc<dyn EventLog>,
    pub letters: Letters,
    pub dest: Destination,
    pub stop: watch::Receiver<bool>,
    /// Records read ahead of the cursor, oldest first.
    pub ahead: std::collections::VecDeque<eventlog::StoredRecord>,
}

/// Why a wait or a delivery ended early.
enum Interrupt {
    Stop,
}

impl Runner {
    pub async fn run(mut self) {
        let mut progress = self.log.subscribe();
        loop {
            if self.stopped() {
                return;
            }
            if self.shared.run().paused {
                self.set_state(SinkState::Paused);
                if self.idle(&mut progress, IDLE).await.is_err() {
                    return;
                }
                continue;
            }
            if !self.shared.run().requeued.is_empty() {
                if self.redeliver_dead_letters().await.is_err() {
                    return;
                }
                continue;
            }
            self.set_state(SinkState::Ok);
            let from = self.shared.cursor() + 1;
            let recs = match self.next_records(from) {
                Ok(r) => r,
                Err(e) => {
                    self.note_error(format!("cannot read the log at seq {from}: {e}"));
                    if self.idle(&mut progress, IDLE).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let Some(last) = recs.last().map(|r| r.seq) else {
                if self.idle(&mut progress, IDLE).await.is_err() {
                    return;
                }
                continue;
            };
            let items: Vec<Item> = recs
                .iter()
                .filter_map(|r| {
                    let h = match serde_json::from_slice::<Head>(&r.body) {
                        Ok(h) if r.body.len() > 1 => h,
                        _ => {
                            tracing::warn!(
                                "sink '{}': record {} is not a trigger instance; skipped",
                                self.spec.name,
                                r.seq
                            );
                            return None;
                        }
                    };
                    self.spec
                        .selector
                        .selects_refs(&h.trigger, &h.trigger_type, h.sensor.as_deref())
                        .then(|| Item::from_record(r.seq, &h, &r.body, r.ts_ms))
                })
                .collect();
            if self.deliver_in_order(&items).await.is_err() {
                return;
            }
            self.move_cursor(last);
        }
    }

    /// Up to `batch_max` records from `from`, served from the read-ahead
    /// buffer (refilled with [`READ_AHEAD`] records when it runs dry or
    /// does not start at `from`).
    fn next_records(
        &mut self,
        from: u64,
    ) -> Result<Vec<eventlog::StoredRecord>, eventlog::LogError> {
        if self.ahead.front().is_none_or(|r| r.seq != from) {
            self.ahead.clear();
            let want = READ_AHEAD.max(self.spec.batch_max);
            self.ahead.extend(self.log.read(from, want)?);
        }
        let n = self.spec.batch_max.min(self.ahead.len());
        Ok(self.ahead.drain(..n).collect())
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn set_state(&self, state: SinkState) {
        let mut run = self.shared.run();
        run.state = state;
        if state != SinkState::Retrying {
            run.retrying = None;
        }
    }

    fn note_error(&self, message: String) {
        self.shared.run().last_error = Some(message);
    }

    /// Wait for new records, an operator command, `max`, or stop.
    async fn idle(
        &mut self,
        progress: &mut watch::Receiver<eventlog::Progress>,
        max: Duration,
    ) -> Result<(), Interrupt> {
        let shared = self.shared.clone();
        tokio::select! {
            _ = progress.changed() => {}
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(max) => {}
            _ = self.stop.changed() => {}
        }
        if self.stopped() {
            Err(Interrupt::Stop)
        } else {
            Ok(())
        }
    }

    /// Sleep `d` unless stopped or woken by a command (pause, retry).
    async fn backoff(&mut self, d: Duration) -> Result<(), Interrupt> {
        let shared = self.shared.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = shared.wake.notified() => {}
            _ = self.stop.changed() => {}
        }
        if self.stopped() {
            Err(Interrupt::Stop)
        } else {
            Ok(())
        }
    }

    fn move_cursor(&self, seq: u64) {
        if seq <= self.shared.cursor() {
            return;
        }
        match self.log.advance_cursor(&self.spec.cursor_name(), seq) {
            Ok(()) => self.shared.cursor.store(seq, Ordering::Relaxed),
            Err(e) => {
                // The in-memory cursor moves anyway (we did deliver); the
                // file catches up at the next move or is redone after a
                // restart.
                self.shared.cursor.store(seq, Ordering::Relaxed);
                tracing::error!("sink '{}': cannot store its cursor: {e}", self.spec.name);
                self.note_error(format!("cannot store the cursor: {e}"));
            }
        }
    }

    fn delivered(&self, items: &[Item]) {
        let now = eventlog::instance::now_ms();
        for it in items {
            self.shared
                .latency
                .observe(now.saturating_sub(it.ts_ms) as f64 / 1000.0);
        }
        self.shared
            .delivered
            .fetch_add(items.len() as u64, Ordering::Relaxed);
    }

    /// Deliver `items` in order, retrying the head; what cannot be
    /// delivered is dead-lettered. Returns early only when stopped.
    async fn deliver_in_order(&mut self, items: &[Item]) -> Result<(), Interrupt> {
        let mut k = 0;
        let mut attempts = 0u32;
        // Consecutive failures for an unreachable destination.
        let mut outage = 0u32;
        while k < items.len() {
            if self.stopped() {
                return Err(Interrupt::Stop);
            }
            if self.shared.run().paused {
                self.set_state(SinkState::Paused);
                let mut progress = self.log.subscribe();
                self.idle(&mut progress, IDLE).await?;
                continue;
            }
            attempts += 1;
            let outcome = {
                let rest = &items[k..];
                let mut stop = self.stop.clone();
                tokio::select! {
                    r = self.dest.deliver(rest) => r,
                    _ = stop.changed() => return Err(Interrupt::Stop),
                }
            };
            let f = match outcome {
                Ok(()) => {
                    self.delivered(&items[k..]);
                    self.recovered(attempts);
                    return Ok(());
                }
                Err(f) => f,
            };
            let done = f.delivered.min(items.len() - k);
            if done > 0 {
                self.delivered(&items[k..k + done]);
                k += done;
                attempts = 1;
                self.move_cursor(items[k - 1].seq);
            }
            let failed = f.failed.clamp(1, items.len() - k);
            let head = &items[k..k + failed];
            if f.unavailable {
                // Not the instance's fault: wait for the destination as
                // long as it takes (backoff still grows to max_delay).
                outage += 1;
                attempts -= 1;
                self.retrying(head, &f, outage);
                let wait = retry::delay(&self.spec.retry, outage, f.retry_after);
                self.backoff(wait).await?;
                continue;
            }
            outage = 0;
            if !f.retryable || attempts >= self.spec.retry.max_attempts {
                self.dead_letter(head, &f, attempts).await;
                k += failed;
                self.move_cursor(items[k - 1].seq);
                attempts = 0;
                continue;
            }
            self.retrying(head, &f, attempts);
            let wait = retry::delay(&self.spec.retry, attempts, f.retry_after);
            self.backoff(wait).await?;
        }
        Ok(())
    }

    fn retrying(&self, head: &[Item], f: &Failure, attempts: u32) {
        self.shared.retries.fetch_add(1, Ordering::Relaxed);
        let first = head[0].seq;
        let last = head[head.len() - 1].seq;
        let was = {
            let mut run = self.shared.run();
            let was = run.state;
            run.state = SinkState::Retrying;
            run.retrying = Some((first, last));
            run.last_error = Some(f.message.clone());
            was
        };
        if was != SinkState::Retrying && f.unavailable {
            tracing::warn!(
                "sink '{}': destination unavailable at seq {first}, retrying until it is back: {}",
                self.spec.name,
                f.message
            );
        } else if was != SinkState::Retrying {
            tracing::warn!(
                "sink '{}': delivery of seq {first} failed (attempt {attempts} of {}), retrying: {}",
                self.spec.name,
                self.spec.retry.max_attempts,
                f.message
            );
        }
    }

    fn recovered(&self, attempts: u32) {
        let was = self.shared.run().state;
        self.set_state(SinkState::Ok);
        if was == SinkState::Retrying {
            tracing::info!(
                "sink '{}': delivering again (after {} attempts)",
                self.spec.name,
                attempts
            );
        }
    }

    /// Durably record `head` as dead letters (before the cursor passes it).
    async fn dead_letter(&self, head: &[Item], f: &Failure, attempts: u32) {
        let reason = if f.retryable {
            "attempts_exhausted"
        } else {
            "permanent"
        };
        let at = eventlog::instance::now_rfc3339();
        for it in head {
            let letter = DeadLetter {
                seq: it.seq,
                id: it.id.clone(),
                trigger: it.trigger.clone(),
                reason: reason.into(),
                attempts,
                last_error: f.message.clone(),
                at: at.clone(),
                requeued: false,
                instance: it.value(),
            };
            // Retry until durable: moving on without it would lose the
            // instance for this sink.
            let mut wait = Duration::from_millis(100);
            while let Err(e) = self.letters.put_dead_letter(&self.spec.name, &letter) {
                tracing::error!(
                    "sink '{}': cannot store the dead letter of seq {}: {e}; retrying",
                    self.spec.name,
                    letter.seq
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            self.shared.run().dead.insert(letter.seq);
        }
        self.shared
            .dead_lettered
            .fetch_add(head.len() as u64, Ordering::Relaxed);
        {
            let mut run = self.shared.run();
            run.last_error = Some(f.message.clone());
            run.state = SinkState::Ok;
            run.retrying = None;
        }
        tracing::error!(
            "sink '{}': dead-lettered {} instance(s) from seq {} ({reason} after {attempts} attempt(s)): {}; see `sensorctl sink dead-letters {}`",
            self.spec.name,
            head.len(),
            head[0].seq,
            f.message,
            self.spec.name
        );
    }

    /// `sensorctl sink retry`: deliver the requeued dead letters in seq
    /// order; each delivered one leaves the list, each failing one stays
    /// (no longer requeued) with its new attempts and error.
    async fn redeliver_dead_letters(&mut self) -> Result<(), Interrupt> {
        let letters = match self.letters.dead_letters(&self.spec.name) {
            Ok(l) => l,
            Err(e) => {
                self.note_error(format!("cannot read dead letters: {e}"));
                self.shared.run().requeued.clear();
                return Ok(());
            }
        };
        for mut letter in letters.into_iter().filter(|l| l.requeued) {
            let Ok(mut inst) = serde_json::from_value::<TriggerInstance>(letter.instance.clone())
            else {
                tracing::error!(
                    "sink '{}': dead letter of seq {} holds no instance; dropped",
                    self.spec.name,
                    letter.seq
                );
                let _ = self.letters.remove_dead_letter(&self.spec.name, letter.seq);
                self.shared.run().requeued.remove(&letter.seq);
                continue;
            };
            inst.seq = letter.seq;
            let item = [Item::new(&inst, eventlog::instance::now_ms())];
            let mut attempts = 0u32;
            let mut outage = 0u32;
            loop {
                if self.stopped() {
                    return Err(Interrupt::Stop);
                }
                attempts += 1;
                let outcome = {
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        r = self.dest.deliver(&item) => r,
                        _ = stop.changed() => return Err(Interrupt::Stop),
                    }
                };
                match outcome {
                    Ok(()) => {
                        self.delivered(&item);
                        if let Err(e) = self.letters.remove_dead_letter(&self.spec.name, letter.seq)
                        {
                            tracing::error!(
                                "sink '{}': delivered dead letter {} but cannot remove it: {e}",
                                self.spec.name,
                                letter.seq
                            );
                        }
                        self.shared.run().requeued.remove(&letter.seq);
                        self.recovered(attempts);
                        tracing::info!(
                            "sink '{}': re-delivered dead letter seq {} ({})",
                            self.spec.name,
                            letter.seq,
                            letter.id
                        );
                        break;
                    }
                    Err(f) if f.unavailable => {
                        attempts -= 1;
                        outage += 1;
                        self.retrying(&item, &f, outage);
                        let wait = retry::delay(&self.spec.retry, outage, f.retry_after);
                        self.backoff(wait).await?;
                    }
                    Err(f) if f.retryable && attempts < self.spec.retry.max_attempts => {
                        outage = 0;
                        self.retrying(&item, &f, attempts);
                        let wait = retry::delay(&self.spec.retry, attempts, f.retry_after);
                        self.backoff(wait).await?;
                    }
                    Err(f) => {
                        letter.attempts += attempts;
                        letter.last_error = f.message.clone();
                        letter.requeued = false;
                        letter.at = eventlog::instance::now_rfc3339();
                        let _ = self.letters.put_dead_letter(&self.spec.name, &letter);
                        {
                            let mut run = self.shared.run();
                            run.requeued.remove(&letter.seq);
                            run.dead.insert(letter.seq);
                            run.last_error = Some(f.message.clone());
                        }
                        self.set_state(SinkState::Ok);
                        tracing::error!(
                            "sink '{}': re-delivery of dead letter seq {} failed again: {}",
                            self.spec.name,
                            letter.seq,
                            f.message
                        );
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}
