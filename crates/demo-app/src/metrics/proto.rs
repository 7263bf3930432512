//! The delimited protobuf exposition format (`io.prometheus.client.MetricFamily`), the only
//! one that carries native histograms. Message and field numbers follow client_model's
//! metrics.proto; only the fields the demo emits are declared.

use prost::Message;

use super::{Family, FamilyKind, NativeHistogram};

pub const CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

#[derive(Clone, PartialEq, Message)]
pub struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub help: Option<String>,
    #[prost(enumeration = "MetricType", optional, tag = "3")]
    pub r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Summary = 2,
    Untyped = 3,
    Histogram = 4,
    GaugeHistogram = 5,
}

#[derive(Clone, PartialEq, Message)]
pub struct LabelPair {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Gauge {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Counter {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    pub cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub upper_bound: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct BucketSpan {
    #[prost(sint32, optional, tag = "1")]
    pub offset: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    pub length: Option<u32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    #[prost(sint32, optional, tag = "5")]
    pub schema: Option<i32>,
    #[prost(double, optional, tag = "6")]
    pub zero_threshold: Option<f64>,
    #[prost(uint64, optional, tag = "7")]
    pub zero_count: Option<u64>,
    #[prost(message, repeated, tag = "9")]
    pub negative_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, packed = "true", tag = "10")]
    pub negative_delta: Vec<i64>,
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, packed = "true", tag = "13")]
    pub positive_delta: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Gauge>,
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Counter>,
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
}

fn label_pairs(labels: &[(&str, String)], extra: &[(&str, &str)]) -> Vec<LabelPair> {
    labels
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .chain(extra.iter().copied())
        .map(|(n, v)| LabelPair {
            name: Some(n.to_string()),
            value: Some(v.to_string()),
        })
        .collect()
}

fn spans(s: Vec<(i32, u32)>) -> Vec<BucketSpan> {
    s.into_iter()
        .map(|(o, l)| BucketSpan {
            offset: Some(o),
            length: Some(l),
        })
        .collect()
}

fn native(h: &NativeHistogram) -> Histogram {
    let (pos_spans, pos_deltas) = NativeHistogram::spans_and_deltas(&h.positive);
    let (neg_spans, neg_deltas) = NativeHistogram::spans_and_deltas(&h.negative);
    let mut positive_span = spans(pos_spans);
    // client_golang marks an empty native histogram with a no-op span so that scrapers
    // recognise it as native even before the first observation.
    if h.zero_threshold == 0.0 && h.zero_count == 0 && positive_span.is_empty() && neg_spans.is_empty() {
        positive_span.push(BucketSpan {
            offset: Some(0),
            length: Some(0),
        });
    }
    Histogram {
        sample_count: Some(h.count),
        sample_sum: Some(h.sum),
        bucket: Vec::new(),
        schema: Some(h.schema),
        zero_threshold: Some(h.zero_threshold),
        zero_count: Some(h.zero_count),
        negative_span: spans(neg_spans),
        negative_delta: neg_deltas,
        positive_span,
        positive_delta: pos_deltas,
    }
}

/// Converts gathered families to protobuf messages.
pub fn to_messages(families: &[Family]) -> Vec<MetricFamily> {
    families
        .iter()
        .map(|f| {
            let (ty, metric) = match &f.kind {
                FamilyKind::Counter(series) => (
                    MetricType::Counter,
                    series
                        .iter()
                        .map(|(l, v)| Metric {
                            label: label_pairs(l, &[]),
                            counter: Some(Counter { value: Some(*v) }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                FamilyKind::Gauge(series) => (
                    MetricType::Gauge,
                    series
                        .iter()
                        .map(|(l, v)| Metric {
                            label: label_pairs(l, &[]),
                            gauge: Some(Gauge { value: Some(*v) }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                FamilyKind::Classic(series) => (
                    MetricType::Histogram,
                    series
                        .iter()
                        .map(|(l, h)| Metric {
                            label: label_pairs(l, &[]),
                            histogram: Some(Histogram {
                                sample_count: Some(h.count),
                                sample_sum: Some(h.sum),
                                bucket: h
                                    .cumulative()
                                    .into_iter()
                                    .map(|(ub, c)| Bucket {
                                        cumulative_count: Some(c),
                                        upper_bound: Some(ub),
                                    })
                                    .collect(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                FamilyKind::Native(series) => (
                    MetricType::Histogram,
                    series
                        .iter()
                        .map(|(l, h)| Metric {
                            label: label_pairs(l, &[]),
                            histogram: Some(native(h)),
                            ..Default::default()
                        })
                        .collect(),
                ),
            };
            MetricFamily {
                name: Some(f.name.to_string()),
                help: Some(f.help.to_string()),
                r#type: Some(ty as i32),
                metric,
            }
        })
        .collect()
}

/// The delimited stream: each family as a uvarint length followed by the message.
pub fn encode(families: &[Family]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in to_messages(families) {
        // Writing into a Vec cannot run out of space.
        let _ = m.encode_length_delimited(&mut out);
    }
    out
}

/// Whether an Accept header asks for the delimited protobuf format.
pub fn accepts_protobuf(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let mut params = part.split(';').map(str::trim);
        params.next() == Some("application/vnd.google.protobuf")
            && part.contains("proto=io.prometheus.client.MetricFamily")
            && part.contains("encoding=delimited")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let prom = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert!(accepts_protobuf(prom));
        assert!(!accepts_protobuf("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
    }
}
