//! Small JSON record tables for the HTTP front doors' own state (Senlin
//! receivers, Masakari segments, hosts and notifications): one sled tree
//! per table, records keyed by a string or by a big-endian `u64` (so they
//! iterate in creation order), every write flushed before it returns.
//!
//! The record types belong to the crate that serves them (`api`); the
//! store only keeps them durable.

use serde::{de::DeserializeOwned, Serialize};

use crate::json::{decode, encode};
use crate::StoreError;

/// One table.
#[derive(Clone)]
pub struct Table {
    tree: sled::Tree,
    name: &'static str,
    db: sled::Db,
}

impl Table {
    pub(crate) fn open(db: &sled::Db, name: &'static str) -> Result<Table, StoreError> {
        Ok(Table {
            tree: db.open_tree(name)?,
            name,
            db: db.clone(),
        })
    }

    /// The table's tree name (for messages).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A new id, unique and increasing for this database.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        // sled's ids survive restarts (it reserves them in blocks).
        Ok(self.db.generate_id()? + 1)
    }

    /// One record.
    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.tree.get(key)? {
            Some(v) => decode(self.name, key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Insert or replace a record, durably.
    pub fn put<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), StoreError> {
        self.tree.insert(key, encode(value))?;
        self.tree.flush()?;
        Ok(())
    }

    /// Remove a record, durably; whether it was there.
    pub fn remove(&self, key: &[u8]) -> Result<bool, StoreError> {
        let had = self.tree.remove(key)?.is_some();
        self.tree.flush()?;
        Ok(had)
    }

    /// Every record, in key order.
    pub fn all<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.tree
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(self.name, &k, &v)
            })
            .collect()
    }

    /// How many records the table holds.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_key_order_and_ids_increase() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = Table::open(&db, "t").unwrap();
        let a = t.next_id().unwrap();
        let b = t.next_id().unwrap();
        assert!(b > a && a > 0);
        t.put(&b.to_be_bytes(), &"second").unwrap();
        t.put(&a.to_be_bytes(), &"first").unwrap();
        let all: Vec<String> = t.all().unwrap();
        assert_eq!(all, vec!["first", "second"]);
        assert_eq!(
            t.get::<String>(&a.to_be_bytes()).unwrap().as_deref(),
            Some("first")
        );
        assert!(t.remove(&a.to_be_bytes()).unwrap());
        assert!(!t.remove(&a.to_be_bytes()).unwrap());
        assert_eq!(t.len(), 1);
    }
}
