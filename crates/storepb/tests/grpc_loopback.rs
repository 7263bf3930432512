//! A tonic server with a fake StoreApi answers our tonic client over 127.0.0.1.
// Test helpers outside #[test] fns panic on setup failures too.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use hypnos_model::Labels;
use hypnos_storepb::api::{SeriesFrame, frames};
use hypnos_storepb::chunk::{TSDB_ENC_XOR, chunk_hash, raw_aggr_chunk};
use hypnos_storepb::client::GrpcStore;
use hypnos_storepb::convert::{label_sets_to_proto, labels_to_proto, matchers_from_proto};
use hypnos_storepb::info::{InfoResponse, StoreInfo};
use hypnos_storepb::thanos::{
    LabelMatcher, LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse, Series,
    SeriesRequest, SeriesResponse, label_matcher,
};
use hypnos_storepb::{SeriesStream, StoreApi, component, server};
use tokio::net::TcpListener;
use tonic::{Code, Status};

/// Two series; `LabelValues` for `big` answers more than tonic's default 4 MiB limit.
struct FakeStore {
    series: Vec<Labels>,
}

#[tonic::async_trait]
impl StoreApi for FakeStore {
    async fn info(&self) -> Result<InfoResponse, Status> {
        Ok(InfoResponse {
            label_sets: label_sets_to_proto(&[Labels::from_pairs([("cluster", "c1")])]),
            component_type: component::STORE.into(),
            store: Some(StoreInfo {
                min_time: 0,
                max_time: 1000,
                supports_sharding: true,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn series(&self, req: SeriesRequest) -> Result<SeriesStream, Status> {
        let matchers = matchers_from_proto(&req.matchers)?;
        let mut out = Vec::new();
        for ls in &self.series {
            if matchers.iter().all(|m| m.matches(ls.get(&m.name).unwrap_or(""))) {
                let chunk = raw_aggr_chunk(0, 1000, TSDB_ENC_XOR, Bytes::from(ls.to_string().into_bytes()))?;
                out.push(Ok(SeriesResponse::series(Series {
                    labels: labels_to_proto(ls),
                    chunks: vec![chunk],
                })));
            }
        }
        out.push(Ok(SeriesResponse::warning("fake warning")));
        Ok(futures::stream::iter(out).boxed())
    }

    async fn label_names(&self, _req: LabelNamesRequest) -> Result<LabelNamesResponse, Status> {
        Ok(LabelNamesResponse {
            names: vec!["__name__".into(), "cluster".into()],
            ..Default::default()
        })
    }

    async fn label_values(&self, req: LabelValuesRequest) -> Result<LabelValuesResponse, Status> {
        let values = match req.label.as_str() {
            "big" => (0..200_000).map(|i| format!("value-{i:024}")).collect(),
            _ => vec!["a".into()],
        };
        Ok(LabelValuesResponse {
            values,
            ..Default::default()
        })
    }
}

async fn start() -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let api = Arc::new(FakeStore {
        series: vec![
            Labels::from_pairs([("__name__", "up"), ("job", "a")]),
            Labels::from_pairs([("__name__", "up"), ("job", "b")]),
        ],
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(async move {
        server::serve(api, listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx, handle)
}

#[tokio::test]
async fn fake_store_over_loopback() {
    let (addr, stop, handle) = start().await;
    let client = GrpcStore::connect(&addr).await.unwrap();

    let info = client.info().await.unwrap();
    assert_eq!(info.component_type, "store");
    assert_eq!(info.store.unwrap().max_time, 1000);

    let mut stream = client
        .series(SeriesRequest {
            min_time: 0,
            max_time: 1000,
            matchers: vec![LabelMatcher {
                r#type: label_matcher::Type::Re as i32,
                name: "job".into(),
                value: "b|c".into(),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(resp) = stream.next().await {
        got.extend(frames(resp.unwrap()));
    }
    assert_eq!(got.len(), 2, "{got:?}");
    let SeriesFrame::Series(s) = &got[0] else {
        panic!("want a series first, got {:?}", got[0])
    };
    assert_eq!(
        s.labels,
        labels_to_proto(&Labels::from_pairs([("__name__", "up"), ("job", "b")]))
    );
    let raw = s.chunks[0].raw.as_ref().unwrap();
    assert_eq!(&raw.data[..], br#"up{job="b"}"#);
    assert_eq!(raw.hash, chunk_hash(&raw.data));
    assert_eq!(got[1], SeriesFrame::Warning("fake warning".into()));

    let names = client.label_names(LabelNamesRequest::default()).await.unwrap();
    assert_eq!(names.names, ["__name__", "cluster"]);

    // Over 4 MiB: passes only because both sides raise tonic's default limits.
    let big = client
        .label_values(LabelValuesRequest {
            label: "big".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(big.values.len(), 200_000);
    assert!(prost::Message::encoded_len(&big) > 4 << 20);

    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[tokio::test]
async fn bad_regex_is_invalid_argument_on_the_client() {
    let (addr, _stop, _handle) = start().await;
    let client = GrpcStore::connect(&addr).await.unwrap();
    let err = match client
        .series(SeriesRequest {
            matchers: vec![LabelMatcher {
                r#type: label_matcher::Type::Re as i32,
                name: "job".into(),
                value: "(".into(),
            }],
            ..Default::default()
        })
        .await
    {
        Ok(_) => panic!("a bad regex must fail"),
        Err(e) => e,
    };
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains(r#"job=~"(""#), "{}", err.message());
}

/// A request compressed the way a Thanos querier with `--grpc-compression=snappy` sends it
/// (grpc-encoding `snappy`, snappy framing format), over real HTTP/2 to `server::serve`.
#[tokio::test]
async fn snappy_compressed_request_over_http2() {
    use std::io::Write;

    use http_body_util::{BodyExt, Full};
    use prost::Message;
    use tower::{Service, ServiceExt};

    let (addr, _stop, _handle) = start().await;
    let mut channel = hypnos_storepb::client::endpoint(&addr)
        .unwrap()
        .connect()
        .await
        .unwrap();

    let msg = LabelValuesRequest {
        label: "job".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut enc = snap::write::FrameEncoder::new(Vec::new());
    enc.write_all(&msg).unwrap();
    let compressed = enc.into_inner().unwrap();
    let mut frame = vec![1u8];
    frame.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
    frame.extend_from_slice(&compressed);

    let req = tonic::codegen::http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/thanos.Store/LabelValues"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-encoding", "snappy")
        .body(tonic::body::Body::new(Full::new(bytes::Bytes::from(frame))))
        .unwrap();
    let resp = channel.ready().await.unwrap().call(req).await.unwrap();
    let collected = resp.into_body().collect().await.unwrap();
    let status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(status.as_deref(), Some("0"));
    let body = collected.to_bytes();
    assert_eq!(body[0], 0, "the answer is not compressed");
    assert_eq!(LabelValuesResponse::decode(&body[5..]).unwrap().values, ["a"]);
}
