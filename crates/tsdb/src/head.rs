//! Per-series chunk building with Prometheus 2.42's cutting rules (`head_append.go`):
//! about 120 samples per chunk, predicted end times once a chunk holds 30 samples, a
//! hard cut at 240, and never across a chunk-range boundary.

use hypnos_model::{CounterResetHint, FloatHistogram, Histogram, SampleValue};

use crate::chunkenc::{CounterResetHeader, Encoding, FloatHistogramAppender, HistogramAppender, XorAppender};

pub const SAMPLES_PER_CHUNK: usize = 120;

/// One finished chunk of a series, before it is written to a segment file.
#[derive(Clone, Debug)]
pub struct BuiltChunk {
    pub encoding: Encoding,
    pub data: Vec<u8>,
    pub min_time: i64,
    pub max_time: i64,
    pub num_samples: usize,
}

#[derive(Clone, Debug)]
enum Appender {
    Xor(XorAppender),
    Histogram(HistogramAppender),
    FloatHistogram(FloatHistogramAppender),
}

impl Appender {
    fn encoding(&self) -> Encoding {
        match self {
            Appender::Xor(_) => Encoding::Xor,
            Appender::Histogram(_) => Encoding::Histogram,
            Appender::FloatHistogram(_) => Encoding::FloatHistogram,
        }
    }
    fn num_samples(&self) -> usize {
        match self {
            Appender::Xor(a) => a.num_samples(),
            Appender::Histogram(a) => a.num_samples(),
            Appender::FloatHistogram(a) => a.num_samples(),
        }
    }
    fn into_bytes(self) -> Vec<u8> {
        match self {
            Appender::Xor(a) => a.into_bytes(),
            Appender::Histogram(a) => a.into_bytes(),
            Appender::FloatHistogram(a) => a.into_bytes(),
        }
    }
}

/// Why an append was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendError {
    /// Timestamp not after the last one (`last`).
    OutOfOrder { last: i64 },
}

/// Builds the chunks of one series.
#[derive(Clone, Debug)]
pub struct SeriesChunker {
    chunk_range: i64,
    samples_per_chunk: usize,
    done: Vec<BuiltChunk>,
    cur: Option<Appender>,
    cur_min: i64,
    cur_max: i64,
    next_at: i64,
    pub num_samples: u64,
    pub num_float_samples: u64,
    pub num_histogram_samples: u64,
}

/// Prometheus's `rangeForTimestamp`: the end of the chunk range holding `t`.
pub fn range_for_timestamp(t: i64, width: i64) -> i64 {
    t.div_euclid(width).saturating_mul(width).saturating_add(width)
}

/// Prometheus 2.42's `computeChunkEndTime`: assuming the chunk is a quarter full, spread
/// the rest of the range evenly over the chunks still to come.
fn compute_chunk_end_time(start: i64, cur: i64, max: i64) -> i64 {
    let denom = (cur - start + 1).saturating_mul(4).max(1);
    let n = (max - start) / denom;
    if n <= 1 {
        return max;
    }
    start + (max - start) / n
}

impl SeriesChunker {
    /// `chunk_range` is the width chunks are aligned to (Prometheus's head chunk range).
    pub fn new(chunk_range: i64, samples_per_chunk: usize) -> Self {
        SeriesChunker {
            chunk_range: chunk_range.max(1),
            samples_per_chunk: samples_per_chunk.clamp(4, 30_000),
            done: Vec::new(),
            cur: None,
            cur_min: 0,
            cur_max: i64::MIN,
            next_at: i64::MAX,
            num_samples: 0,
            num_float_samples: 0,
            num_histogram_samples: 0,
        }
    }

    pub fn last_timestamp(&self) -> Option<i64> {
        if self.cur.is_some() {
            Some(self.cur_max)
        } else {
            self.done.last().map(|c| c.max_time)
        }
    }

