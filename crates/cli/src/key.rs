//! `sensorctl key`: the datastore from the command line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use container::catalog::Catalog;
use container::dispatcher::Dispatcher;
use container::kv::KvService;
use store::datastore::{KeyValue, Scope};
use store::{CryptoKey, Store};

use crate::config::Settings;
use crate::output::{or_dash, print_json, Table};
use crate::sensorctl::JsonFlag;

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// List keys
    List {
        /// Only keys whose name starts with this
        #[arg(long)]
        prefix: Option<String>,
        /// Show secrets' plaintext (needs the encryption key)
        #[arg(long)]
        decrypt: bool,
        /// system or user
        #[arg(long, default_value = "system")]
        scope: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show one key
    Get {
        name: String,
        /// Show a secret's plaintext (needs the encryption key)
        #[arg(long)]
        decrypt: bool,
        /// system or user
        #[arg(long, default_value = "system")]
        scope: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Set a key
    Set {
        name: String,
        value: String,
        /// Expire after this many seconds (a non-negative integer; 0 = never)
        #[arg(long, allow_hyphen_values = true)]
        ttl: Option<u64>,
        /// Store only the ciphertext (needs the encryption key)
        #[arg(long)]
        encrypt: bool,
        /// system or user
        #[arg(long, default_value = "system")]
        scope: String,
    },
    /// Delete a key
    Delete {
        name: String,
        /// system or user
        #[arg(long, default_value = "system")]
        scope: String,
    },
    /// Print every key as JSON (secrets stay encrypted)
    Export,
    /// Load keys from a file made by `key export`
    Load {
        /// The JSON file
        file: PathBuf,
    },
    /// Create a new AES-256-GCM key file (mode 0600; never overwrites)
    GenerateCryptoKey {
        /// Where to write it [default: keyvalue.encryption_key_path]
        #[arg(long)]
        path: Option<PathBuf>,
    },
}

/// `key generate-crypto-key`.
pub fn generate(settings: &Settings, cmd: KeyCmd) -> Result<()> {
    let KeyCmd::GenerateCryptoKey { path } = cmd else { bail!("not a generate-crypto-key command") };
    let Some(path) = path.or_else(|| settings.container.encryption_key_path.clone()) else {
        bail!("where should the key go? Give --path or set keyvalue.encryption_key_path / --encryption-key-path");
    };
    CryptoKey::generate(&path)?;
    println!("wrote a new AES-256-GCM key to {} (mode 0600)", path.display());
    Ok(())
}

/// Run a `key` subcommand against an open store.
pub fn run(settings: &Settings, store: &Store, cmd: KeyCmd) -> Result<()> {
    let kv = kv_service(settings, store)?;
    match cmd {
        KeyCmd::List { prefix, decrypt, scope, json } => {
            let items = kv.datastore.list(Scope::parse(&scope)?, prefix.as_deref().unwrap_or(""), 0, None, decrypt)?;
            let items: Vec<_> = items.iter().map(|k| k.to_api(false)).collect();
            if json.json {
                return print_json(&items);
            }
            let mut t = Table::new(&["NAME", "VALUE", "SECRET", "EXPIRES"]);
            for k in &items {
                t.row(vec![
                    k["name"].as_str().unwrap_or_default().into(),
                    k["value"].as_str().unwrap_or_default().into(),
                    k["secret"].to_string(),
                    or_dash(k["expire_timestamp"].as_str()),
                ]);
            }
            print!("{}", t.render());
        }
        KeyCmd::Get { name, decrypt, scope, json } => {
            let Some(k) = kv.datastore.get(Scope::parse(&scope)?, &name, decrypt)? else {
                bail!("key '{name}' not found (or expired) in scope {scope}");
            };
            if json.json {
                return print_json(&k.to_api(false));
            }
            println!("{}", k.value);
        }
        KeyCmd::Set { name, value, ttl, encrypt, scope } => {
            kv.set(Scope::parse(&scope)?, &name, &value, ttl, encrypt)?;
            store.flush()?;
            println!("set {name}");
        }
        KeyCmd::Delete { name, scope } => {
            let (deleted, _) = kv.delete(Scope::parse(&scope)?, &name)?;
            store.flush()?;
            if !deleted {
                bail!("key '{name}' not found (or expired) in scope {scope}");
            }
            println!("deleted {name}");
        }
        KeyCmd::Export => {
            let mut all = kv.datastore.list(Scope::System, "", 0, None, false)?;
            all.extend(kv.datastore.list(Scope::User, "", 0, None, false)?);
            print_json(&all)?;
        }
        KeyCmd::Load { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let items: Vec<KeyValue> = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a `sensorctl key export` file", file.display()))?;
            // Check every record before writing any: nothing half-loaded.
            for (i, k) in items.iter().enumerate() {
                if k.name.is_empty() || k.name.len() > store::datastore::MAX_NAME_BYTES {
                    bail!("{}: item {i}: bad key name {:?}; nothing was loaded", file.display(), k.name);
                }
            }
            let n = items.len();
            for k in items {
                kv.load(k)?;
            }
            store.flush()?;
            println!("loaded {n} keys");
        }
        KeyCmd::GenerateCryptoKey { .. } => generate(settings, cmd)?,
    }
    Ok(())
}

fn kv_service(settings: &Settings, store: &Store) -> Result<KvService> {
    let crypto = match &settings.container.encryption_key_path {
        Some(p) => Some(Arc::new(CryptoKey::load(p)?)),
        None => None,
    };
    let dispatcher = Arc::new(Dispatcher::new(Catalog::load(&store.registry)?, store.instances.clone()));
    Ok(KvService::new(store.datastore.clone().with_crypto(crypto), dispatcher))
}
