//! JSON exactly as Prometheus writes it: Go's string escaping, jsoniter's float and timestamp
//! formats for vectors and matrices, encoding/json's for scalars and strings, and the native
//! histogram object with its bucket boundary codes.

use std::fmt::Write;

use hypnos_model::histogram::bucket_indexes;
use hypnos_model::{FloatHistogram, Labels};
use hypnos_promql::{Sample, Series, Value};

use super::bounds::bucket_bound;

const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// A JSON string with Go's encoding/json escaping (HTML-safe: `<`, `>`, `&` become `\u003c`
/// etc.; U+2028 and U+2029 are escaped; other control characters as `\u00XX`).
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: shortest digits, two-digit exponent minimum.
fn go_e(v: f64) -> String {
    let s = format!("{v:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    if digits.len() < 2 {
        format!("{mant}e{sign}0{digits}")
    } else {
        format!("{mant}e{sign}{digits}")
    }
}

fn special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// jsoniter's sample value format (`jsonutil.MarshalFloat`), without quotes: `'e'` when
/// `|v| < 1e-6` or `|v| >= 1e21`, else plain decimal.
pub fn format_sample_value(v: f64) -> String {
    let mut out = String::new();
    write_sample_value(&mut out, v);
    out
}

/// [`format_sample_value`] appended to `out`: the common plain-decimal case allocates nothing.
fn write_sample_value(out: &mut String, v: f64) {
    if let Some(s) = special(v) {
        out.push_str(s);
        return;
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        out.push_str(&go_e(v));
    } else {
        write_plain_decimal(out, v);
    }
}

/// Shortest round-trip digits in plain decimal notation, as `{v}` writes them (and Go's
/// `'f', -1`), through zmij, which is several times faster than std's formatter: a large
/// range query writes a float per point. zmij writes `1.0` for integers and switches to an
/// exponent for large and tiny magnitudes; those cases go to std.
fn write_plain_decimal(out: &mut String, v: f64) {
    let mut buf = zmij::Buffer::new();
    let s = buf.format_finite(v);
    if s.contains('e') {
        let _ = write!(out, "{v}");
    } else {
        out.push_str(s.strip_suffix(".0").unwrap_or(s));
    }
}

/// encoding/json scalar value format: `strconv.FormatFloat(v, 'f', -1, 64)`.
pub fn format_scalar_value(v: f64) -> String {
    special(v).map_or_else(
        || {
            let mut out = String::new();
            write_plain_decimal(&mut out, v);
            out
        },
        str::to_string,
    )
}

/// jsoniter timestamp: whole seconds, then `.` and exactly three digits when ms ≠ 0.
pub fn write_timestamp(out: &mut String, t: i64) {
    let (neg, abs) = if t < 0 {
        (true, t.unsigned_abs())
    } else {
        (false, t.unsigned_abs())
    };
    if neg {
        out.push('-');
    }
    out.push_str(itoa::Buffer::new().format(abs / 1000));
    let frac = abs % 1000;
    if frac != 0 {
        out.push('.');
        for d in [frac / 100, frac / 10 % 10, frac % 10] {
            out.push(char::from(b'0' + d as u8));
        }
    }
}

/// encoding/json float64 for a scalar's timestamp (`float64(t)/1000`).
pub fn write_float_timestamp(out: &mut String, t: i64) {
    let v = t as f64 / 1000.0;
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // encoding/json trims the exponent's leading zero: 1e-07 → 1e-7.
        out.push_str(&format!("{v:e}").replace("e", "e+").replace("e+-", "e-"));
    } else {
        let _ = write!(out, "{v}");
    }
}

pub fn write_labels(out: &mut String, ls: &Labels) {
    out.push('{');
    for (i, l) in ls.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &l.name);
        out.push(':');
        write_str(out, &l.value);
    }
    out.push('}');
}

pub fn write_string_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, s);
    }
    out.push(']');
}

fn write_quoted_value(out: &mut String, v: f64) {
    out.push('"');
    write_sample_value(out, v);
    out.push('"');
}

