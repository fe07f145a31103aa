//! The `[messaging]` section of an `st2.conf` (oslo.config's INI), so the
//! st2 sink talks to the broker StackStorm itself uses without copying its
//! settings: `url`, `cluster_urls`, `prefix`, `compression`, `ssl`,
//! `ssl_ca_certs`.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest st2.conf read (a config file, not data).
const MAX_BYTES: u64 = 1 << 20;

/// What `[messaging]` says, with st2's defaults for what it leaves out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Messaging {
    /// Broker URLs in failover order: `cluster_urls` when set, else `url`.
    pub urls: Vec<String>,
    /// Exchange name prefix (`prefix`, st2's default `st2`).
    pub prefix: Option<String>,
    /// `compression` (st2 compresses what it publishes; its consumers read
    /// compressed and plain bodies alike, so ours go out plain).
    pub compression: Option<String>,
    /// `ssl = True`: connect with TLS whatever the URL's scheme says.
    pub ssl: bool,
    /// `ssl_ca_certs`: PEM CA certificates to trust.
    pub ssl_ca_certs: Option<PathBuf>,
}

/// Why an st2.conf could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It is not INI.
    #[error("{path}: not an INI file: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with its line).
        message: String,
    },
    /// A key has an unusable value.
    #[error("{path}: [messaging] {key}: {message}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Read `[messaging]` of the st2.conf at `path`.
pub fn read_messaging(path: &Path) -> Result<Messaging, ConfError> {
    let read_err = |source| ConfError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(read_err)?
        .take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_BYTES {
        return Err(read_err(std::io::Error::other(format!(
            "larger than {MAX_BYTES} bytes"
        ))));
    }
    parse_messaging(path, &text)
}

/// Parse `[messaging]` out of st2.conf `text` (`path` names it in errors).
pub fn parse_messaging(path: &Path, text: &str) -> Result<Messaging, ConfError> {
    let opts = ini::ParseOption {
        enabled_quote: false,
        // Paths and passwords keep their backslashes.
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        ..Default::default()
    };
    let doc = ini::Ini::load_from_str_opt(text, opts).map_err(|e| ConfError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let Some(section) = doc.section(Some("messaging")) else {
        return Ok(Messaging::default());
    };
    let get = |k: &str| {
        section
            .get(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let list = |v: &str| -> Vec<String> {
        v.split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let urls = match get("cluster_urls") {
        Some(c) if !list(&c).is_empty() => list(&c),
        _ => get("url").map(|u| vec![u]).unwrap_or_default(),
    };
    let ssl = match get("ssl").as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no" | "off") => false,
        Some("true" | "1" | "yes" | "on") => true,
        Some(other) => {
            return Err(ConfError::Value {
                path: path.to_path_buf(),
                key: "ssl",
                message: format!("expected True or False, got '{other}'"),
            })
        }
    };
    Ok(Messaging {
        urls,
        prefix: get("prefix"),
        compression: get("compression"),
        ssl,
        ssl_ca_certs: get("ssl_ca_certs").map(PathBuf::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_win_over_url_and_defaults_stay_unset() {
        let p = Path::new("/etc/st2/st2.conf");
        let m = parse_messaging(
            p,
            "[api]\nport = 9101\n\n[messaging]\n# the bus\nurl = amqp://a:b@h1:5672/\n\
             cluster_urls = amqp://a:b@h1:5672/, amqp://a:b@h2:5672/\nprefix = prod\n\
             compression = zstd\nssl = True\nssl_ca_certs = C:\\certs\\ca.pem\n",
        )
        .unwrap();
        assert_eq!(m.urls, ["amqp://a:b@h1:5672/", "amqp://a:b@h2:5672/"]);
        assert_eq!(m.prefix.as_deref(), Some("prod"));
        assert_eq!(m.compression.as_deref(), Some("zstd"));
        assert!(m.ssl);
        assert_eq!(m.ssl_ca_certs, Some(PathBuf::from("C:\\certs\\ca.pem")));

        let m = parse_messaging(p, "[messaging]\nurl = amqp://guest:guest@127.0.0.1:5672/\n").unwrap();
        assert_eq!(m.urls, ["amqp://guest:guest@127.0.0.1:5672/"]);
        assert_eq!((m.prefix, m.ssl), (None, false));
        assert_eq!(parse_messaging(p, "[api]\nx = 1\n").unwrap(), Messaging::default());
    }

    #[test]
    fn errors_name_file_and_key() {
        let p = Path::new("/etc/st2/st2.conf");
        let e = parse_messaging(p, "[messaging]\nssl = maybe\n").unwrap_err().to_string();
        assert_eq!(e, "/etc/st2/st2.conf: [messaging] ssl: expected True or False, got 'maybe'");
        let e = parse_messaging(p, "[messaging\nurl = x\n").unwrap_err().to_string();
        assert!(e.starts_with("/etc/st2/st2.conf: not an INI file"), "{e}");
        let e = read_messaging(Path::new("/nonexistent/st2.conf")).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/st2.conf: cannot read"), "{e}");
    }
}
