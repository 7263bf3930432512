//! `hypnos sidecar` (being built).

use clap::Args;

/// Flags of `hypnos sidecar`.
#[derive(Clone, Debug, Args)]
pub struct SidecarArgs {}

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("`hypnos sidecar` is not implemented yet")]
    NotImplemented,
}

/// Runs the component until `shutdown` resolves.
pub async fn run(
    _args: SidecarArgs,
    _shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), SidecarError> {
    Err(SidecarError::NotImplemented)
}
