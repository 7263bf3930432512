//! Calling a remote StoreAPI endpoint, with Thanos's client settings. [`GrpcStore`] implements
//! [`StoreApi`] itself, so a querier treats remote and in-process stores alike.

use std::time::Duration;

use futures::StreamExt;
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

use crate::MAX_MESSAGE_SIZE;
use crate::api::{SeriesStream, StoreApi};
use crate::proto::thanos::info::info_client::InfoClient;
use crate::proto::thanos::info::{InfoRequest, InfoResponse};
use crate::proto::thanos::store_client::StoreClient;
use crate::proto::thanos::{
    LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse, SeriesRequest,
};

/// Thanos clients ping every 10 s and give up after 5 s without an answer
/// (`pkg/extgrpc/client.go`). Thanos servers close connections that ping more often than every
/// 10 s, so the interval must not go lower.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid StoreAPI endpoint {endpoint:?}: {source}")]
    InvalidEndpoint {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("connecting to StoreAPI endpoint {endpoint:?}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// An endpoint for a Thanos-style address: `host:port` (as in `--endpoint`) gets `http://`;
/// a full `http://` URI is used as is.
pub fn endpoint(addr: &str) -> Result<Endpoint, ClientError> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let ep = Endpoint::from_shared(uri).map_err(|source| ClientError::InvalidEndpoint {
        endpoint: addr.to_string(),
        source,
    })?;
    // Like grpc-go's BDP estimation: the receive window grows with the connection's
    // bandwidth-delay product, so a store streaming a large answer is not throttled to one
    // 64 KiB window per round trip while the querier works through what arrived.
    Ok(ep
        .http2_adaptive_window(true)
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT))
}

/// A StoreAPI client over one channel (`thanos.Store` and `thanos.info.Info`).
#[derive(Debug, Clone)]
pub struct GrpcStore {
    addr: String,
    store: StoreClient<Channel>,
    info: InfoClient<Channel>,
}

impl GrpcStore {
    /// Connects now; fails if the endpoint is unreachable.
    pub async fn connect(addr: &str) -> Result<Self, ClientError> {
        let channel = endpoint(addr)?.connect().await.map_err(|source| ClientError::Connect {
            endpoint: addr.to_string(),
            source,
        })?;
        Ok(Self::from_channel(addr, channel))
    }

    /// Connects on first use and reconnects as needed, so an endpoint that is down at start-up
    /// becomes usable when it comes up.
    pub fn connect_lazy(addr: &str) -> Result<Self, ClientError> {
        Ok(Self::from_channel(addr, endpoint(addr)?.connect_lazy()))
    }

    pub fn from_channel(addr: &str, channel: Channel) -> Self {
        GrpcStore {
            addr: addr.to_string(),
            store: StoreClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            info: InfoClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The generated client, for calls this wrapper does not cover (metadata, compression).
    pub fn store_client(&self) -> StoreClient<Channel> {
        self.store.clone()
    }

    pub fn info_client(&self) -> InfoClient<Channel> {
        self.info.clone()
    }
}

#[tonic::async_trait]
impl StoreApi for GrpcStore {
    async fn info(&self) -> Result<InfoResponse, Status> {
        Ok(self.info.clone().info(InfoRequest {}).await?.into_inner())
    }

    async fn series(&self, req: SeriesRequest) -> Result<SeriesStream, Status> {
        let stream = self.store.clone().series(req).await?.into_inner();
        Ok(stream.boxed())
    }

    async fn label_names(&self, req: LabelNamesRequest) -> Result<LabelNamesResponse, Status> {
        Ok(self.store.clone().label_names(req).await?.into_inner())
    }

    async fn label_values(&self, req: LabelValuesRequest) -> Result<LabelValuesResponse, Status> {
        Ok(self.store.clone().label_values(req).await?.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_host_port_gets_http() {
        assert_eq!(
            endpoint("127.0.0.1:10901").unwrap().uri().to_string(),
            "http://127.0.0.1:10901/"
        );
        assert_eq!(
            endpoint("http://store:10901").unwrap().uri().to_string(),
            "http://store:10901/"
        );
        assert!(endpoint("not a uri").is_err());
    }
}
