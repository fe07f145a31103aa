//! The trigger-instance tree of earlier releases (instances now live in
//! the `eventlog` crate's segment files). Kept only so a data directory
//! from an earlier release can be migrated: read in key (= time) order,
//! then dropped.

use crate::StoreError;

/// The tree name earlier releases stored instances in.
pub const LEGACY_TREE: &str = "trigger_instances";

/// The old instance tree, if the database has one with anything in it.
pub struct LegacyInstances {
    db: sled::Db,
    tree: sled::Tree,
}

impl LegacyInstances {
    /// The old tree, when it exists and is not empty.
    pub fn find(db: &sled::Db) -> Result<Option<LegacyInstances>, StoreError> {
        let exists = db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == LEGACY_TREE.as_bytes());
        if !exists {
            return Ok(None);
        }
        let tree = db.open_tree(LEGACY_TREE)?;
        if tree.is_empty() {
            db.drop_tree(LEGACY_TREE)?;
            return Ok(None);
        }
        Ok(Some(LegacyInstances {
            db: db.clone(),
            tree,
        }))
    }

    /// How many instances it holds.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Every stored value (an instance's JSON), oldest first, each with its
    /// key (the UUIDv7 id's 16 bytes).
    pub fn iter(&self) -> impl Iterator<Item = Result<([u8; 16], Vec<u8>), StoreError>> + '_ {
        self.tree.iter().map(|item| {
            let (k, v) = item?;
            let key: [u8; 16] = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                tree: LEGACY_TREE,
                key: format!("{k:?}"),
                reason: "key is not a 16-byte UUID".into(),
            })?;
            Ok((key, v.to_vec()))
        })
    }

    /// Drop the tree (after everything was migrated) and flush.
    pub fn drop_tree(self) -> Result<(), StoreError> {
        drop(self.tree);
        self.db.drop_tree(LEGACY_TREE)?;
        self.db.flush()?;
        Ok(())
    }
}
