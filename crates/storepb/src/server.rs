//! Serving a [`StoreApi`] over gRPC with Thanos's server settings.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::MAX_MESSAGE_SIZE;
use crate::api::{StoreApi, StoreApiService};
use crate::proto::thanos::info::info_server::InfoServer;
use crate::proto::thanos::store_server::StoreServer;
use crate::snappy::SnappyRequestLayer;

/// Thanos's `--grpc-server-max-connection-age` default: clients reconnect (and so re-resolve
/// and rebalance) at least this often.
pub const DEFAULT_MAX_CONNECTION_AGE: Duration = Duration::from_secs(60 * 60);

/// The `thanos.Store` service for `api`, with Thanos's message-size limits.
pub fn store_service<S: StoreApi + ?Sized>(api: Arc<S>) -> StoreServer<StoreApiService<S>> {
    StoreServer::new(StoreApiService::new(api))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// The `thanos.info.Info` service for `api`, with Thanos's message-size limits.
pub fn info_service<S: StoreApi + ?Sized>(api: Arc<S>) -> InfoServer<StoreApiService<S>> {
    InfoServer::new(StoreApiService::new(api))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// A tonic server builder with Thanos's connection settings; add more services (rules,
/// metadata, ...) to it before serving.
pub fn server_builder() -> Server {
    Server::builder()
        .tcp_nodelay(true)
        .max_connection_age(DEFAULT_MAX_CONNECTION_AGE)
}

/// Serves `thanos.Store` and `thanos.info.Info` for `api` on `listener` until `shutdown`
/// completes, then lets in-flight calls finish. Requests compressed with Thanos's `snappy`
/// compressor are accepted.
pub async fn serve<S, F>(api: Arc<S>, listener: TcpListener, shutdown: F) -> Result<(), tonic::transport::Error>
where
    S: StoreApi + ?Sized,
    F: Future<Output = ()> + Send,
{
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving StoreAPI (thanos.Store, thanos.info.Info) over gRPC");
    }
    let mut builder = server_builder().layer(SnappyRequestLayer);
    builder
        .add_service(store_service(api.clone()))
        .add_service(info_service(api))
        // `TcpIncoming::from` ignores the builder's `tcp_nodelay`: without it every reply
        // waits ~45 ms for the client's delayed ACK (Nagle), which dominated small queries.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await
}
