//! Native (sparse, exponential) histograms, in the two shapes Prometheus stores them:
//! [`Histogram`] with integer counts and delta-encoded buckets (what scrapes produce and
//! chunk encoding 2 stores) and [`FloatHistogram`] with absolute float counts (what PromQL
//! computes with and chunk encoding 3 stores).
//!
//! Bucket layout: bucket index `i` at schema `s` covers `(2^((i-1)/2^s), 2^(i/2^s)]`;
//! spans describe runs of populated indexes, the first span's offset being the first index
//! and each later offset the gap after the previous span. Schema -53 is the "custom
//! buckets" (NHCB) schema whose bounds are in `custom_values`.

/// Schema used for native histograms with custom bucket boundaries.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// What a writer knew about counter resets when it stored the histogram, with the values of
/// Prometheus's `histogram.CounterResetHint`. Histogram chunk headers encode the same four
/// states with other bits (`0b10` is a reset there): convert in the chunk codec, not here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CounterResetHint {
    #[default]
    Unknown = 0,
    CounterReset = 1,
    NotCounterReset = 2,
    Gauge = 3,
}

impl CounterResetHint {
    /// From the numeric value of Prometheus's `CounterResetHint` (not chunk header bits).
    pub fn from_bits(b: u8) -> Self {
        match b & 0b11 {
            1 => CounterResetHint::CounterReset,
            2 => CounterResetHint::NotCounterReset,
            3 => CounterResetHint::Gauge,
            _ => CounterResetHint::Unknown,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

impl Span {
    pub fn new(offset: i32, length: u32) -> Self {
        Span { offset, length }
    }
}

/// An integer native histogram. Bucket counts are deltas: the first is absolute, each next
/// one is the difference to its predecessor, across spans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: u64,
    pub count: u64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    pub positive_buckets: Vec<i64>,
    pub negative_buckets: Vec<i64>,
    pub custom_values: Vec<f64>,
}

/// A float native histogram. Bucket counts are absolute.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloatHistogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    pub positive_buckets: Vec<f64>,
    pub negative_buckets: Vec<f64>,
    pub custom_values: Vec<f64>,
}

fn deltas_to_absolute(deltas: &[i64]) -> Vec<f64> {
    let mut cur: i64 = 0;
    deltas
        .iter()
        .map(|d| {
            cur = cur.wrapping_add(*d);
            cur as f64
        })
        .collect()
}

impl Histogram {
    /// The same histogram with absolute float counts.
    pub fn to_float(&self) -> FloatHistogram {
        FloatHistogram {
            counter_reset_hint: self.counter_reset_hint,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count as f64,
            count: self.count as f64,
            sum: self.sum,
            positive_spans: self.positive_spans.clone(),
            negative_spans: self.negative_spans.clone(),
            positive_buckets: deltas_to_absolute(&self.positive_buckets),
            negative_buckets: deltas_to_absolute(&self.negative_buckets),
            custom_values: self.custom_values.clone(),
        }
    }

    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }
}

impl FloatHistogram {
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Iterates the populated positive buckets as `(bucket index, count)`.
    pub fn positive_bucket_indexes(&self) -> impl Iterator<Item = (i32, f64)> + '_ {
        bucket_indexes(&self.positive_spans, &self.positive_buckets)
    }

    /// Iterates the populated negative buckets as `(bucket index, count)`.
    pub fn negative_bucket_indexes(&self) -> impl Iterator<Item = (i32, f64)> + '_ {
        bucket_indexes(&self.negative_spans, &self.negative_buckets)
    }
}

/// Walks spans and yields each bucket's index with its value.
pub fn bucket_indexes<'a, T: Copy>(spans: &'a [Span], buckets: &'a [T]) -> impl Iterator<Item = (i32, T)> + 'a {
    let mut idx: i32 = 0;
    spans
        .iter()
        .enumerate()
        .flat_map(move |(si, s)| {
            idx = if si == 0 { s.offset } else { idx.wrapping_add(s.offset) };
            let start = idx;
            idx = idx.wrapping_add(s.length as i32);
            (0..s.length as i32).map(move |k| start.wrapping_add(k))
        })
        .zip(buckets.iter().copied())
}

/// Upper bound of bucket `index` at `schema` for standard exponential schemas.
pub fn bucket_upper_bound(schema: i32, index: i32) -> f64 {
    (f64::from(index) * (-f64::from(schema)).exp2()).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_walk_indexes() {
        let spans = [Span::new(-1, 2), Span::new(3, 1)];
        let got: Vec<(i32, f64)> = bucket_indexes(&spans, &[1.0, 2.0, 3.0]).collect();
        assert_eq!(got, vec![(-1, 1.0), (0, 2.0), (4, 3.0)]);
    }

    #[test]
    fn deltas_become_absolute() {
        let h = Histogram {
            positive_spans: vec![Span::new(0, 3)],
            positive_buckets: vec![2, 1, -3],
            count: 5,
            ..Default::default()
        };
        assert_eq!(h.to_float().positive_buckets, vec![2.0, 3.0, 0.0]);
    }

    #[test]
    fn upper_bounds() {
        assert_eq!(bucket_upper_bound(0, 1), 2.0);
        assert_eq!(bucket_upper_bound(-1, 1), 4.0);
        assert_eq!(bucket_upper_bound(1, 1), 2f64.sqrt());
    }
}
