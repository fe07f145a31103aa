//! Reading content files safely: every file a pack provides (pack.yaml,
//! sensor and trigger YAML, config schema, config, requirements.txt, entry
//! points) must be a regular file once symlinks are resolved, and at most
//! `content.max_file_bytes` (default 4 MiB), read with that bound. A FIFO
//! would hang the reader and `/dev/zero` would fill memory; both are
//! refused before anything is read. YAML nested deeper than
//! [`MAX_YAML_DEPTH`] levels is refused before parsing (parse time grows
//! with the square of the depth).

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default of `content.max_file_bytes`.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Deepest YAML nesting accepted.
pub const MAX_YAML_DEPTH: usize = 256;

static MAX_FILE_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_MAX_FILE_BYTES);

/// Set `content.max_file_bytes` for this process (the binaries do, from
/// their config).
pub fn set_max_file_bytes(n: u64) {
    MAX_FILE_BYTES.store(n.max(1), Ordering::Relaxed);
}

/// The limit in force.
pub fn max_file_bytes() -> u64 {
    MAX_FILE_BYTES.load(Ordering::Relaxed)
}

fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}

/// Read `path` whole if it is a regular file (after symlinks) of at most
/// [`max_file_bytes`].
pub fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    let max = max_file_bytes();
    let meta = std::fs::metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(invalid(format!(
            "is {}, not a regular file",
            kind(meta.file_type())
        )));
    }
    if meta.len() > max {
        return Err(invalid(format!(
            "is {} bytes, larger than content.max_file_bytes ({max} bytes)",
            meta.len()
        )));
    }
    // O_NONBLOCK: if the file was swapped for a FIFO since the check, the
    // open does not wait for a writer; the type is checked again on the
    // opened file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let opened = file.metadata()?;
    if !opened.file_type().is_file() {
        return Err(invalid(format!(
            "is {}, not a regular file",
            kind(opened.file_type())
        )));
    }
    let mut bytes = Vec::with_capacity(opened.len().min(max) as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(invalid(format!(
            "grew past content.max_file_bytes ({max} bytes) while being read"
        )));
    }
    Ok(bytes)
}

/// The first line where YAML nesting passes [`MAX_YAML_DEPTH`], if any: a
/// cheap upper estimate from block indentation, sequence dashes and flow
/// brackets (outside quotes), computed before the parser sees the text.
pub fn too_deep(bytes: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(bytes);
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if flow == 0 {
            while indents.last().is_some_and(|i| *i >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let mut dashes = 0;
        let mut rest = trimmed;
        while let Some(r) = rest.strip_prefix("- ") {
            dashes += 1;
            rest = r.trim_start_matches(' ');
        }
        let mut quote: Option<char> = None;
        for c in rest.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => flow += 1,
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            if indents.len() + dashes + flow > MAX_YAML_DEPTH {
                return Some(n + 1);
            }
        }
        if indents.len() + dashes + flow > MAX_YAML_DEPTH {
            return Some(n + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounded_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.yaml");
        std::fs::write(&ok, "a: 1\n").unwrap();
        assert_eq!(read_bounded(&ok).unwrap(), b"a: 1\n");
        let fifo = dir.path().join("fifo.yaml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) on a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_bounded(&fifo).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let zero = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_bounded(&zero).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read_bounded(dir.path()).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'x'; (DEFAULT_MAX_FILE_BYTES + 1) as usize]).unwrap();
        let e = read_bounded(&big).unwrap_err();
        assert!(e.to_string().contains("content.max_file_bytes"), "{e}");
    }

    #[test]
    fn deep_nesting_is_found_before_parsing() {
        assert_eq!(too_deep(b"a:\n  b:\n    c: [1, {d: 2}]\n"), None);
        let flow = "[".repeat(300);
        assert_eq!(too_deep(flow.as_bytes()), Some(1));
        let mut block = String::new();
        for i in 0..300 {
            block.push_str(&" ".repeat(i));
            block.push_str("k:\n");
        }
        assert!(too_deep(block.as_bytes()).is_some());
        let dashes = "- ".repeat(300) + "x\n";
        assert_eq!(too_deep(dashes.as_bytes()), Some(1));
        assert_eq!(too_deep(b"s: '[[[[[[[[[[[[[[[['\n"), None);
    }
}