/// The native histogram object: `{"count":"…","sum":"…","buckets":[[rule,"lo","hi","n"],…]}`.
/// Rules: 0 = (lo, hi] (positive), 1 = [lo, hi) (negative), 3 = [lo, hi] (zero bucket).
pub fn write_histogram(out: &mut String, h: &FloatHistogram) {
    out.push_str("{\"count\":");
    write_quoted_value(out, h.count);
    out.push_str(",\"sum\":");
    write_quoted_value(out, h.sum);
    let mut buckets: Vec<(u8, f64, f64, f64)> = Vec::new();
    if h.schema == CUSTOM_BUCKETS_SCHEMA {
        for (i, c) in bucket_indexes(&h.positive_spans, &h.positive_buckets) {
            let Ok(iu) = usize::try_from(i) else { continue };
            let upper = h.custom_values.get(iu).copied().unwrap_or(f64::INFINITY);
            let lower = if iu == 0 {
                f64::NEG_INFINITY
            } else {
                h.custom_values.get(iu - 1).copied().unwrap_or(f64::INFINITY)
            };
            buckets.push((0, lower, upper, c));
        }
    } else {
        let neg: Vec<(i32, f64)> = bucket_indexes(&h.negative_spans, &h.negative_buckets).collect();
        for &(i, c) in neg.iter().rev() {
            buckets.push((1, -bucket_bound(i, h.schema), -bucket_bound(i - 1, h.schema), c));
        }
        buckets.push((3, -h.zero_threshold, h.zero_threshold, h.zero_count));
        for (i, c) in bucket_indexes(&h.positive_spans, &h.positive_buckets) {
            buckets.push((0, bucket_bound(i - 1, h.schema), bucket_bound(i, h.schema), c));
        }
    }
    let mut first = true;
    for (rule, lo, hi, c) in buckets {
        if c == 0.0 {
            continue;
        }
        out.push_str(if first { ",\"buckets\":[" } else { "," });
        first = false;
        let _ = write!(out, "[{rule},");
        write_quoted_value(out, lo);
        out.push(',');
        write_quoted_value(out, hi);
        out.push(',');
        write_quoted_value(out, c);
        out.push(']');
    }
    if !first {
        out.push(']');
    }
    out.push('}');
}

/// About how many bytes [`write_query_data`] writes for floats (histograms are larger, and
/// the buffer grows for them): enough to size a small answer's buffer once.
fn size_hint(v: &Value) -> usize {
    let labels = |ls: &Labels| ls.iter().map(|l| l.name.len() + l.value.len() + 6).sum::<usize>() + 16;
    match v {
        Value::Scalar { .. } => 64,
        Value::String { s, .. } => s.len() + 64,
        Value::Vector(samples) => samples.iter().map(|s| labels(&s.metric) + 48).sum::<usize>() + 64,
        Value::Matrix(m) => {
            m.iter()
                .map(|s| labels(&s.metric) + 24 + 28 * (s.floats.len() + s.histograms.len()))
                .sum::<usize>()
                + 64
        }
    }
}

