//! Content errors. Every variant names the file and the pack; most name the
//! field. The `Display` form is what a pack author reads:
//! `<file>: pack '<pack>': field '<field>': <cause>`.

use std::path::{Path, PathBuf};

/// An error in pack content, phrased for the pack author.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The file (or directory) exists but could not be read.
    #[error("{}: pack '{pack}': cannot read: {source}", file.display())]
    Read {
        /// The file that could not be read.
        file: PathBuf,
        /// The pack ref (the directory name when the ref is not known yet).
        pack: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// The file is not well-formed YAML.
    #[error("{}: pack '{pack}': invalid YAML: {message}", file.display())]
    Yaml {
        /// The malformed file.
        file: PathBuf,
        /// The pack ref (the directory name when the ref is not known yet).
        pack: String,
        /// 1-based line of the problem, when the parser knows it.
        line: Option<usize>,
        /// 1-based column of the problem, when the parser knows it.
        column: Option<usize>,
        /// The parser's message (it already says "at line L column C").
        message: String,
    },

    /// The document as a whole has the wrong shape (e.g. not a mapping).
    #[error("{}: pack '{pack}': {reason}", file.display())]
    Document {
        /// The offending file.
        file: PathBuf,
        /// The pack ref (the directory name when the ref is not known yet).
        pack: String,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// One field is missing or invalid.
    #[error("{}: pack '{pack}': field '{field}': {reason}", file.display())]
    Field {
        /// The offending file.
        file: PathBuf,
        /// The pack ref (the directory name when the ref is not known yet).
        pack: String,
        /// Dotted path of the field, e.g. `trigger_types[0].name` or
        /// `config.api.port`.
        field: String,
        /// What is wrong and what was expected.
        reason: String,
    },
}

impl ContentError {
    /// The file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            ContentError::Read { file, .. }
            | ContentError::Yaml { file, .. }
            | ContentError::Document { file, .. }
            | ContentError::Field { file, .. } => file,
        }
    }

    /// The pack the file belongs to (its ref, or its directory name when the
    /// ref could not be resolved).
    pub fn pack(&self) -> &str {
        match self {
            ContentError::Read { pack, .. }
            | ContentError::Yaml { pack, .. }
            | ContentError::Document { pack, .. }
            | ContentError::Field { pack, .. } => pack,
        }
    }

    /// The field the error is about, when it is about one field.
    pub fn field(&self) -> Option<&str> {
        match self {
            ContentError::Field { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Shorthand for a [`ContentError::Field`].
    pub(crate) fn field_error(
        file: &Path,
        pack: &str,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> ContentError {
        ContentError::Field {
            file: file.to_path_buf(),
            pack: pack.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}
