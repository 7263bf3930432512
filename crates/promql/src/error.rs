//! Query errors, each mapping to one Prometheus API error type.

use crate::parser::ParseError;
use crate::storage::StorageError;

/// The `errorType` strings of the Prometheus HTTP API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    BadData,
    Execution,
    Timeout,
    Canceled,
    Internal,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
        }
    }
}

/// Why a query failed. Messages follow Prometheus's wording so that clients and tests that
/// match on them keep working.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query text does not parse or does not type-check.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A problem found while evaluating (bad argument values, many-to-many matches, …).
    #[error("{0}")]
    Execution(String),
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl QueryError {
    pub fn error_type(&self) -> ErrorType {
        match self {
            QueryError::Parse(_) => ErrorType::BadData,
            QueryError::Execution(_) | QueryError::TooManySamples(_) => ErrorType::Execution,
            QueryError::Timeout(_) => ErrorType::Timeout,
            QueryError::Canceled(_) => ErrorType::Canceled,
            QueryError::Storage(_) => ErrorType::Internal,
        }
    }

    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        QueryError::Execution(msg.into())
    }
}
