//! StackStorm's trigger-instance status, derived (never written into the
//! log): for every sink whose filters select an instance,
//! - `delivered` once its cursor passed it and it is not a dead letter;
//! - `retrying` while the sink holds back on it or re-delivers it;
//! - `dead_letter` once the sink gave up on it;
//! - `pending` before the sink reached it.
//!
//! The instance is then `processing` if any sink is retrying it, else
//! `processing_failed` if any dead-lettered it, else `processed` if every
//! selecting sink delivered it, else `pending` (also with no sinks).

use std::collections::{BTreeMap, BTreeSet};

use eventlog::TriggerInstance;

use crate::filter::Selector;

/// One sink's view, frozen for a query.
#[derive(Debug, Clone)]
pub struct SinkSnapshot {
    /// Sink name.
    pub name: String,
    /// Its filters.
    pub selector: Selector,
    /// Last seq it finished.
    pub cursor: u64,
    /// Seqs it is retrying now.
    pub retrying: Option<(u64, u64)>,
    /// Dead-lettered seqs.
    pub dead: BTreeSet<u64>,
    /// Dead letters queued for re-delivery.
    pub requeued: BTreeSet<u64>,
}

impl SinkSnapshot {
    fn state(&self, seq: u64) -> &'static str {
        if self.requeued.contains(&seq)
            || self.retrying.is_some_and(|(a, b)| (a..=b).contains(&seq))
        {
            "retrying"
        } else if self.dead.contains(&seq) {
            "dead_letter"
        } else if seq <= self.cursor {
            "delivered"
        } else {
            "pending"
        }
    }
}

/// Computes statuses from sink snapshots.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    sinks: Vec<SinkSnapshot>,
}

impl Resolver {
    /// A resolver over these sinks.
    pub fn new(sinks: Vec<SinkSnapshot>) -> Resolver {
        Resolver { sinks }
    }

    /// Each selecting sink's state for this instance.
    pub fn per_sink(&self, i: &TriggerInstance) -> BTreeMap<String, &'static str> {
        self.sinks
            .iter()
            .filter(|s| s.selector.selects(i))
            .map(|s| (s.name.clone(), s.state(i.seq)))
            .collect()
    }

    /// The instance's status.
    pub fn status(&self, i: &TriggerInstance) -> &'static str {
        let mut any = false;
        let mut failed = false;
        let mut all_delivered = true;
        for s in self.sinks.iter().filter(|s| s.selector.selects(i)) {
            any = true;
            match s.state(i.seq) {
                "retrying" => return "processing",
                "dead_letter" => failed = true,
                "pending" => all_delivered = false,
                _ => {}
            }
        }
        if failed {
            "processing_failed"
        } else if any && all_delivered {
            "processed"
        } else {
            "pending"
        }
    }

    /// Set `i.status`.
    pub fn resolve(&self, i: &mut TriggerInstance) {
        i.status = self.status(i).to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(seq: u64, trigger: &str) -> TriggerInstance {
        let mut i =
            TriggerInstance::new(trigger.into(), trigger.into(), serde_json::json!({}), None);
        i.seq = seq;
        i
    }

    #[test]
    fn precedence_and_filters() {
        let all = Selector::default();
        let only_a = Selector::new(&["a.*".into()], &[]).unwrap();
        let r = Resolver::new(vec![
            SinkSnapshot {
                name: "one".into(),
                selector: all,
                cursor: 10,
                retrying: Some((11, 12)),
                dead: [5].into(),
                requeued: [3].into(),
            },
            SinkSnapshot {
                name: "two".into(),
                selector: only_a,
                cursor: 4,
                retrying: None,
                dead: [].into(),
                requeued: [].into(),
            },
        ]);
        assert_eq!(r.status(&inst(1, "b.x")), "processed");
        assert_eq!(r.status(&inst(1, "a.x")), "processed");
        assert_eq!(
            r.status(&inst(6, "a.x")),
            "pending",
            "two has not reached it"
        );
        assert_eq!(
            r.status(&inst(6, "b.x")),
            "processed",
            "two does not select it"
        );
        assert_eq!(r.status(&inst(5, "b.x")), "processing_failed");
        assert_eq!(
            r.status(&inst(3, "b.x")),
            "processing",
            "requeued dead letter"
        );
        assert_eq!(r.status(&inst(12, "b.x")), "processing");
        assert_eq!(r.status(&inst(13, "b.x")), "pending");
        assert_eq!(Resolver::default().status(&inst(1, "b.x")), "pending");
        let per = r.per_sink(&inst(5, "a.x"));
        assert_eq!(per["one"], "dead_letter");
        assert_eq!(per["two"], "pending");
    }
}