/// `{"resultType":…,"result":…}` for a query value.
pub fn write_query_data(out: &mut String, v: &Value) {
    write_data_head(out, v.type_name());
    match v {
        Value::Scalar { t, v } => {
            out.push('[');
            write_float_timestamp(out, *t);
            out.push_str(",\"");
            out.push_str(&format_scalar_value(*v));
            out.push_str("\"]");
        }
        Value::String { t, s } => {
            out.push('[');
            write_float_timestamp(out, *t);
            out.push(',');
            write_str(out, s);
            out.push(']');
        }
        Value::Vector(vec) => {
            out.push('[');
            for (i, s) in vec.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_vector_sample(out, s);
            }
            out.push(']');
        }
        Value::Matrix(m) => {
            out.push('[');
            for (i, s) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_matrix_series(out, s);
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// `{"resultType":"…","result":`
fn write_data_head(out: &mut String, type_name: &str) {
    out.push_str("{\"resultType\":\"");
    out.push_str(type_name);
    out.push_str("\",\"result\":");
}

/// One element of an instant vector: `{"metric":{…},"value":[t,"v"]}` (or `"histogram"`).
fn write_vector_sample(out: &mut String, s: &Sample) {
    out.push_str("{\"metric\":");
    write_labels(out, &s.metric);
    match &s.h {
        Some(h) => {
            out.push_str(",\"histogram\":[");
            write_timestamp(out, s.t);
            out.push(',');
            write_histogram(out, h);
        }
        None => {
            out.push_str(",\"value\":[");
            write_timestamp(out, s.t);
            out.push(',');
            write_quoted_value(out, s.f);
        }
    }
    out.push_str("]}");
}

/// One series of a range vector: `{"metric":{…},"values":[…],"histograms":[…]}`.
fn write_matrix_series(out: &mut String, s: &Series) {
    out.push_str("{\"metric\":");
    write_labels(out, &s.metric);
    if !s.floats.is_empty() {
        out.push_str(",\"values\":[");
        for (j, p) in s.floats.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push('[');
            write_timestamp(out, p.t);
            out.push(',');
            write_quoted_value(out, p.v);
            out.push(']');
        }
        out.push(']');
    }
    if !s.histograms.is_empty() {
        out.push_str(",\"histograms\":[");
        for (j, p) in s.histograms.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push('[');
            write_timestamp(out, p.t);
            out.push(',');
            write_histogram(out, &p.h);
            out.push(']');
        }
        out.push(']');
    }
    out.push('}');
}

/// The elements of a vector or matrix still to write, each dropped once written.
enum Elements {
    Vector(std::vec::IntoIter<Sample>),
    Matrix(std::vec::IntoIter<Series>),
}

/// A query answer written piece by piece: `head`, then the value's `data` object, then `tail`,
/// in pieces of about [`QueryDataPieces::PIECE`] bytes. The bytes are those of writing it all
/// into one string; only the memory differs: a large matrix is never held as text in full,
/// and each series is freed as soon as it is written.
pub struct QueryDataPieces {
    /// Written before the next element: the envelope's start (first piece only) or a comma.
    pending: String,
    /// The estimated size of what is still to write, to size the last piece's buffer.
    size_hint: usize,
    elements: Option<Elements>,
    /// Whether an element was written: every later one is preceded by a comma.
    written_any: bool,
    tail: Option<String>,
}

impl QueryDataPieces {
    /// A piece is cut once it holds this much (a single element can make it longer).
    pub const PIECE: usize = 64 * 1024;

    /// `head` + data + `tail`; scalars and strings are written at once into the first piece.
    pub fn new(head: &str, value: Value, tail: String) -> Self {
        let size_hint = head.len() + size_hint(&value) + tail.len();
        let type_name = value.type_name();
        let mut pending = String::with_capacity(head.len() + 64);
        pending.push_str(head);
        let elements = match value {
            Value::Vector(v) => Elements::Vector(v.into_iter()),
            Value::Matrix(m) => Elements::Matrix(m.into_iter()),
            scalar_or_string => {
                write_query_data(&mut pending, &scalar_or_string);
                pending.push_str(&tail);
                return QueryDataPieces {
                    pending,
                    size_hint,
                    elements: None,
                    written_any: false,
                    tail: None,
                };
            }
        };
        write_data_head(&mut pending, type_name);
        pending.push('[');
        QueryDataPieces {
            pending,
            size_hint,
            elements: Some(elements),
            written_any: false,
            tail: Some(tail),
        }
    }

    /// Whether every piece was handed out.
    pub fn is_done(&self) -> bool {
        self.elements.is_none() && self.pending.is_empty()
    }
}

