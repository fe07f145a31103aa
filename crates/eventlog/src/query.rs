//! Queries over the log, streamed in bounded batches: whatever the log's
//! size, a query holds at most one batch of records in memory.

use crate::error::LogError;
use crate::instance::{rfc3339_ms, TriggerInstance};
use crate::EventLog;

/// Records read per step.
const STEP: usize = 512;

/// Which way a listing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Newest first (the default, like `st2 trigger-instance list`).
    NewestFirst,
    /// Oldest first (paging forward with `after`).
    OldestFirst,
}

/// Which instances to list.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    /// Only instances whose trigger ref or trigger type ref equals this.
    pub trigger: Option<String>,
    /// Only instances from this sensor.
    pub sensor: Option<String>,
    /// Only instances with this status.
    pub status: Option<String>,
    /// Only instances at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only seqs greater than this; the listing then runs oldest first.
    pub after: Option<u64>,
    /// Only seqs smaller than this.
    pub before: Option<u64>,
    /// At most this many; 0 = all.
    pub limit: usize,
}

impl InstanceFilter {
    /// The order results come in.
    pub fn order(&self) -> Order {
        if self.after.is_some() {
            Order::OldestFirst
        } else {
            Order::NewestFirst
        }
    }

    /// Whether an instance passes the field filters (not seq or time).
    pub fn matches(&self, i: &TriggerInstance) -> bool {
        self.trigger
            .as_ref()
            .is_none_or(|t| *t == i.trigger || *t == i.trigger_type)
            && self
                .sensor
                .as_ref()
                .is_none_or(|s| Some(s) == i.sensor.as_ref())
            && self.status.as_ref().is_none_or(|s| *s == i.status)
    }

    fn since_ms(&self) -> Result<Option<u64>, LogError> {
        match &self.since {
            None => Ok(None),
            Some(s) => rfc3339_ms(s).map(Some).ok_or_else(|| {
                LogError::Invalid(format!(
                    "--since '{s}' is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)"
                ))
            }),
        }
    }
}

/// Decode a record; a body that is not an instance is reported and skipped.
pub fn decode(seq: u64, body: &[u8]) -> Option<TriggerInstance> {
    match TriggerInstance::from_record(seq, body) {
        Ok(i) => Some(i),
        Err(e) => {
            tracing::warn!(
                "trigger-instance log: record {seq} is not a trigger instance ({e}); skipped"
            );
            None
        }
    }
}

/// Hand every instance matching `f` to `each`, in `f.order()`, until
/// `each` returns false or `f.limit` were given.
pub fn scan(
    log: &dyn EventLog,
    f: &InstanceFilter,
    each: impl FnMut(TriggerInstance) -> bool,
) -> Result<(), LogError> {
    scan_with_status(log, f, &|_| {}, each)
}

/// [`scan`], with `resolve` setting each instance's `status` (from what
/// its consumers did) before the filters look at it.
pub fn scan_with_status(
    log: &dyn EventLog,
    f: &InstanceFilter,
    resolve: &dyn Fn(&mut TriggerInstance),
    mut each: impl FnMut(TriggerInstance) -> bool,
) -> Result<(), LogError> {
    let since = f.since_ms()?;
    let limit = if f.limit == 0 { usize::MAX } else { f.limit };
    let before = f.before.unwrap_or(u64::MAX);
    let mut given = 0usize;
    // Decode a record and hand it on if it passes the filters; false
    // stops the scan.
    let mut give = |seq: u64, body: &[u8]| -> bool {
        let Some(mut i) = decode(seq, body) else {
            return true;
        };
        resolve(&mut i);
        let too_old = since.is_some_and(|ms| {
            crate::instance::rfc3339_ms(&i.occurrence_time).is_some_and(|t| t < ms)
        });
        if too_old || !f.matches(&i) {
            return true;
        }
        given += 1;
        each(i) && given < limit
    };
    match f.order() {
        Order::NewestFirst => {
            let mut upto = before;
            loop {
                let recs = log.read_back(upto, STEP)?;
                let Some(last) = recs.last() else {
                    return Ok(());
                };
                upto = last.seq;
                for r in recs {
                    // Append times only grow: everything further is older.
                    if since.is_some_and(|ms| r.ts_ms < ms) {
                        return Ok(());
                    }
                    if !give(r.seq, &r.body) {
                        return Ok(());
                    }
                }
            }
        }
        Order::OldestFirst => {
            let mut from = f.after.map(|a| a + 1).unwrap_or(1);
            if let Some(ms) = since {
                from = from.max(log.seq_at_time(ms)?);
            }
            loop {
                let recs = log.read(from, STEP)?;
                let Some(last) = recs.last() else {
                    return Ok(());
                };
                from = last.seq + 1;
                for r in recs {
                    if r.seq >= before {
                        return Ok(());
                    }
                    if !give(r.seq, &r.body) {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// One instance by UUID id or by seq (a plain number).
pub fn get(log: &dyn EventLog, id_or_seq: &str) -> Result<Option<TriggerInstance>, LogError> {
    if let Ok(seq) = id_or_seq.parse::<u64>() {
        let recs = log.read(seq, 1)?;
        return Ok(recs
            .into_iter()
            .find(|r| r.seq == seq)
            .and_then(|r| decode(r.seq, &r.body)));
    }
    let uuid = uuid::Uuid::parse_str(id_or_seq).map_err(|_| {
        LogError::Invalid(format!(
            "'{id_or_seq}' is neither a trigger instance id (a UUID) nor a seq (a number)"
        ))
    })?;
    Ok(log.find_id(&uuid)?.and_then(|r| decode(r.seq, &r.body)))
}
