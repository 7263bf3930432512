//! Errors of the store gateway.

use std::path::PathBuf;

use hypnos_objstore::BucketError;

/// A failure reading one block. `Corrupt` means the block's data is bad (the block is then
/// skipped and reported); `Bucket` may be transient.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("{file}: corrupt data at offset {offset}: {reason}")]
    Corrupt { file: String, offset: u64, reason: String },
    #[error("reading {key}: {source}")]
    Bucket {
        key: String,
        #[source]
        source: BucketError,
    },
    #[error("{path}: {source}")]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BlockError {
    pub fn bucket(key: &str, source: BucketError) -> Self {
        // A block file that is missing is a broken block, not a transient failure.
        if source.is_not_found() {
            return BlockError::Corrupt {
                file: key.to_string(),
                offset: 0,
                reason: "object is missing from the bucket".into(),
            };
        }
        BlockError::Bucket {
            key: key.to_string(),
            source,
        }
    }

    pub fn is_corrupt(&self) -> bool {
        matches!(self, BlockError::Corrupt { .. })
    }

    /// A decoding error whose offset is already absolute within `file`.
    pub(crate) fn from_tsdb(file: &str, e: hypnos_tsdb::DecodeError) -> Self {
        BlockError::Corrupt {
            file: file.to_string(),
            offset: e.offset,
            reason: e.reason,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Config(#[from] hypnos_objstore::ConfigError),
    #[error("bucket {bucket}: {reason}")]
    Bucket { bucket: String, reason: String },
    #[error("initial sync of bucket {bucket} failed: {source}")]
    InitialSync {
        bucket: String,
        #[source]
        source: BucketError,
    },
    #[error("--data-dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("listening on {what} address {addr}: {source}")]
    Listen {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Args(String),
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
}
