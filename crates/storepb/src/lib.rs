//! Thanos StoreAPI over gRPC: the `thanos.Store` and `thanos.info.Info` services with Thanos's
//! package names, service paths, message names and field numbers, so that Hypnos components and
//! Thanos components can call each other.
//!
//! - [`proto`]: the generated prost messages and tonic clients/servers (compiled from
//!   `proto/` by protox in `build.rs`, no `protoc`).
//! - [`convert`]: proto ↔ `hypnos-model` (labels, matchers).
//! - [`chunk`]: the Thanos ↔ TSDB chunk-encoding mapping and xxhash64 chunk hashes.
//! - [`hints`]: `google.protobuf.Any` packing of the store-gateway hints.
//! - [`shard`]: the `ShardInfo` series-to-shard rule.
//! - [`request`]: decoded `SeriesRequest`s, external-label matching, batching and `limit`.
//! - [`api`]: the [`StoreApi`] trait components implement, and its tonic adapter.
//! - [`server`] / [`client`]: transport helpers with Thanos's message-size limits and keepalive;
//!   [`snappy`] lets the server accept Thanos's `snappy`-compressed requests.

pub mod api;
pub mod chunk;
pub mod client;
pub mod convert;
pub mod hints;
pub mod request;
pub mod server;
pub mod shard;
pub mod snappy;

/// Generated code. Module nesting follows the proto packages, which prost's cross-package
/// references (`super::ZLabelSet`, `super::thanos::LabelMatcher`) rely on.
pub mod proto {
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod thanos {
        include!(concat!(env!("OUT_DIR"), "/thanos.rs"));

        #[allow(clippy::all, clippy::pedantic, missing_docs)]
        pub mod info {
            include!(concat!(env!("OUT_DIR"), "/thanos.info.rs"));
        }
    }

    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod hintspb {
        include!(concat!(env!("OUT_DIR"), "/hintspb.rs"));
    }
}

pub use api::{SeriesStream, StoreApi, StoreApiService};
pub use convert::ConvertError;
pub use proto::{hintspb, thanos, thanos::info};

/// Thanos's gRPC message-size limit, both directions, server and client: `math.MaxInt32`
/// (`pkg/server/grpc/grpc.go` `MaxSendMsgSize`/`MaxRecvMsgSize`, `pkg/extgrpc/client.go`
/// `MaxCallRecvMsgSize`). tonic's own default decode limit is 4 MiB, too small for large
/// `LabelValues` answers or batched `Series` frames.
pub const MAX_MESSAGE_SIZE: usize = i32::MAX as usize;

/// `InfoResponse.ComponentType` values (Thanos `pkg/component/component.go`).
pub mod component {
    pub const SIDECAR: &str = "sidecar";
    pub const STORE: &str = "store";
    pub const QUERY: &str = "query";
    pub const RULE: &str = "rule";
    pub const RECEIVE: &str = "receive";
    pub const DEBUG: &str = "debug";
}

pub mod testing;
