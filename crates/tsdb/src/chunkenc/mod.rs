//! Chunk encodings: XOR floats (1), integer native histograms (2), float native
//! histograms (3), each with an appender and an iterator that can seek.

pub mod bstream;
pub mod histogram;
pub mod varbit;
pub mod xor;

use hypnos_model::SampleValue;

pub use histogram::{
    CounterResetHeader, FloatHistogramAppender, FloatHistogramIterator, HistogramAppender, HistogramIterator,
};
pub use xor::{XorAppender, XorIterator};

use crate::error::DecodeError;

/// A chunk encoding byte as stored in segment files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    Xor,
    Histogram,
    FloatHistogram,
}

impl Encoding {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Encoding::Xor),
            2 => Some(Encoding::Histogram),
            3 => Some(Encoding::FloatHistogram),
            _ => None,
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            Encoding::Xor => 1,
            Encoding::Histogram => 2,
            Encoding::FloatHistogram => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Xor => "XOR",
            Encoding::Histogram => "histogram",
            Encoding::FloatHistogram => "floathistogram",
        }
    }
}

/// The number of samples a chunk's header claims (first two bytes of the data).
pub fn num_samples(data: &[u8]) -> Result<usize, DecodeError> {
    match data {
        [a, b, ..] => Ok(usize::from(u16::from_be_bytes([*a, *b]))),
        _ => Err(DecodeError::new(0, "chunk data shorter than its sample count")),
    }
}

/// Iterates the samples of a chunk of any encoding.
// The XOR iterator carries its batch of decoded samples inline: boxing it would cost an
// allocation per chunk, and there is one of these per chunk being read, not per sample.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum SampleIterator<'a> {
    Xor(XorIterator<'a>),
    Histogram(HistogramIterator<'a>),
    FloatHistogram(FloatHistogramIterator<'a>),
    /// Stopped after an error: decoding past one would only produce garbage.
    Done,
}

impl<'a> SampleIterator<'a> {
    pub fn new(encoding: Encoding, data: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(match encoding {
            Encoding::Xor => SampleIterator::Xor(XorIterator::new(data)?),
            Encoding::Histogram => SampleIterator::Histogram(HistogramIterator::new(data)?),
            Encoding::FloatHistogram => SampleIterator::FloatHistogram(FloatHistogramIterator::new(data)?),
        })
    }

    pub fn next_sample(&mut self) -> Result<Option<(i64, SampleValue)>, DecodeError> {
        Ok(match self {
            SampleIterator::Xor(it) => it.next_sample()?.map(|(t, v)| (t, SampleValue::Float(v))),
            SampleIterator::Histogram(it) => it
                .next_histogram()?
                .map(|(t, h)| (t, SampleValue::Histogram(Box::new(h)))),
            SampleIterator::FloatHistogram(it) => it
                .next_histogram()?
                .map(|(t, h)| (t, SampleValue::FloatHistogram(Box::new(h)))),
            SampleIterator::Done => None,
        })
    }

    /// Advances to the first sample at or after `t`.
    pub fn seek(&mut self, t: i64) -> Result<Option<(i64, SampleValue)>, DecodeError> {
        while let Some((st, v)) = self.next_sample()? {
            if st >= t {
                return Ok(Some((st, v)));
            }
        }
        Ok(None)
    }
}

impl Iterator for SampleIterator<'_> {
    type Item = Result<(i64, SampleValue), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_sample() {
            Ok(Some(s)) => Some(Ok(s)),
            Ok(None) => None,
            Err(e) => {
                *self = SampleIterator::Done;
                Some(Err(e))
            }
        }
    }
}

/// Decodes every sample of a chunk, for checks and tools.
pub fn decode_all(encoding: Encoding, data: &[u8]) -> Result<Vec<(i64, SampleValue)>, DecodeError> {
    let mut it = SampleIterator::new(encoding, data)?;
    let mut out = Vec::with_capacity(num_samples(data)?.min(data.len() * 8));
    while let Some(s) = it.next_sample()? {
        out.push(s);
    }
    Ok(out)
}
