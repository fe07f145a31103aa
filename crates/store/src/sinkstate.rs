//! What sinks keep beside their log cursor: dead letters (tree
//! `sink_dead_letters`, keyed `<sink>\0<seq big-endian>`, so a sink's
//! letters list in log order) and operator flags such as `paused` (tree
//! `sink_flags`, keyed by sink name).
//!
//! Every write is flushed before it returns: a sink moves its cursor past
//! a dead-lettered instance only once the letter is durable, so a crash
//! never loses an instance that was neither delivered nor dead-lettered.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json::{decode, encode};
use crate::StoreError;

const DEAD: &str = "sink_dead_letters";
const FLAGS: &str = "sink_flags";

/// An instance a sink gave up on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    /// The instance's log sequence number.
    pub seq: u64,
    /// The instance id.
    pub id: String,
    /// Its trigger ref.
    pub trigger: String,
    /// `permanent` (the destination refused it) or `attempts_exhausted`.
    pub reason: String,
    /// Delivery attempts made.
    pub attempts: u32,
    /// The destination's last answer.
    pub last_error: String,
    /// When it was dead-lettered (RFC 3339).
    pub at: String,
    /// Queued for re-delivery by `sensorctl sink retry`.
    #[serde(default)]
    pub requeued: bool,
    /// The whole instance as delivered, so a retry works even after the
    /// log's retention deleted the record.
    pub instance: Value,
}

/// Operator flags of one sink.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SinkFlags {
    /// `sensorctl sink pause`: deliver nothing until resumed.
    #[serde(default)]
    pub paused: bool,
}

/// Dead letters and flags of every sink.
#[derive(Clone)]
pub struct SinkState {
    dead: sled::Tree,
    flags: sled::Tree,
}

