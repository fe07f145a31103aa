//! The datastore: StackStorm's key-value pairs with scopes, exact TTL and
//! encrypted secrets.
//!
//! Trees: `kv` keyed by `<scope>:<name>`, and `kv_expiry` keyed by
//! `<expire_at_ms big-endian><scope>:<name>` so the sweeper finds due keys
//! with one range scan. Both change together in one transaction.
//!
//! TTL is exact: every read checks the expiry, so an expired key is
//! invisible the moment it expires, whether or not the sweeper has run.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::commit::{GroupCommit, Ticket};
use crate::crypto::{CryptoError, CryptoKey};
use crate::json::{decode, encode};
use crate::StoreError;

/// Longest key name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest value, in bytes (before encryption). Leaves room under the
/// default 1 MiB frame for the JSON-RPC envelope and escaping.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;
/// Longest TTL accepted: 10 years, in seconds (a larger one was shown as
/// "no expiry" once it overflowed).
pub const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3600;
/// What secret values look like in events and masked listings.
pub const MASK: &str = "********";

const KV_TREE: &str = "kv";
const EXPIRY_TREE: &str = "kv_expiry";

/// StackStorm's datastore scopes. Sensors may only use `system`; `user`
/// keys exist for the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    System,
    User,
}

impl Scope {
    /// Parse a scope name (`system` or `user`; StackStorm's `st2kv.system`
    /// and `st2kv.user` are accepted too).
    pub fn parse(s: &str) -> Result<Scope, StoreError> {
        match s {
            "system" | "st2kv.system" => Ok(Scope::System),
            "user" | "st2kv.user" => Ok(Scope::User),
            other => Err(StoreError::Invalid(format!(
                "unknown scope '{other}' (expected \"system\" or \"user\")"
            ))),
        }
    }

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::System => "system",
            Scope::User => "user",
        }
    }
}

/// A stored key-value pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    pub name: String,
    pub scope: Scope,
    /// The value; for a secret, its ciphertext (upper-case hex).
    pub value: String,
    pub secret: bool,
    /// Expiry, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_at_ms: Option<u64>,
}

impl KeyValue {
    /// Is it expired at `now_ms`?
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// The expiry as RFC 3339, as StackStorm's `expire_timestamp`.
    pub fn expire_timestamp(&self) -> Option<String> {
        let at = self.expire_at_ms?;
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(at as i128 * 1_000_000).ok()?;
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    }

    /// The API/event shape (StackStorm's KeyValuePairAPI fields). With
    /// `mask`, a secret's value is replaced by `********`.
    pub fn to_api(&self, mask: bool) -> Value {
        json!({
            "name": self.name,
            "value": if mask && self.secret { MASK } else { self.value.as_str() },
            "secret": self.secret,
            "encrypted": self.secret,
            "scope": self.scope.as_str(),
            "expire_timestamp": self.expire_timestamp(),
        })
    }
}

/// The outcome of a write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The live value it replaced (an expired one counts as absent).
    pub before: Option<KeyValue>,
    pub after: KeyValue,
    /// Wait on it before acknowledging.
    pub ticket: Ticket,
}

/// The datastore.
#[derive(Clone)]
pub struct Datastore {
    kv: sled::Tree,
    expiry: sled::Tree,
    commit: Arc<GroupCommit>,
    crypto: Option<Arc<CryptoKey>>,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn tree_key(scope: Scope, name: &str) -> String {
    format!("{}:{name}", scope.as_str())
}

fn expiry_key(at_ms: u64, key: &str) -> Vec<u8> {
    let mut k = at_ms.to_be_bytes().to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

/// Whether `name` can name a key (not empty, at most [`MAX_NAME_BYTES`],
/// no NUL): the same rule for a remote datastore's callers.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::Invalid("key name must not be empty".into()));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(StoreError::Invalid(format!(
            "key name is {} bytes long; the limit is {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    if name.contains('\0') {
        return Err(StoreError::Invalid("key name must not contain NUL".into()));
    }
    Ok(())
}

