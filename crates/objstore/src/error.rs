use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("object {key:?} not found in {bucket}")]
    NotFound { bucket: String, key: String },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("invalid range {start}..{end} for object {key:?} in {bucket}")]
    InvalidRange {
        bucket: String,
        key: String,
        start: u64,
        end: u64,
    },
    #[error("{op} {key:?} in {bucket}: {source}")]
    Store {
        op: &'static str,
        bucket: String,
        key: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{op} local file {path}: {source}")]
    LocalFile {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BucketError {
    /// Whether the object does not exist (Thanos's `IsObjNotFoundErr`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, BucketError::NotFound { .. })
    }
}