fn key(sink: &str, seq: u64) -> Vec<u8> {
    let mut k = prefix(sink);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn prefix(sink: &str) -> Vec<u8> {
    let mut k = sink.as_bytes().to_vec();
    k.push(0);
    k
}

impl SinkState {
    pub(crate) fn open(db: &sled::Db) -> Result<SinkState, StoreError> {
        Ok(SinkState {
            dead: db.open_tree(DEAD)?,
            flags: db.open_tree(FLAGS)?,
        })
    }

    /// Record (or replace) a dead letter, durably.
    pub fn put_dead_letter(&self, sink: &str, letter: &DeadLetter) -> Result<(), StoreError> {
        self.dead.insert(key(sink, letter.seq), encode(letter))?;
        self.dead.flush()?;
        Ok(())
    }

    /// A sink's dead letters, oldest seq first.
    pub fn dead_letters(&self, sink: &str) -> Result<Vec<DeadLetter>, StoreError> {
        self.dead
            .scan_prefix(prefix(sink))
            .map(|kv| {
                let (k, v) = kv?;
                decode(DEAD, &k, &v)
            })
            .collect()
    }

    /// How many dead letters a sink holds.
    pub fn dead_letter_count(&self, sink: &str) -> usize {
        self.dead.scan_prefix(prefix(sink)).count()
    }

    /// Remove one dead letter (it was re-delivered), durably.
    pub fn remove_dead_letter(&self, sink: &str, seq: u64) -> Result<(), StoreError> {
        self.dead.remove(key(sink, seq))?;
        self.dead.flush()?;
        Ok(())
    }

    /// Queue dead letters for re-delivery: those whose id or seq is in
    /// `which`, or all when `which` is `None`. Returns their seqs.
    pub fn requeue(&self, sink: &str, which: Option<&[String]>) -> Result<Vec<u64>, StoreError> {
        let mut picked_seqs = Vec::new();
        for mut letter in self.dead_letters(sink)? {
            let picked = which.is_none_or(|ids| {
                ids.iter()
                    .any(|i| *i == letter.id || i.parse::<u64>() == Ok(letter.seq))
            });
            if picked && !letter.requeued {
                letter.requeued = true;
                self.dead.insert(key(sink, letter.seq), encode(&letter))?;
            }
            if picked {
                picked_seqs.push(letter.seq);
            }
        }
        self.dead.flush()?;
        Ok(picked_seqs)
    }

    /// Drop every dead letter and flag of a sink (it was removed).
    pub fn forget(&self, sink: &str) -> Result<(), StoreError> {
        for kv in self.dead.scan_prefix(prefix(sink)) {
            let (k, _) = kv?;
            self.dead.remove(k)?;
        }
        self.flags.remove(sink.as_bytes())?;
        self.dead.flush()?;
        self.flags.flush()?;
        Ok(())
    }

    /// A sink's flags (defaults when none were set).
    pub fn flags(&self, sink: &str) -> Result<SinkFlags, StoreError> {
        match self.flags.get(sink.as_bytes())? {
            Some(v) => decode(FLAGS, sink.as_bytes(), &v),
            None => Ok(SinkFlags::default()),
        }
    }

    /// Set a sink's flags, durably.
    pub fn set_flags(&self, sink: &str, flags: &SinkFlags) -> Result<(), StoreError> {
        self.flags.insert(sink.as_bytes(), encode(flags))?;
        self.flags.flush()?;
        Ok(())
    }

    /// Names of sinks that have dead letters or flags.
    pub fn known_sinks(&self) -> Result<Vec<String>, StoreError> {
        let mut names = std::collections::BTreeSet::new();
        for kv in self.flags.iter() {
            let (k, _) = kv?;
            names.insert(String::from_utf8_lossy(&k).into_owned());
        }
        for kv in self.dead.iter() {
            let (k, _) = kv?;
            if let Some(end) = k.iter().position(|b| *b == 0) {
                names.insert(String::from_utf8_lossy(&k[..end]).into_owned());
            }
        }
        Ok(names.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(seq: u64) -> DeadLetter {
        DeadLetter {
            seq,
            id: format!("id-{seq}"),
            trigger: "p.t".into(),
            reason: "permanent".into(),
            attempts: 1,
            last_error: "HTTP 400".into(),
            at: "2026-12-01T00:00:00Z".into(),
            requeued: false,
            instance: serde_json::json!({"seq": seq}),
        }
    }

    #[test]
    fn letters_list_in_seq_order_per_sink_and_requeue_by_id_or_seq() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let st = SinkState::open(&db).unwrap();
        for seq in [300, 2, 70] {
            st.put_dead_letter("a", &letter(seq)).unwrap();
        }
        st.put_dead_letter("ab", &letter(1)).unwrap();
        let seqs: Vec<u64> = st
            .dead_letters("a")
            .unwrap()
            .iter()
            .map(|l| l.seq)
            .collect();
        assert_eq!(seqs, vec![2, 70, 300]);
        assert_eq!(st.dead_letter_count("ab"), 1);
        assert_eq!(
            st.requeue("a", Some(&["id-70".into(), "300".into()]))
                .unwrap(),
            vec![70, 300]
        );
        let queued: Vec<u64> = st
            .dead_letters("a")
            .unwrap()
            .iter()
            .filter(|l| l.requeued)
            .map(|l| l.seq)
            .collect();
        assert_eq!(queued, vec![70, 300]);
        st.remove_dead_letter("a", 70).unwrap();
        assert_eq!(st.dead_letter_count("a"), 2);
        st.set_flags("a", &SinkFlags { paused: true }).unwrap();
        assert!(st.flags("a").unwrap().paused);
        assert_eq!(
            st.known_sinks().unwrap(),
            vec!["a".to_string(), "ab".into()]
        );
        st.forget("a").unwrap();
        assert_eq!(st.dead_letter_count("a"), 0);
        assert!(!st.flags("a").unwrap().paused);
        assert_eq!(st.dead_letter_count("ab"), 1);
    }
}