    fn finish_current(&mut self) {
        if let Some(a) = self.cur.take() {
            let n = a.num_samples();
            if n > 0 {
                self.done.push(BuiltChunk {
                    encoding: a.encoding(),
                    data: a.into_bytes(),
                    min_time: self.cur_min,
                    max_time: self.cur_max,
                    num_samples: n,
                });
            }
        }
    }

    fn cut(&mut self, t: i64, app: Appender) {
        self.finish_current();
        self.cur = Some(app);
        self.cur_min = t;
        self.cur_max = i64::MIN;
        self.next_at = range_for_timestamp(t, self.chunk_range);
    }

    /// Applies the time-based cutting rules; returns whether a new chunk must start.
    fn must_cut(&mut self, t: i64, enc: Encoding) -> bool {
        let Some(cur) = &self.cur else {
            return true;
        };
        if cur.encoding() != enc {
            return true;
        }
        let n = cur.num_samples();
        if n == self.samples_per_chunk / 4 {
            self.next_at = compute_chunk_end_time(self.cur_min, self.cur_max, self.next_at);
        }
        t >= self.next_at || n >= self.samples_per_chunk * 2 || n >= usize::from(u16::MAX)
    }

    pub fn append(&mut self, t: i64, v: &SampleValue) -> Result<(), AppendError> {
        if let Some(last) = self.last_timestamp()
            && t <= last
        {
            return Err(AppendError::OutOfOrder { last });
        }
        match v {
            SampleValue::Float(f) => self.append_float(t, *f),
            SampleValue::Histogram(h) => self.append_histogram(t, h),
            SampleValue::FloatHistogram(h) => self.append_float_histogram(t, h),
        }
        self.cur_max = t;
        self.num_samples += 1;
        Ok(())
    }

    /// [`Self::append`] of a float sample, without wrapping it in a [`SampleValue`].
    #[inline]
    pub fn append_float_sample(&mut self, t: i64, v: f64) -> Result<(), AppendError> {
        // Fast path: an open XOR chunk that `must_cut` would keep (the same rules, checked
        // without the general encoding dispatch).
        if let Some(Appender::Xor(a)) = &mut self.cur {
            let n = a.num_samples();
            if n > 0 && n != self.samples_per_chunk / 4 && n < self.samples_per_chunk * 2 && t < self.next_at {
                if t <= self.cur_max {
                    return Err(AppendError::OutOfOrder { last: self.cur_max });
                }
                a.append(t, v);
                self.cur_max = t;
                self.num_samples += 1;
                self.num_float_samples += 1;
                return Ok(());
            }
        }
        if let Some(last) = self.last_timestamp()
            && t <= last
        {
            return Err(AppendError::OutOfOrder { last });
        }
        self.append_float(t, v);
        self.cur_max = t;
        self.num_samples += 1;
        Ok(())
    }

    #[inline]
    fn append_float(&mut self, t: i64, v: f64) {
        if self.must_cut(t, Encoding::Xor) {
            self.cut(t, Appender::Xor(XorAppender::new()));
        }
        if let Some(Appender::Xor(a)) = &mut self.cur {
            a.append(t, v);
        }
        self.num_float_samples += 1;
    }

    fn header_for_new(&self, hint: CounterResetHint, reset: bool) -> CounterResetHeader {
        match hint {
            CounterResetHint::Gauge => CounterResetHeader::Gauge,
            CounterResetHint::CounterReset => CounterResetHeader::CounterReset,
            _ if reset => CounterResetHeader::CounterReset,
            _ if self.cur.is_some() || !self.done.is_empty() => CounterResetHeader::NotCounterReset,
            _ => CounterResetHeader::Unknown,
        }
    }

    fn append_histogram(&mut self, t: i64, h: &Histogram) {
        let time_cut = self.must_cut(t, Encoding::Histogram);
        let (fits, reset) = match &self.cur {
            Some(Appender::Histogram(a)) => (a.can_append(h), a.num_samples() > 0 && a.is_counter_reset(h)),
            _ => (false, false),
        };
        if time_cut || !fits {
            let header = self.header_for_new(h.counter_reset_hint, reset);
            self.cut(t, Appender::Histogram(HistogramAppender::new(header)));
        }
        if let Some(Appender::Histogram(a)) = &mut self.cur {
            a.append(t, h);
        }
        self.num_histogram_samples += 1;
    }

