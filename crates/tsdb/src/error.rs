//! Errors of the TSDB crate. Every error about bytes names the file and the byte offset.

use std::path::PathBuf;

/// A decoding failure inside one buffer, at an offset relative to that buffer. Callers that
/// know which file and where the buffer starts turn it into [`Error::Corrupt`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at offset {offset}: {reason}")]
pub struct DecodeError {
    pub offset: u64,
    pub reason: String,
}

impl DecodeError {
    pub fn new(offset: u64, reason: impl Into<String>) -> Self {
        DecodeError {
            offset,
            reason: reason.into(),
        }
    }

    /// Places the error in a file whose buffer started at `base`.
    pub fn in_file(self, file: impl Into<String>, base: u64) -> Error {
        Error::Corrupt {
            file: file.into(),
            offset: base.saturating_add(self.offset),
            reason: self.reason,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: corrupt data at offset {offset}: {reason}")]
    Corrupt { file: String, offset: u64, reason: String },
    #[error("{path}: invalid meta.json: {source}")]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("out-of-order sample for series {series}: timestamp {t} is not after the previous sample at {last}")]
    OutOfOrder { series: String, t: i64, last: i64 },
    #[error("{0}")]
    Invalid(String),
    #[error("{file}:{line}: {reason}")]
    Parse { file: String, line: usize, reason: String },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn corrupt(file: impl Into<String>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
