//! `hypnos store` (being built).

use clap::Args;

/// Flags of `hypnos store`.
#[derive(Clone, Debug, Args)]
pub struct StoreArgs {}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("`hypnos store` is not implemented yet")]
    NotImplemented,
}

/// Runs the component until `shutdown` resolves.
pub async fn run(
    _args: StoreArgs,
    _shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StoreError> {
    Err(StoreError::NotImplemented)
}
