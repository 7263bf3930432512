//! Samples and Prometheus's special float values.

use crate::{FloatHistogram, Histogram, Timestamp};

/// The bit pattern Prometheus writes as a staleness marker (`value.StaleNaN`). It is a NaN,
/// so it must be recognised by bits, never by comparison.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The NaN Prometheus uses for ordinary NaN values (`value.NormalNaN`).
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A float sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub t: Timestamp,
    pub v: f64,
}

/// The value of one sample of any kind a series can hold.
#[derive(Clone, Debug, PartialEq)]
pub enum SampleValue {
    Float(f64),
    Histogram(Box<Histogram>),
    FloatHistogram(Box<FloatHistogram>),
}

impl SampleValue {
    /// Whether this is a staleness marker (a float StaleNaN, or a histogram whose sum is one).
    pub fn is_stale(&self) -> bool {
        match self {
            SampleValue::Float(v) => is_stale_nan(*v),
            SampleValue::Histogram(h) => is_stale_nan(h.sum),
            SampleValue::FloatHistogram(h) => is_stale_nan(h.sum),
        }
    }
}
