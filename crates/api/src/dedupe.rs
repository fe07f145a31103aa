//! Idempotency: a webhook request carrying `Idempotency-Key` (or, with
//! `api.dedupe_on_trace_tag`, `St2-Trace-Tag`) that repeats one answered
//! within `api.dedupe_window` gets the first answer back — same status,
//! body and instance id — and stores nothing new. A repeat that arrives
//! while the first is still being stored waits for it. Only 2xx answers
//! are remembered, so a retry after a 503 is tried again. Keys live in
//! memory (at most [`MAX_KEYS`]); a restart forgets them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::sync::OnceCell;

/// Most keys remembered; the oldest go first beyond it.
pub const MAX_KEYS: usize = 100_000;

/// A remembered answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    /// Comma-separated ids of the instances the request stored.
    pub instance_ids: String,
}

struct Entry {
    at: Instant,
    cell: Arc<OnceCell<Answer>>,
}

/// Keys by name, and in the order they were first seen (for expiry).
type Keys = (HashMap<String, Entry>, VecDeque<(Instant, String)>);

/// Recently answered idempotency keys.
pub struct Dedupe {
    window: Duration,
    inner: Mutex<Keys>,
}

impl Dedupe {
    /// Remember keys for `window`.
    pub fn new(window: Duration) -> Dedupe {
        Dedupe {
            window,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    fn cell(&self, key: &str) -> Arc<OnceCell<Answer>> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *guard;
        let now = Instant::now();
        while let Some((at, k)) = order.front() {
            if now.duration_since(*at) < self.window && map.len() < MAX_KEYS {
                break;
            }
            if map.get(k).is_some_and(|e| e.at == *at) {
                map.remove(k);
            }
            order.pop_front();
        }
        if let Some(e) = map.get(key) {
            if now.duration_since(e.at) < self.window {
                return e.cell.clone();
            }
        }
        let cell = Arc::new(OnceCell::new());
        map.insert(
            key.to_string(),
            Entry {
                at: now,
                cell: cell.clone(),
            },
        );
        order.push_back((now, key.to_string()));
        cell
    }

    fn forget(&self, key: &str, cell: &Arc<OnceCell<Answer>>) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if guard.0.get(key).is_some_and(|e| Arc::ptr_eq(&e.cell, cell)) {
            guard.0.remove(key);
        }
    }

    /// Run `work` unless `key` was answered recently; the answer and
    /// whether it is a replay.
    pub async fn run<F, Fut>(&self, key: Option<String>, work: F) -> (Answer, bool)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Answer>,
    {
        let Some(key) = key else {
            return (work().await, false);
        };
        let cell = self.cell(&key);
        let ran = AtomicBool::new(false);
        let answer = cell
            .get_or_init(|| async {
                ran.store(true, Ordering::Relaxed);
                work().await
            })
            .await
            .clone();
        if !(200..300).contains(&answer.status) {
            self.forget(&key, &cell);
        }
        (answer, !ran.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, id: &str) -> Answer {
        Answer {
            status,
            body: Bytes::new(),
            instance_ids: id.into(),
        }
    }

    #[tokio::test]
    async fn repeats_get_the_first_answer_failures_are_retried() {
        let d = Dedupe::new(Duration::from_secs(60));
        let (a, replay) = d
            .run(Some("k".into()), || async { answer(202, "one") })
            .await;
        assert_eq!((a.instance_ids.as_str(), replay), ("one", false));
        let (b, replay) = d
            .run(Some("k".into()), || async { answer(202, "two") })
            .await;
        assert_eq!((b.instance_ids.as_str(), replay), ("one", true));
        let (c, _) = d.run(Some("f".into()), || async { answer(503, "x") }).await;
        assert_eq!(c.status, 503);
        let (e, replay) = d.run(Some("f".into()), || async { answer(202, "y") }).await;
        assert_eq!((e.instance_ids.as_str(), replay), ("y", false));
        let short = Dedupe::new(Duration::from_millis(1));
        short
            .run(Some("k".into()), || async { answer(202, "one") })
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (g, replay) = short
            .run(Some("k".into()), || async { answer(202, "two") })
            .await;
        assert_eq!((g.instance_ids.as_str(), replay), ("two", false));
    }
}
