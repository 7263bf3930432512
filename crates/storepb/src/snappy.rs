//! Accepting requests compressed with Thanos's `snappy` gRPC compressor.
//!
//! Thanos queriers run with `--grpc-compression=snappy` (and receivers by default) compress
//! requests with grpc-encoding `snappy`: the snappy *framing* format (klauspost/compress
//! `snappy.NewBufferedWriter`), not raw block snappy. tonic only knows gzip, deflate and zstd
//! and answers `Unimplemented` to anything else, so this layer, in front of the router,
//! decompresses such requests into plain gRPC frames before tonic sees them. Responses stay
//! uncompressed, which every gRPC client accepts.
//!
//! StoreAPI requests are single messages, so buffering the request body costs nothing.

use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tower::{Layer, Service};

use crate::MAX_MESSAGE_SIZE;

const GRPC_ENCODING: &str = "grpc-encoding";
const SNAPPY: &str = "snappy";

/// Decompresses `grpc-encoding: snappy` requests; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnappyRequestLayer;

impl<S> Layer<S> for SnappyRequestLayer {
    type Service = SnappyRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SnappyRequests { inner }
    }
}

#[derive(Debug, Clone)]
pub struct SnappyRequests<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S, ResBody> Service<Request<Body>> for SnappyRequests<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ResBody: http_body_util::BodyExt<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let snappy = req
            .headers()
            .get(GRPC_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(SNAPPY.as_bytes()));
        if !snappy {
            let fut = self.inner.call(req);
            return Box::pin(async move { fut.await.map(|r| r.map(Body::new)) });
        }
        // The service that was polled ready handles this call; the clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let plain = match Limited::new(body, MAX_MESSAGE_SIZE).collect().await {
                Ok(collected) => decompress_frames(&collected.to_bytes()),
                Err(e) => Err(Status::invalid_argument(format!(
                    "reading snappy-compressed request: {e}"
                ))),
            };
            let plain = match plain {
                Ok(p) => p,
                Err(status) => return Ok(status.into_http()),
            };
            parts.headers.remove(GRPC_ENCODING);
            let req = Request::from_parts(parts, Body::new(Full::new(plain)));
            inner.call(req).await.map(|r| r.map(Body::new))
        })
    }
}

/// Rewrites gRPC length-prefixed messages (`flag u8, length u32 BE, bytes`) so that every
/// compressed one (flag 1) is decompressed from the snappy framing format (flag 0).
fn decompress_frames(body: &[u8]) -> Result<Bytes, Status> {
    let mut out = BytesMut::with_capacity(body.len() * 2);
    let mut rest = body;
    while !rest.is_empty() {
        if rest.len() < 5 {
            return Err(Status::invalid_argument(
                "truncated gRPC message header in snappy request",
            ));
        }
        let compressed = match rest[0] {
            0 => false,
            1 => true,
            flag => {
                return Err(Status::invalid_argument(format!(
                    "invalid gRPC compression flag {flag}"
                )));
            }
        };
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let msg = rest
            .get(5..5 + len)
            .ok_or_else(|| Status::invalid_argument("truncated gRPC message in snappy request"))?;
        rest = &rest[5 + len..];
        let plain = if compressed {
            let mut buf = Vec::new();
            snap::read::FrameDecoder::new(msg)
                .take(MAX_MESSAGE_SIZE as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Status::invalid_argument(format!("decompressing snappy gRPC message: {e}")))?;
            if buf.len() > MAX_MESSAGE_SIZE {
                return Err(Status::resource_exhausted(
                    "decompressed gRPC message exceeds the size limit",
                ));
            }
            Bytes::from(buf)
        } else {
            Bytes::copy_from_slice(msg)
        };
        out.put_u8(0);
        out.put_u32(u32::try_from(plain.len()).map_err(|_| Status::resource_exhausted("gRPC message too large"))?);
        out.put_slice(&plain);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use prost::Message;

    use super::*;
    use crate::api::{SeriesStream, StoreApi};
    use crate::proto::thanos::info::InfoResponse;
    use crate::proto::thanos::{
        LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse, SeriesRequest,
    };
    use crate::server::store_service;

    struct Echo;

    #[tonic::async_trait]
    impl StoreApi for Echo {
        async fn info(&self) -> Result<InfoResponse, Status> {
            Err(Status::unimplemented("test"))
        }
        async fn series(&self, _req: SeriesRequest) -> Result<SeriesStream, Status> {
            Err(Status::unimplemented("test"))
        }
        async fn label_names(&self, _req: LabelNamesRequest) -> Result<LabelNamesResponse, Status> {
            Err(Status::unimplemented("test"))
        }
        async fn label_values(&self, req: LabelValuesRequest) -> Result<LabelValuesResponse, Status> {
            Ok(LabelValuesResponse {
                values: vec![req.label],
                ..Default::default()
            })
        }
    }

    fn grpc_frame(flag: u8, msg: &[u8]) -> Vec<u8> {
        let mut f = vec![flag];
        f.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        f.extend_from_slice(msg);
        f
    }

    fn snappy_framed(data: &[u8]) -> Vec<u8> {
        let mut enc = snap::write::FrameEncoder::new(Vec::new());
        enc.write_all(data).unwrap();
        enc.into_inner().unwrap()
    }

    async fn call(body: Vec<u8>, encoding: Option<&str>) -> (Option<String>, Bytes) {
        let mut svc = SnappyRequestLayer.layer(store_service(Arc::new(Echo)));
        let mut req = Request::builder()
            .method("POST")
            .uri("/thanos.Store/LabelValues")
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(e) = encoding {
            req = req.header(GRPC_ENCODING, e);
        }
        let req = req.body(Body::new(Full::new(Bytes::from(body)))).unwrap();
        let resp = svc.call(req).await.unwrap();
        let header_status = resp
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_string());
        let collected = resp.into_body().collect().await.unwrap();
        let trailer_status = collected
            .trailers()
            .and_then(|t| t.get("grpc-status"))
            .map(|v| v.to_str().unwrap().to_string());
        (header_status.or(trailer_status), collected.to_bytes())
    }

    #[tokio::test]
    async fn snappy_request_is_answered() {
        let msg = LabelValuesRequest {
            label: "job".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let (status, body) = call(grpc_frame(1, &snappy_framed(&msg)), Some("snappy")).await;
        assert_eq!(status.as_deref(), Some("0"));
        let resp = LabelValuesResponse::decode(&body[5..]).unwrap();
        assert_eq!(resp.values, ["job"]);

        // Uncompressed requests pass through untouched.
        let (status, body) = call(grpc_frame(0, &msg), None).await;
        assert_eq!(status.as_deref(), Some("0"));
        assert_eq!(LabelValuesResponse::decode(&body[5..]).unwrap().values, ["job"]);
    }

    #[tokio::test]
    async fn corrupt_snappy_is_invalid_argument() {
        let (status, _) = call(grpc_frame(1, b"not snappy at all"), Some("snappy")).await;
        assert_eq!(status.as_deref(), Some("3"), "InvalidArgument");
        let (status, _) = call(vec![1, 0, 0], Some("snappy")).await;
        assert_eq!(status.as_deref(), Some("3"));
    }
}
