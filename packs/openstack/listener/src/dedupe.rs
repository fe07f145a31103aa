//! `_unique_id`s of notifications already stored, for a time window
//! (oslo keeps the last 16): a redelivered copy is acked, not dispatched
//! again. Bounded: at most [`MAX_IDS`] ids, the oldest forgotten first.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Most ids remembered, whatever the window.
pub const MAX_IDS: usize = 100_000;

/// The remembered ids.
#[derive(Debug)]
pub struct Dedupe {
    window: Duration,
    seen: HashSet<String>,
    order: VecDeque<(Instant, String)>,
}

impl Dedupe {
    /// Remember ids for `window` (zero: remember nothing).
    pub fn new(window: Duration) -> Dedupe {
        Dedupe {
            window,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((t, _)) = self.order.front() {
            if now.duration_since(*t) < self.window && self.order.len() <= MAX_IDS {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.seen.remove(&id);
            }
        }
    }

    /// Whether `id` was stored within the window.
    pub fn seen(&mut self, id: &str) -> bool {
        self.expire(Instant::now());
        self.seen.contains(id)
    }

    /// `id`'s instance is stored.
    pub fn insert(&mut self, id: String) {
        if self.window.is_zero() {
            return;
        }
        let now = Instant::now();
        if self.seen.insert(id.clone()) {
            self.order.push_back((now, id));
        }
        self.expire(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_bound() {
        let mut d = Dedupe::new(Duration::from_secs(60));
        assert!(!d.seen("a"));
        d.insert("a".into());
        assert!(d.seen("a"));
        for n in 0..MAX_IDS + 10 {
            d.insert(n.to_string());
        }
        assert!(!d.seen("a"), "the oldest is forgotten past the bound");
        assert!(d.order.len() <= MAX_IDS);
        let mut z = Dedupe::new(Duration::ZERO);
        z.insert("a".into());
        assert!(!z.seen("a"));
    }
}
