//! API keys for the TCP API: only a SHA-256 digest of each key is stored
//! (tree `api_keys`, keyed by the digest), so a stolen database yields no
//! usable key. A key is shown once, when created.

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::json::{decode, encode};
use crate::StoreError;

const TREE: &str = "api_keys";
/// Every key starts with this, so a leaked one is easy to recognise.
pub const KEY_PREFIX: &str = "sck_";

/// A stored API key (never the key itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiKeyRecord {
    /// Short public id (for `apikey delete ID`).
    pub id: String,
    /// The operator's name for it.
    pub name: Option<String>,
    /// Hex SHA-256 of the key.
    pub key_hash: String,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339, updated at most once a minute.
    pub last_used: Option<String>,
}

/// The API keys of one database.
#[derive(Clone)]
pub struct ApiKeys {
    tree: sled::Tree,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    pub(crate) fn open(db: &sled::Db) -> Result<ApiKeys, StoreError> {
        Ok(ApiKeys {
            tree: db.open_tree(TREE)?,
        })
    }

    /// Make a new key: returns the key (to show once) and its record.
    pub fn create(
        &self,
        name: Option<String>,
        now: String,
    ) -> Result<(String, ApiKeyRecord), StoreError> {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let key = format!("{KEY_PREFIX}{}", hex::encode(secret));
        let hash = digest(&key);
        let record = ApiKeyRecord {
            id: hex::encode(&hash[..6]),
            name,
            key_hash: hex::encode(hash),
            created: now,
            last_used: None,
        };
        self.tree.insert(hash, encode(&record))?;
        self.tree.flush()?;
        Ok((key, record))
    }

    /// The record of a presented key, if it is a valid one.
    pub fn check(&self, presented: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let hash = digest(presented);
        let Some(bytes) = self.tree.get(hash)? else {
            return Ok(None);
        };
        let record: ApiKeyRecord = decode(TREE, &hash, &bytes)?;
        // The lookup found it by digest; compare the full digest in
        // constant time all the same.
        let stored = hex::decode(&record.key_hash).unwrap_or_default();
        Ok(bool::from(stored.ct_eq(&hash)).then_some(record))
    }

    /// Record that a key was used.
    pub fn touch(&self, record: &ApiKeyRecord, now: String) -> Result<(), StoreError> {
        let mut r = record.clone();
        r.last_used = Some(now);
        let hash = hex::decode(&r.key_hash).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.tree.insert(hash, encode(&r))?;
        Ok(())
    }

    /// Every key's record, oldest first.
    pub fn list(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut all = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            all.push(decode::<ApiKeyRecord>(TREE, &k, &v)?);
        }
        all.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(all)
    }

    /// Delete the key with this id (or full hash); the deleted record.
    pub fn delete(&self, id: &str) -> Result<ApiKeyRecord, StoreError> {
        for r in self.list()? {
            if r.id == id || r.key_hash == id {
                let hash =
                    hex::decode(&r.key_hash).map_err(|e| StoreError::Invalid(e.to_string()))?;
                self.tree.remove(hash)?;
                self.tree.flush()?;
                return Ok(r);
            }
        }
        Err(StoreError::NotFound {
            kind: "API key",
            key: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_hashed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let keys = ApiKeys::open(&db).unwrap();
        let (key, rec) = keys
            .create(Some("ci".into()), "2026-12-01T00:00:00Z".into())
            .unwrap();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == 68);
        assert_eq!(keys.check(&key).unwrap().unwrap().id, rec.id);
        assert!(keys.check("sck_wrong").unwrap().is_none());
        let raw: Vec<u8> = db
            .open_tree(TREE)
            .unwrap()
            .iter()
            .flat_map(|i| {
                let (k, v) = i.unwrap();
                [k.to_vec(), v.to_vec()].concat()
            })
            .collect();
        assert!(
            !String::from_utf8_lossy(&raw).contains(&key[4..]),
            "the key itself is not stored"
        );
        keys.delete(&rec.id).unwrap();
        assert!(keys.check(&key).unwrap().is_none());
        assert!(matches!(
            keys.delete(&rec.id),
            Err(StoreError::NotFound { .. })
        ));
    }
}
