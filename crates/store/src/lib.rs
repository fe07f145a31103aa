//! The sled database behind the sensor container.
//!
//! One `sled::Db` per process, opened by [`Store::open`]. Trees:
//! - registry: `packs`, `sensors`, `trigger_types`, `triggers`, `configs`
//!   ([`registry`]);
//! - `kv` and `kv_expiry`: the datastore ([`datastore`]);
//! - `api_keys` ([`apikeys`]); `sink_dead_letters`, `sink_flags`
//!   ([`sinkstate`]);
//! - `receivers`, `ha_segments`, `ha_hosts`, `ha_notifications`: the
//!   Senlin and Masakari front doors' records ([`table`], [`OpenStackTables`]);
//! - writes are made durable by one group-commit flusher thread
//!   ([`commit`]).
//!
//! Trigger instances are not here: they live in the `eventlog` crate's
//! segment files. [`instances`] only reads the tree earlier releases kept
//! them in, for migration.
//!
//! sled lets a single process open the database; a second opener gets
//! [`StoreError::Locked`].

pub mod apikeys;
pub mod commit;
pub mod crypto;
pub mod datastore;
pub mod error;
pub mod instances;
mod json;
pub mod perms;
pub mod registrar;
pub mod registry;
pub mod sinkstate;
pub mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use apikeys::{ApiKeyRecord, ApiKeys};
pub use commit::{GroupCommit, Ticket};
pub use crypto::{CryptoError, CryptoKey};
pub use datastore::{Datastore, KeyValue, Scope};
pub use error::StoreError;
pub use instances::LegacyInstances;
pub use registry::{Registry, SensorRecord};
pub use sinkstate::{DeadLetter, SinkFlags, SinkState};
pub use table::Table;

/// The tables of the Senlin and Masakari front doors.
#[derive(Clone)]
pub struct OpenStackTables {
    /// Senlin receivers, keyed by id.
    pub receivers: Table,
    /// Masakari failover segments, keyed by uuid.
    pub segments: Table,
    /// Masakari hosts, keyed by uuid.
    pub hosts: Table,
    /// Masakari notifications, keyed by their integer id (big-endian).
    pub notifications: Table,
}

impl OpenStackTables {
    fn open(db: &sled::Db) -> Result<OpenStackTables, StoreError> {
        Ok(OpenStackTables {
            receivers: Table::open(db, "receivers")?,
            segments: Table::open(db, "ha_segments")?,
            hosts: Table::open(db, "ha_hosts")?,
            notifications: Table::open(db, "ha_notifications")?,
        })
    }
}

/// Tunables for opening the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled page cache in bytes. sled's default (1 GiB) lets RSS grow far
    /// beyond what a sensor container needs.
    pub cache_capacity: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_capacity: 64 * 1024 * 1024,
        }
    }
}

/// The open database: registry and datastore.
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    /// The registry trees.
    pub registry: Registry,
    /// API keys of the TCP API (stored hashed).
    pub api_keys: ApiKeys,
    /// Dead letters and flags of the sinks.
    pub sinks: SinkState,
    /// Senlin receivers and Masakari segments, hosts, notifications.
    pub openstack: OpenStackTables,
    /// The key-value datastore (no encryption key until
    /// [`Datastore::with_crypto`] gives it one).
    pub datastore: Datastore,
    commit: Arc<GroupCommit>,
}

impl Store {
    /// Open (or create) the database in `<data_dir>/db`.
    pub fn open(data_dir: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Io {
            path: data_dir.to_path_buf(),
            source: e,
        })?;
        perms::secure_data_dir(data_dir);
        let path = data_dir.join("db");
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(opts.cache_capacity)
            .open()
            .map_err(|e| StoreError::from_open(&path, e))?;
        let registry = Registry::open(&db)?;
        let commit = Arc::new(GroupCommit::start(db.clone()));
        let datastore = Datastore::open(&db, commit.clone())?;
        let api_keys = ApiKeys::open(&db)?;
        let sinks = SinkState::open(&db)?;
        let openstack = OpenStackTables::open(&db)?;
        Ok(Store {
            sinks,
            openstack,
            db,
            path,
            registry,
            api_keys,
            datastore,
            commit,
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The group committer shared by everything that needs durability.
    pub fn commit(&self) -> &Arc<GroupCommit> {
        &self.commit
    }

    /// The trigger-instance tree of an earlier release, if it holds any.
    pub fn legacy_instances(&self) -> Result<Option<LegacyInstances>, StoreError> {
        LegacyInstances::find(&self.db)
    }

    /// Flush synchronously (used after registry writes and at shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(StoreError::from)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.commit.stop();
        if let Err(e) = self.db.flush() {
            tracing::error!("final flush of {} failed: {e}", self.path.display());
        }
    }
}
