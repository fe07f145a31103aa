//! `sensorctl key`: the datastore from the command line.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use store::CryptoKey;

use crate::config::Settings;
use crate::output::print_json;
use crate::sensorctl::{s, table_or_json, Backend, JsonFlag};

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
        /// At most this many (0 = all)
        #[arg(long, default_value_t = 50)]
        limit: usize,
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

/// `key generate-crypto-key`: local, needs no database.
pub fn generate(settings: &Settings, cmd: KeyCmd) -> Result<()> {
    let KeyCmd::GenerateCryptoKey { path } = cmd else {
        bail!("not a generate-crypto-key command")
    };
    let Some(path) = path.or_else(|| settings.container.encryption_key_path.clone()) else {
        bail!("where should the key go? Give --path or set keyvalue.encryption_key_path / --encryption-key-path");
    };
    CryptoKey::generate(&path)?;
    println!(
        "wrote a new AES-256-GCM key to {} (mode 0600)",
        path.display()
    );
    Ok(())
}

/// Run a `key` subcommand.
pub async fn run(backend: &Backend, cmd: KeyCmd) -> Result<()> {
    match cmd {
        KeyCmd::List {
            prefix,
            decrypt,
            scope,
            limit,
            json,
        } => {
            let row = |k: &Value| {
                vec![
                    s(&k["name"]),
                    s(&k["value"]),
                    k["secret"].to_string(),
                    s(&k["expire_timestamp"]),
                ]
            };
            const HEADERS: &[&str] = &["NAME", "VALUE", "SECRET", "EXPIRES"];
            if limit == 0 {
                // Everything: streamed and printed as it comes.
                let params =
                    json!({"prefix": prefix, "decrypt": decrypt, "scope": scope, "limit": 0});
                return crate::output::print_stream(
                    backend, "key.list", params, json.json, HEADERS, row,
                )
                .await;
            }
            // One more than shown: tells whether there are more.
            let mut v = backend
                .call(
                    "key.list",
                    json!({"prefix": prefix, "decrypt": decrypt, "scope": scope, "limit": limit + 1}),
                )
                .await?;
            crate::output::trim_to_limit(&mut v, limit, "keys");
            table_or_json(json, &v, HEADERS, row)?;
        }
        KeyCmd::Get {
            name,
            decrypt,
            scope,
            json,
        } => {
            let v = backend
                .call(
                    "key.get",
                    json!({"name": name, "decrypt": decrypt, "scope": scope}),
                )
                .await?;
            if json.json {
                return print_json(&v);
            }
            println!("{}", s(&v["value"]));
        }
        KeyCmd::Set {
            name,
            value,
            ttl,
            encrypt,
            scope,
        } => {
            backend
                .call("key.set", json!({"name": name, "value": value, "ttl": ttl, "encrypt": encrypt, "scope": scope}))
                .await?;
            println!("set {name}");
        }
        KeyCmd::Delete { name, scope } => {
            backend
                .call("key.delete", json!({"name": name, "scope": scope}))
                .await?;
            println!("deleted {name}");
        }
        KeyCmd::Export => print_json(&backend.call("key.export", json!({})).await?)?,
        KeyCmd::Load { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let items: Value = serde_json::from_str(&text).with_context(|| {
                format!("{}: not a `sensorctl key export` file", file.display())
            })?;
            let v = backend
                .call("key.load", json!({"items": items}))
                .await
                .with_context(|| format!("{}: not loaded", file.display()))?;
            println!("loaded {} keys", v["loaded"]);
        }
        KeyCmd::GenerateCryptoKey { .. } => bail!("generate-crypto-key runs without a backend"),
    }
    Ok(())
}
