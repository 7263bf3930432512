//! `hypnos query` (being built).

use clap::Args;

/// Flags of `hypnos query`.
#[derive(Clone, Debug, Args)]
pub struct QueryArgs {}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("`hypnos query` is not implemented yet")]
    NotImplemented,
}

/// Runs the component until `shutdown` resolves.
pub async fn run(
    _args: QueryArgs,
    _shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), QueryError> {
    Err(QueryError::NotImplemented)
}