    fn append_float_histogram(&mut self, t: i64, h: &FloatHistogram) {
        let time_cut = self.must_cut(t, Encoding::FloatHistogram);
        let (fits, reset) = match &self.cur {
            Some(Appender::FloatHistogram(a)) => (a.can_append(h), a.num_samples() > 0 && a.is_counter_reset(h)),
            _ => (false, false),
        };
        if time_cut || !fits {
            let header = self.header_for_new(h.counter_reset_hint, reset);
            self.cut(t, Appender::FloatHistogram(FloatHistogramAppender::new(header)));
        }
        if let Some(Appender::FloatHistogram(a)) = &mut self.cur {
            a.append(t, h);
        }
        self.num_histogram_samples += 1;
    }

    /// All chunks, the open one closed.
    pub fn finish(mut self) -> Vec<BuiltChunk> {
        self.finish_current();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_like_prometheus_for_300_samples_over_75_minutes() {
        // Verified on Prometheus 2.42: 300 samples at 15s from a 2h boundary give 143/142/15.
        let mut c = SeriesChunker::new(2 * 3600 * 1000, SAMPLES_PER_CHUNK);
        // 71m5s before a 2h boundary (the start of the verified run).
        let start = 1_699_999_200_000 + 7_200_000 - 4_265_000;
        for i in 0..300 {
            c.append(start + i * 15_000, &SampleValue::Float(i as f64)).unwrap();
        }
        let sizes: Vec<usize> = c.finish().iter().map(|c| c.num_samples).collect();
        assert_eq!(sizes, vec![143, 142, 15]);
    }

    #[test]
    fn append_float_sample_cuts_like_append() {
        let start = 1_699_999_200_000 + 7_200_000 - 4_265_000;
        for spc in [4, 120, 500] {
            let (mut a, mut b) = (SeriesChunker::new(7_200_000, spc), SeriesChunker::new(7_200_000, spc));
            for i in 0..3000i64 {
                let t = start + i * 15_000 + (i * 7919) % 13;
                let v = (i % 17) as f64;
                assert_eq!(a.append(t, &SampleValue::Float(v)), b.append_float_sample(t, v));
                assert_eq!(a.append(t, &SampleValue::Float(v)), b.append_float_sample(t, v));
            }
            assert_eq!(
                (a.num_samples, a.num_float_samples),
                (b.num_samples, b.num_float_samples)
            );
            let (ca, cb) = (a.finish(), b.finish());
            assert_eq!(ca.len(), cb.len());
            for (x, y) in ca.iter().zip(&cb) {
                assert_eq!(
                    (x.min_time, x.max_time, x.num_samples, &x.data),
                    (y.min_time, y.max_time, y.num_samples, &y.data)
                );
            }
        }
    }

    #[test]
    fn out_of_order_is_refused() {
        let mut c = SeriesChunker::new(7_200_000, SAMPLES_PER_CHUNK);
        c.append(10, &SampleValue::Float(1.0)).unwrap();
        assert_eq!(
            c.append(10, &SampleValue::Float(1.0)),
            Err(AppendError::OutOfOrder { last: 10 })
        );
        assert_eq!(
            c.append(5, &SampleValue::Float(1.0)),
            Err(AppendError::OutOfOrder { last: 10 })
        );
    }

    #[test]
    fn never_crosses_range_boundary() {
        let mut c = SeriesChunker::new(1000, SAMPLES_PER_CHUNK);
        for t in (0..5000).step_by(10) {
            c.append(t, &SampleValue::Float(1.0)).unwrap();
        }
        for ch in c.finish() {
            assert_eq!(ch.min_time / 1000, ch.max_time / 1000);
        }
    }
}