/// Whether `value` fits a key (at most [`MAX_VALUE_BYTES`]).
pub fn check_value(name: &str, value: &str) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::Invalid(format!(
            "value of '{name}' is {} bytes long; the limit is {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

type TxResult<T> = Result<T, TransactionError<()>>;

fn tx_err(e: TransactionError<()>) -> StoreError {
    match e {
        TransactionError::Storage(e) => StoreError::Sled(e),
        TransactionError::Abort(()) => StoreError::Invalid("datastore transaction aborted".into()),
    }
}

impl Datastore {
    pub(crate) fn open(db: &sled::Db, commit: Arc<GroupCommit>) -> Result<Datastore, StoreError> {
        Ok(Datastore {
            kv: db.open_tree(KV_TREE)?,
            expiry: db.open_tree(EXPIRY_TREE)?,
            commit,
            crypto: None,
        })
    }

    /// Use this key for `encrypt`/`decrypt`.
    pub fn with_crypto(mut self, key: Option<Arc<CryptoKey>>) -> Datastore {
        self.crypto = key;
        self
    }

    /// The group committer its writes are acked through.
    pub fn commit(&self) -> &Arc<GroupCommit> {
        &self.commit
    }

    fn aad(scope: Scope, name: &str) -> String {
        tree_key(scope, name)
    }

    fn crypto(&self) -> Result<&CryptoKey, StoreError> {
        self.crypto
            .as_deref()
            .ok_or(StoreError::Crypto(CryptoError::NoKey))
    }

    /// Decrypt a secret's value in place.
    pub fn decrypt(&self, kv: &mut KeyValue) -> Result<(), StoreError> {
        if kv.secret {
            let plain =
                self.crypto()?
                    .decrypt(&Self::aad(kv.scope, &kv.name), &kv.value, &kv.name)?;
            kv.value = plain;
        }
        Ok(())
    }

    /// Whether two stored values hold the same plaintext (ciphertexts of one
    /// plaintext differ, nonces being random).
    pub fn same_value(&self, a: &KeyValue, b: &KeyValue) -> bool {
        if a.secret != b.secret {
            return false;
        }
        if !a.secret {
            return a.value == b.value;
        }
        let (mut a, mut b) = (a.clone(), b.clone());
        match (self.decrypt(&mut a), self.decrypt(&mut b)) {
            (Ok(()), Ok(())) => a.value == b.value,
            _ => a.value == b.value,
        }
    }

    /// Set a key. `ttl` in seconds applies when it is non-zero; setting
    /// again without one clears the expiry. With `encrypt`, only the
    /// ciphertext is stored.
    pub fn set(
        &self,
        scope: Scope,
        name: &str,
        value: &str,
        ttl: Option<u64>,
        encrypt: bool,
    ) -> Result<Written, StoreError> {
        check_name(name)?;
        check_value(name, value)?;
        let stored = if encrypt {
            self.crypto()?.encrypt(&Self::aad(scope, name), value)
        } else {
            value.to_string()
        };
        if let Some(t) = ttl.filter(|t| *t > MAX_TTL_SECONDS) {
            return Err(StoreError::Invalid(format!(
                "ttl of '{name}' is {t} seconds; the limit is {MAX_TTL_SECONDS} (10 years)"
            )));
        }
        let now = now_ms();
        let expire_at_ms = ttl
            .filter(|t| *t > 0)
            .map(|t| now.saturating_add(t.saturating_mul(1000)));
        let after = KeyValue {
            name: name.to_string(),
            scope,
            value: stored,
            secret: encrypt,
            expire_at_ms,
        };
        self.put(after, now)
    }

    /// Store a record as is (ciphertext stays ciphertext): `key load`.
    pub fn put_raw(&self, kv: KeyValue) -> Result<Written, StoreError> {
        check_name(&kv.name)?;
        self.put(kv, now_ms())
    }

    fn put(&self, after: KeyValue, now: u64) -> Result<Written, StoreError> {
        let key = tree_key(after.scope, &after.name);
        let bytes = encode(&after);
        let old: TxResult<Option<sled::IVec>> =
            (&self.kv, &self.expiry).transaction(|(kv, exp)| {
                let old = kv.insert(key.as_bytes(), bytes.as_slice())?;
                if let Some(old) = &old {
                    if let Ok(prev) = serde_json::from_slice::<KeyValue>(old) {
                        if let Some(at) = prev.expire_at_ms {
                            exp.remove(expiry_key(at, &key))?;
                        }
                    }
                }
                if let Some(at) = after.expire_at_ms {
                    exp.insert(expiry_key(at, &key), &[])?;
                }
                Ok::<_, ConflictableTransactionError<()>>(old)
            });
        let old = old.map_err(tx_err)?;
        let ticket = self.commit.ticket();
        let before = match old {
            Some(bytes) => Some(decode::<KeyValue>(KV_TREE, key.as_bytes(), &bytes)?)
                .filter(|kv| !kv.expired_at(now)),
            None => None,
        };
        Ok(Written {
            before,
            after,
            ticket,
        })
    }

    /// Get a live key; with `decrypt`, a secret's plaintext.
    pub fn get(
        &self,
        scope: Scope,
        name: &str,
        decrypt: bool,
    ) -> Result<Option<KeyValue>, StoreError> {
        check_name(name)?;
        let key = tree_key(scope, name);
        let Some(bytes) = self.kv.get(key.as_bytes())? else {
            return Ok(None);
        };
        let mut kv: KeyValue = decode(KV_TREE, key.as_bytes(), &bytes)?;
        if kv.expired_at(now_ms()) {
            return Ok(None);
        }
        if decrypt {
            self.decrypt(&mut kv)?;
        }
        Ok(Some(kv))
    }

    /// Delete a key. Returns the live value deleted (`None` if there was
    /// none or it had already expired) and the durability ticket.
    pub fn delete(
        &self,
        scope: Scope,
        name: &str,
    ) -> Result<(Option<KeyValue>, Ticket), StoreError> {
        check_name(name)?;
        let key = tree_key(scope, name);
        let removed = self.remove(&key)?;
        let ticket = self.commit.ticket();
        Ok((removed.filter(|kv| !kv.expired_at(now_ms())), ticket))
    }

    /// Remove `key` from both trees.
    fn remove(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let removed: TxResult<Option<KeyValue>> =
            (&self.kv, &self.expiry).transaction(|(kv, exp)| {
                let Some(bytes) = kv.get(key.as_bytes())? else {
                    return Ok(None);
                };
                let Ok(record) = serde_json::from_slice::<KeyValue>(&bytes) else {
                    // Unreadable record: remove it rather than keep garbage.
                    kv.remove(key.as_bytes())?;
                    return Ok(None);
                };
                kv.remove(key.as_bytes())?;
                if let Some(at) = record.expire_at_ms {
                    exp.remove(expiry_key(at, key))?;
                }
                Ok::<_, ConflictableTransactionError<()>>(Some(record))
            });
        removed.map_err(tx_err)
    }

    /// Hand each live key of `scope` whose name starts with `prefix` to
    /// `each`, by name, one at a time (nothing is collected) until `each`
    /// returns false.
    pub fn visit(
        &self,
        scope: Scope,
        prefix: &str,
        mut each: impl FnMut(KeyValue) -> bool,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        for item in self.kv.scan_prefix(tree_key(scope, prefix).as_bytes()) {
            let (k, v) = item?;
            let kv: KeyValue = decode(KV_TREE, &k, &v)?;
            if !kv.expired_at(now) && !each(kv) {
                break;
            }
        }
        Ok(())
    }

    /// Live keys of `scope` whose name starts with `prefix`, by name.
    pub fn list(
        &self,
        scope: Scope,
        prefix: &str,
        offset: usize,
        limit: Option<usize>,
        decrypt: bool,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let now = now_ms();
        let mut out = Vec::new();
        let mut skipped = 0;
        for item in self.kv.scan_prefix(tree_key(scope, prefix).as_bytes()) {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let (k, v) = item?;
            let mut kv: KeyValue = decode(KV_TREE, &k, &v)?;
            if kv.expired_at(now) {
                continue;
            }
            if skipped < offset {
                skipped += 1;
                continue;
            }
            if decrypt {
                self.decrypt(&mut kv)?;
            }
            out.push(kv);
        }
        Ok(out)
    }

    /// Delete every key expired at `now_ms`; returns them (for delete
    /// events) and a ticket covering the deletions.
    pub fn sweep(&self, now_ms: u64) -> Result<(Vec<KeyValue>, Ticket), StoreError> {
        let due: Vec<sled::IVec> = self
            .expiry
            .range(..expiry_key(now_ms.saturating_add(1), ""))
            .keys()
            .collect::<Result<_, _>>()?;
        let mut removed = Vec::new();
        for index_key in due {
            if let Some(kv) = self.sweep_one(&index_key)? {
                removed.push(kv);
            }
        }
        let ticket = if removed.is_empty() {
            Ticket(0)
        } else {
            self.commit.ticket()
        };
        Ok((removed, ticket))
    }

    /// Remove the key an expiry index entry points at, if that entry is
    /// still its current expiry (the key may have been set again since the
    /// scan). An entry that no longer matches its key is stale: dropped.
    fn sweep_one(&self, index_key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let Some((at_bytes, key)) = index_key.split_at_checked(8) else {
            self.expiry.remove(index_key)?;
            return Ok(None);
        };
        let at = u64::from_be_bytes(at_bytes.try_into().unwrap_or([0; 8]));
        let result: TxResult<Option<KeyValue>> =
            (&self.kv, &self.expiry).transaction(|(kv, exp)| {
                exp.remove(index_key)?;
                let Some(bytes) = kv.get(key)? else {
                    return Ok(None);
                };
                match serde_json::from_slice::<KeyValue>(&bytes) {
                    Ok(record) if record.expire_at_ms == Some(at) => {
                        kv.remove(key)?;
                        Ok::<_, ConflictableTransactionError<()>>(Some(record))
                    }
                    // Set again with another expiry (its own index entry stays).
                    Ok(_) => Ok(None),
                    Err(_) => {
                        kv.remove(key)?;
                        Ok(None)
                    }
                }
            });
        result.map_err(tx_err)
    }

    /// When the next key expires, if any does.
    pub fn next_expiry(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.expiry.first()?.and_then(|(k, _)| {
            k.get(..8)
                .map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreOptions};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        (dir, s)
    }

    #[test]
    fn set_get_delete_list() {
        let (_d, s) = store();
        let ds = &s.datastore;
        let w = ds
            .set(Scope::System, "p.S:count", "1", None, false)
            .unwrap();
        assert!(w.before.is_none());
        let w = ds
            .set(Scope::System, "p.S:count", "2", None, false)
            .unwrap();
        assert_eq!(w.before.unwrap().value, "1");
        assert_eq!(
            ds.get(Scope::System, "p.S:count", false)
                .unwrap()
                .unwrap()
                .value,
            "2"
        );
        assert!(
            ds.get(Scope::User, "p.S:count", false).unwrap().is_none(),
            "scopes are separate"
        );
        ds.set(Scope::System, "p.S:other", "x", None, false)
            .unwrap();
        ds.set(Scope::System, "q.T:z", "y", None, false).unwrap();
        let names: Vec<_> = ds
            .list(Scope::System, "p.S:", 0, None, false)
            .unwrap()
            .into_iter()
            .map(|k| k.name)
            .collect();
        assert_eq!(names, vec!["p.S:count", "p.S:other"]);
        assert_eq!(
            ds.list(Scope::System, "", 1, Some(1), false).unwrap()[0].name,
            "p.S:other"
        );
        let (gone, _) = ds.delete(Scope::System, "p.S:count").unwrap();
        assert_eq!(gone.unwrap().value, "2");
        assert!(ds.delete(Scope::System, "p.S:count").unwrap().0.is_none());
    }

    #[test]
    fn bad_names_and_values() {
        let (_d, s) = store();
        let ds = &s.datastore;
        assert!(matches!(
            ds.set(Scope::System, "", "v", None, false),
            Err(StoreError::Invalid(_))
        ));
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        assert!(matches!(
            ds.set(Scope::System, &long, "v", None, false),
            Err(StoreError::Invalid(_))
        ));
        let big = "v".repeat(MAX_VALUE_BYTES + 1);
        assert!(matches!(
            ds.set(Scope::System, "k", &big, None, false),
            Err(StoreError::Invalid(_))
        ));
        assert!(Scope::parse("tenant").is_err());
        assert!(
            ds.get(Scope::System, "k", false).unwrap().is_none(),
            "nothing written"
        );
    }

    #[test]
    fn ttl_is_exact_and_cleared_by_a_plain_set() {
        let (_d, s) = store();
        let ds = &s.datastore;
        let w = ds.set(Scope::System, "t", "v", Some(1), false).unwrap();
        let at = w.after.expire_at_ms.unwrap();
        assert!(w.after.expire_timestamp().is_some());
        assert_eq!(ds.next_expiry().unwrap(), Some(at));
        // Not swept yet, but invisible once due.
        let (none, _) = ds.sweep(at - 1).unwrap();
        assert!(none.is_empty());
        let (swept, t) = ds.sweep(at).unwrap();
        assert_eq!(swept.len(), 1);
        assert!(t.0 > 0);
        assert!(ds.get(Scope::System, "t", false).unwrap().is_none());
        assert_eq!(ds.next_expiry().unwrap(), None);

        ds.set(Scope::System, "u", "v", Some(100), false).unwrap();
        let w = ds.set(Scope::System, "u", "v2", None, false).unwrap();
        assert!(w.after.expire_at_ms.is_none());
        assert_eq!(
            ds.next_expiry().unwrap(),
            None,
            "the old expiry index entry is gone"
        );
        let (swept, _) = ds.sweep(u64::MAX - 1).unwrap();
        assert!(swept.is_empty());
        // ttl 0 means no expiry (StackStorm: only a truthy ttl applies).
        assert!(ds
            .set(Scope::System, "z", "v", Some(0), false)
            .unwrap()
            .after
            .expire_at_ms
            .is_none());
    }

    #[test]
    fn secrets_need_a_key_and_store_only_ciphertext() {
        let (dir, s) = store();
        let no_key = s.datastore.clone();
        assert!(matches!(
            no_key.set(Scope::System, "pw", "hunter2", None, true),
            Err(StoreError::Crypto(CryptoError::NoKey))
        ));
        assert!(
            no_key.get(Scope::System, "pw", false).unwrap().is_none(),
            "nothing written"
        );
        let key = Arc::new(CryptoKey::generate(&dir.path().join("key.json")).unwrap());
        let ds = s.datastore.clone().with_crypto(Some(key));
        ds.set(Scope::System, "pw", "hunter2", None, true).unwrap();
        let raw = ds.get(Scope::System, "pw", false).unwrap().unwrap();
        assert!(raw.secret);
        assert_ne!(raw.value, "hunter2");
        assert_eq!(
            ds.get(Scope::System, "pw", true).unwrap().unwrap().value,
            "hunter2"
        );
        assert_eq!(raw.to_api(true)["value"], MASK);
        let again = ds.set(Scope::System, "pw", "hunter2", None, true).unwrap();
        assert!(ds.same_value(again.before.as_ref().unwrap(), &again.after));
        // Wrong key: a clear error, nothing changes.
        let other = Arc::new(CryptoKey::generate(&dir.path().join("other.json")).unwrap());
        let wrong = s.datastore.clone().with_crypto(Some(other));
        assert!(matches!(
            wrong.get(Scope::System, "pw", true),
            Err(StoreError::Crypto(CryptoError::Decrypt { .. }))
        ));
        assert_eq!(
            ds.get(Scope::System, "pw", true).unwrap().unwrap().value,
            "hunter2"
        );
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let (_d, s) = store();
        let ds = s.datastore.clone();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let ds = ds.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        ds.set(
                            Scope::System,
                            &format!("k{t}-{i}"),
                            &i.to_string(),
                            None,
                            false,
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            ds.list(Scope::System, "k", 0, None, false).unwrap().len(),
            800
        );
    }
}
