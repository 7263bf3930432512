//! The wire bytes of known messages, computed by hand from the field numbers in Thanos's
//! protos. If a field number or type in `proto/` drifts from upstream, these fail.

use bytes::Bytes;
use hypnos_storepb::info::{InfoResponse, StoreInfo};
use hypnos_storepb::thanos::{
    AggrChunk, Chunk, Label, LabelMatcher, LabelValuesRequest, PartialResponseStrategy, Series, SeriesRequest,
    SeriesResponse, ZLabelSet, label_matcher,
};
use prost::Message;

fn label(n: &str, v: &str) -> Label {
    Label {
        name: n.into(),
        value: v.into(),
    }
}

fn check<M: Message + Default + PartialEq + std::fmt::Debug>(msg: &M, want: &[u8]) {
    let got = msg.encode_to_vec();
    assert_eq!(got, want, "encoded {msg:?}");
    match M::decode(want) {
        Ok(decoded) => assert_eq!(&decoded, msg, "decoded {want:02x?}"),
        Err(e) => panic!("decoding {want:02x?}: {e}"),
    }
}

#[test]
fn series_request_bytes() {
    let req = SeriesRequest {
        min_time: 1,
        max_time: 300,
        matchers: vec![LabelMatcher {
            r#type: label_matcher::Type::Re as i32,
            name: "job".into(),
            value: "a".into(),
        }],
        partial_response_strategy: PartialResponseStrategy::Abort as i32,
        skip_chunks: true,
        limit: 2,
        response_batch_size: 64,
        ..Default::default()
    };
    #[rustfmt::skip]
    let want = [
        0x08, 0x01,                   // 1 min_time = 1
        0x10, 0xac, 0x02,             // 2 max_time = 300
        0x1a, 0x0a,                   // 3 matchers, 10 bytes:
        0x08, 0x02,                   //   1 type = RE
        0x12, 0x03, b'j', b'o', b'b', //   2 name
        0x1a, 0x01, b'a',             //   3 value
        0x38, 0x01,                   // 7 partial_response_strategy = ABORT
        0x40, 0x01,                   // 8 skip_chunks
        0x78, 0x02,                   // 15 limit = 2
        0x80, 0x01, 0x40,             // 16 response_batch_size = 64
    ];
    check(&req, &want);
}

#[test]
fn series_response_bytes() {
    let resp = SeriesResponse::series(Series {
        labels: vec![label("a", "b")],
        chunks: vec![AggrChunk {
            min_time: 5,
            max_time: 6,
            raw: Some(Chunk {
                r#type: 0,
                data: Bytes::from_static(&[0x01, 0x02]),
                hash: 7,
            }),
            ..Default::default()
        }],
    });
    #[rustfmt::skip]
    let want = [
        0x0a, 0x16,                               // 1 series, 22 bytes:
        0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b', //   1 labels {name=1 "a", value=2 "b"}
        0x12, 0x0c,                               //   2 chunks, 12 bytes:
        0x08, 0x05, 0x10, 0x06,                   //     1 min_time, 2 max_time
        0x1a, 0x06,                               //     3 raw, 6 bytes (type XOR=0 omitted):
        0x12, 0x02, 0x01, 0x02,                   //       2 data
        0x18, 0x07,                               //       3 hash
    ];
    check(&resp, &want);
    check(&SeriesResponse::warning("w"), &[0x12, 0x01, b'w']);
    check(
        &SeriesResponse::batch(vec![Series {
            labels: vec![label("a", "b")],
            chunks: vec![],
        }]),
        &[0x22, 0x0a, 0x0a, 0x08, 0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b'],
    );
}

#[test]
fn label_values_request_bytes() {
    let req = LabelValuesRequest {
        label: "job".into(),
        matchers: vec![LabelMatcher {
            r#type: label_matcher::Type::Eq as i32,
            name: "x".into(),
            value: "y".into(),
        }],
        start: 1,
        ..Default::default()
    };
    #[rustfmt::skip]
    let want = [
        0x0a, 0x03, b'j', b'o', b'b',                 // 1 label
        0x20, 0x01,                                   // 4 start
        0x3a, 0x06, 0x12, 0x01, b'x', 0x1a, 0x01, b'y', // 7 matchers (type EQ=0 omitted)
    ];
    check(&req, &want);
}

#[test]
fn info_response_bytes() {
    let resp = InfoResponse {
        label_sets: vec![ZLabelSet {
            labels: vec![label("a", "b")],
        }],
        component_type: "store".into(),
        store: Some(StoreInfo {
            min_time: 1,
            max_time: i64::MAX,
            supports_sharding: true,
            supports_without_replica_labels: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    #[rustfmt::skip]
    let want = [
        0x0a, 0x08, 0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b', // 1 label_sets
        0x12, 0x05, b's', b't', b'o', b'r', b'e',                   // 2 ComponentType
        0x1a, 0x10,                                                 // 3 store, 16 bytes:
        0x08, 0x01,                                                 //   1 min_time
        0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, //   2 max_time = MaxInt64
        0x18, 0x01,                                                 //   3 supports_sharding
        0x28, 0x01,                                                 //   5 supports_without_replica_labels
    ];
    check(&resp, &want);
}