impl Iterator for QueryDataPieces {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let mut out = std::mem::take(&mut self.pending);
        let Some(elements) = &mut self.elements else {
            return (!out.is_empty()).then_some(out);
        };
        // Room for a piece and the element that ends it; small answers fit their estimate.
        out.reserve((Self::PIECE + Self::PIECE / 4).min(self.size_hint.saturating_sub(out.len())));
        self.size_hint = self.size_hint.saturating_sub(Self::PIECE);
        while out.len() < Self::PIECE {
            let comma = self.written_any;
            let wrote = match elements {
                Elements::Vector(it) => it.next().map(|s| {
                    if comma {
                        out.push(',');
                    }
                    write_vector_sample(&mut out, &s);
                }),
                Elements::Matrix(it) => it.next().map(|s| {
                    if comma {
                        out.push(',');
                    }
                    write_matrix_series(&mut out, &s);
                }),
            };
            if wrote.is_none() {
                out.push_str("]}");
                out.push_str(&self.tail.take().unwrap_or_default());
                self.elements = None;
                break;
            }
            self.written_any = true;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypnos_model::Span;

    proptest::proptest! {
        /// zmij's digits in plain notation read back as the same float and are as short as
        /// std's; they differ from std's only between two equally near 17-digit decimals,
        /// where zmij, like Go, rounds to even (…430.125 is written …430.12, std writes
        /// …430.13).
        #[test]
        fn plain_decimals_round_trip_as_short_as_std(
            bits in proptest::num::u64::ANY,
            mantissa in -1e6f64..1e6,
            exp in -7i32..22,
        ) {
            for v in [f64::from_bits(bits), mantissa * 10f64.powi(exp), (mantissa * 1000.0).round()] {
                if v.is_finite() {
                    let mut got = String::new();
                    write_plain_decimal(&mut got, v);
                    let std = format!("{v}");
                    proptest::prop_assert_eq!(got.parse::<f64>().ok(), Some(v));
                    proptest::prop_assert!(!got.contains('e'));
                    if got != std {
                        proptest::prop_assert_eq!(got.len(), std.len());
                    }
                }
            }
        }

        #[test]
        fn timestamps_like_std(t in proptest::num::i64::ANY) {
            let mut got = String::new();
            write_timestamp(&mut got, t);
            let (sign, abs) = if t < 0 { ("-", t.unsigned_abs()) } else { ("", t.unsigned_abs()) };
            let want = match abs % 1000 {
                0 => format!("{sign}{}", abs / 1000),
                f => format!("{sign}{}.{f:03}", abs / 1000),
            };
            proptest::prop_assert_eq!(got, want);
        }
    }

    fn matrix(series: usize, points: usize) -> Value {
        Value::Matrix(
            (0..series)
                .map(|i| {
                    let n = i.to_string();
                    let mut s = Series::new(Labels::from_pairs([("job", "j<&>"), ("i", n.as_str())]));
                    s.floats = (0..points)
                        .map(|j| hypnos_promql::FPoint {
                            t: 1_700_000_000_000 + j as i64 * 15_001,
                            v: j as f64 * 0.1 - 3.0,
                        })
                        .collect();
                    if i % 3 == 0 {
                        s.histograms = vec![hypnos_promql::HPoint {
                            t: 1_700_000_000_000,
                            h: std::sync::Arc::new(FloatHistogram {
                                count: 2.0,
                                positive_spans: vec![Span::new(0, 1)],
                                positive_buckets: vec![2.0],
                                ..Default::default()
                            }),
                        }];
                    }
                    s
                })
                .collect(),
        )
    }

    fn vector(samples: usize) -> Value {
        Value::Vector(
            (0..samples)
                .map(|i| Sample {
                    metric: Labels::from_pairs([("i", i.to_string())]),
                    t: 1_700_000_000_500,
                    f: i as f64 / 7.0,
                    h: None,
                    drop_name: false,
                })
                .collect(),
        )
    }

    /// Pieces glued together are the one-buffer answer, byte for byte; every piece but the
    /// last is at least a piece long, and small answers come in one piece.
    #[test]
    fn pieces_are_the_whole_answer() {
        let values = [
            matrix(0, 0),
            matrix(1, 3),
            matrix(40, 300),
            matrix(500, 240),
            vector(0),
            vector(2),
            vector(20_000),
            Value::Scalar { t: 1_000, v: 2.5 },
            Value::String {
                t: 1_000,
                s: "a\"b".into(),
            },
        ];
        for v in values {
            let mut whole = String::from("HEAD");
            write_query_data(&mut whole, &v);
            whole.push_str(",\"warnings\":[\"w\"]}");
            let pieces: Vec<String> =
                QueryDataPieces::new("HEAD", v.clone(), ",\"warnings\":[\"w\"]}".into()).collect();
            assert_eq!(pieces.concat(), whole, "{}", v.type_name());
            for p in &pieces[..pieces.len() - 1] {
                assert!(p.len() >= QueryDataPieces::PIECE);
            }
            if whole.len() < QueryDataPieces::PIECE {
                assert_eq!(pieces.len(), 1);
            } else {
                assert!(pieces.len() >= whole.len() / (2 * QueryDataPieces::PIECE));
            }
        }
    }

    #[test]
    fn ties_round_to_even_like_go() {
        // Prometheus 2.42 answers `vector(-195540526084430.125)` with "-195540526084430.12".
        // (Built as a sum: the literal itself is exact, but clippy reads its digits as excess
        // precision, for the very reason tested here.)
        let tie = 195_540_526_084_430.0 + 0.125;
        assert_eq!(format_sample_value(-tie), "-195540526084430.12");
        assert_eq!(format_scalar_value(tie), "195540526084430.12");
    }

    #[test]
    fn sample_values_like_jsoniter() {
        assert_eq!(format_sample_value(1e-7), "1e-07");
        assert_eq!(format_sample_value(1e21), "1e+21");
        assert_eq!(format_sample_value(123456789.125), "123456789.125");
        assert_eq!(format_sample_value(1.5e300), "1.5e+300");
        assert_eq!(format_sample_value(0.000001), "0.000001");
        assert_eq!(format_sample_value(0.0), "0");
        assert_eq!(format_sample_value(-0.0), "-0");
        assert_eq!(format_sample_value(f64::NAN), "NaN");
        assert_eq!(format_sample_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_sample_value(f64::INFINITY), "+Inf");
        assert_eq!(format_sample_value(2.0), "2");
    }

    #[test]
    fn scalar_values_like_encoding_json() {
        assert_eq!(format_scalar_value(1e-7), "0.0000001");
        assert_eq!(format_scalar_value(1e21), "1000000000000000000000");
        assert_eq!(format_scalar_value(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn timestamps() {
        let ts = |t| {
            let mut s = String::new();
            write_timestamp(&mut s, t);
            s
        };
        assert_eq!(ts(1_700_000_000_500), "1700000000.500");
        assert_eq!(ts(1_700_000_000_010), "1700000000.010");
        assert_eq!(ts(1_700_000_000_000), "1700000000");
        assert_eq!(ts(-1500), "-1.500");
        let fts = |t| {
            let mut s = String::new();
            write_float_timestamp(&mut s, t);
            s
        };
        assert_eq!(fts(1_700_000_000_500), "1700000000.5");
        assert_eq!(fts(1_700_000_000_000), "1700000000");
    }

    #[test]
    fn strings_escape_like_go() {
        let mut s = String::new();
        write_str(&mut s, "a<b>&\"\\\n\u{1}é");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001é""#);
    }

    #[test]
    fn histogram_matches_prometheus_2_42() {
        // The verified example of the reference sheet.
        let h = FloatHistogram {
            schema: 1,
            zero_threshold: 0.001,
            zero_count: 3.0,
            count: 10.0,
            sum: 12.5,
            positive_spans: vec![Span::new(0, 3)],
            positive_buckets: vec![2.0, 3.0, 2.0],
            ..Default::default()
        };
        let mut s = String::new();
        write_histogram(&mut s, &h);
        assert_eq!(
            s,
            r#"{"count":"10","sum":"12.5","buckets":[[3,"-0.001","0.001","3"],[0,"0.7071067811865475","1","2"],[0,"1","1.414213562373095","3"],[0,"1.414213562373095","2","2"]]}"#
        );
    }
}
