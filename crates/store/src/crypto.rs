//! Encryption of datastore secrets: AES-256-GCM from RustCrypto.
//!
//! Key file: JSON `{"aesKeyString": "<64 hex chars>", "mode": "GCM",
//! "size": 256}` (StackStorm-like, but GCM), mode 0600. A ciphertext is
//! the upper-case hex of `nonce (12 bytes) || ciphertext || tag`. The
//! associated data is `<scope>:<name>`, so a ciphertext copied to another
//! key does not decrypt.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use serde::{Deserialize, Serialize};

const NONCE_LEN: usize = 12;

/// Errors loading keys or encrypting/decrypting.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("encryption key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("no encryption key is configured (set keyvalue.encryption_key_path or --encryption-key-path; create one with `sensorctl key generate-crypto-key`)")]
    NoKey,
    #[error("cannot decrypt '{name}': wrong encryption key or corrupted ciphertext")]
    Decrypt { name: String },
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    #[serde(rename = "aesKeyString")]
    aes_key_string: String,
    mode: String,
    size: u32,
}

/// A loaded AES-256-GCM key.
pub struct CryptoKey {
    cipher: Aes256Gcm,
    path: PathBuf,
}

impl std::fmt::Debug for CryptoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "CryptoKey({})", self.path.display())
    }
}

impl CryptoKey {
    /// Create a new random key file at `path` (mode 0600). Refuses to
    /// overwrite an existing file: that would make every secret unreadable.
    pub fn generate(path: &Path) -> Result<CryptoKey, CryptoError> {
        let err = |reason: String| CryptoError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
        }
        let key = Aes256Gcm::generate_key(OsRng);
        let body = KeyFile {
            aes_key_string: hex::encode_upper(key),
            mode: "GCM".into(),
            size: 256,
        };
        let json = serde_json::to_vec_pretty(&body).map_err(|e| err(e.to_string()))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    err("already exists; refusing to overwrite it".into())
                }
                _ => err(e.to_string()),
            })?;
        file.write_all(&json)
            .and_then(|_| file.sync_all())
            .map_err(|e| err(e.to_string()))?;
        Ok(CryptoKey {
            cipher: Aes256Gcm::new(&key),
            path: path.to_path_buf(),
        })
    }

    /// Load a key file.
    pub fn load(path: &Path) -> Result<CryptoKey, CryptoError> {
        let err = |reason: String| CryptoError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "encryption key file {} is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
        let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let parsed: KeyFile = serde_json::from_slice(&text).map_err(|e| {
            err(format!(
                "not a key file ({e}); expected JSON with \"aesKeyString\""
            ))
        })?;
        if parsed.mode != "GCM" || parsed.size != 256 {
            return Err(err(format!(
                "unsupported key: mode {} size {} (expected GCM 256)",
                parsed.mode, parsed.size
            )));
        }
        let bytes = hex::decode(parsed.aes_key_string.trim())
            .map_err(|e| err(format!("\"aesKeyString\" is not hex: {e}")))?;
        if bytes.len() != 32 {
            return Err(err(format!(
                "\"aesKeyString\" holds {} bytes, expected 32",
                bytes.len()
            )));
        }
        let key = Key::<Aes256Gcm>::from_slice(&bytes);
        Ok(CryptoKey {
            cipher: Aes256Gcm::new(key),
            path: path.to_path_buf(),
        })
    }

    /// Where the key came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encrypt `plaintext` bound to `aad` (the key's scope and name).
    pub fn encrypt(&self, aad: &str, plaintext: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption only fails for inputs beyond GCM's size limit (64 GiB).
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        hex::encode_upper(out)
    }

    /// Decrypt a ciphertext made by [`CryptoKey::encrypt`] with the same `aad`.
    pub fn decrypt(&self, aad: &str, ciphertext: &str, name: &str) -> Result<String, CryptoError> {
        let fail = || CryptoError::Decrypt {
            name: name.to_string(),
        };
        let bytes = hex::decode(ciphertext).map_err(|_| fail())?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(fail());
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| fail())?;
        String::from_utf8(plain).map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let key = CryptoKey::generate(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let ct = key.encrypt("system:a", "s3cret");
        assert!(!ct.contains("s3cret"));
        assert_eq!(key.decrypt("system:a", &ct, "a").unwrap(), "s3cret");
        // Bound to its key name.
        assert!(key.decrypt("system:b", &ct, "b").is_err());
        // Same key from disk.
        let again = CryptoKey::load(&path).unwrap();
        assert_eq!(again.decrypt("system:a", &ct, "a").unwrap(), "s3cret");
        // Wrong key.
        let other = CryptoKey::generate(&dir.path().join("other.json")).unwrap();
        assert!(matches!(
            other.decrypt("system:a", &ct, "a"),
            Err(CryptoError::Decrypt { .. })
        ));
        // Corrupted ciphertext.
        let mut bad = ct.clone();
        bad.replace_range(30..32, if &ct[30..32] == "00" { "11" } else { "00" });
        assert!(key.decrypt("system:a", &bad, "a").is_err());
        assert!(key.decrypt("system:a", "zz", "a").is_err());
        // Never overwrite.
        assert!(CryptoKey::generate(&path).is_err());
    }

    #[test]
    fn bad_key_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        std::fs::write(&path, "not json").unwrap();
        let e = CryptoKey::load(&path).unwrap_err().to_string();
        assert!(e.contains("k.json") && e.contains("aesKeyString"), "{e}");
        assert!(CryptoKey::load(&dir.path().join("missing")).is_err());
    }
}
