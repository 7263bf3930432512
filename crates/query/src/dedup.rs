//! HA deduplication with Thanos's penalty algorithm (`pkg/dedup/iter.go`).
//!
//! Replicas of a series arrive as one series whose chunks overlap (the replica label was
//! stripped). [`overlap_split`] rebuilds non-overlapping "fake replicas" from the chunks, and
//! [`PenaltyIter`] merges replicas pairwise, folded left: `dedup(dedup(r0, r1), r2)…`. It stays
//! on one replica until that replica has a gap of more than about twice its last sample
//! interval, then switches; the replica not chosen must jump past `lastT + penalty`.
//!
//! Differences from Thanos: none in the algorithm. Samples are decoded up front rather than
//! streamed from chunks, which gives the same output because Thanos's `Seek` walks with
//! `Next` too. Integer histograms are returned as float histograms (the engine's type).

use std::sync::Arc;

use hypnos_model::{FloatHistogram, SampleValue, Timestamp, stale_nan};
use hypnos_promql::{FPoint, FloatThinner, HPoint};
use hypnos_storepb::chunk::encoding_to_tsdb;
use hypnos_storepb::thanos::AggrChunk;
use hypnos_tsdb::chunkenc::xor::XorIterator;
use hypnos_tsdb::chunkenc::{Encoding, SampleIterator};

/// A decoded sample value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Float(f64),
    Histogram(Arc<FloatHistogram>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub t: Timestamp,
    pub v: Value,
}

#[derive(Debug, thiserror::Error)]
#[error("decoding chunk [{min_time}, {max_time}]: {reason}")]
pub struct ChunkError {
    pub min_time: i64,
    pub max_time: i64,
    pub reason: String,
}

/// Decodes the raw part of chunks in order. Chunks without a raw part (downsampled data)
/// are skipped: this querier reads raw resolution only.
pub fn decode_chunks(chunks: &[AggrChunk]) -> Result<Vec<Point>, ChunkError> {
    let mut out = Vec::new();
    for c in chunks {
        let Some(raw) = &c.raw else { continue };
        let err = |reason: String| ChunkError {
            min_time: c.min_time,
            max_time: c.max_time,
            reason,
        };
        let enc = encoding_to_tsdb(raw.r#type).map_err(|e| err(e.to_string()))?;
        let enc = Encoding::from_byte(enc).ok_or_else(|| err(format!("unknown encoding {enc}")))?;
        let mut it = SampleIterator::new(enc, &raw.data).map_err(|e| err(e.to_string()))?;
        while let Some((t, v)) = it.next_sample().map_err(|e| err(e.to_string()))? {
            let v = match v {
                _ if v.is_stale() => Value::Float(stale_nan()),
                SampleValue::Float(f) => Value::Float(f),
                SampleValue::Histogram(h) => Value::Histogram(Arc::new(h.to_float())),
                SampleValue::FloatHistogram(h) => Value::Histogram(Arc::new(*h)),
            };
            out.push(Point { t, v });
        }
    }
    Ok(out)
}

/// A series' float and histogram samples, each sorted by time.
pub type DecodedSamples = (Vec<FPoint>, Vec<HPoint>);

/// Decodes the raw part of chunks straight into the engine's float and histogram vectors,
/// keeping only samples in `[min_t, max_t]`, and of the floats only those `thin` keeps when
/// given (decoded samples it drops are never stored). Returns `None` when the samples are not
/// in strictly increasing time order (overlapping chunks), for which the caller falls back to
/// [`decode_chunks`] + [`sort_unique`]. This path allocates once per series instead of once per
/// sample kind change and never holds a second copy of the samples.
pub fn decode_clipped(
    chunks: &[AggrChunk],
    min_t: Timestamp,
    max_t: Timestamp,
    mut thin: Option<FloatThinner>,
) -> Result<Option<DecodedSamples>, ChunkError> {
    let mut floats: Vec<FPoint> = Vec::new();
    let mut hists: Vec<HPoint> = Vec::new();
    let mut last_t = i64::MIN;
    let push_floats =
        |thin: &mut Option<FloatThinner>, floats: &mut Vec<FPoint>, batch: &[(Timestamp, f64)]| match thin.as_mut() {
            Some(thin) => thin.push_batch(floats, batch),
            None => floats.extend(batch.iter().map(|&(t, v)| FPoint { t, v })),
        };
    for c in chunks {
        let Some(raw) = &c.raw else { continue };
        if c.max_time < min_t || c.min_time > max_t {
            continue;
        }
        if thin.as_ref().is_some_and(FloatThinner::is_done) {
            // Nothing later is kept; a chunk starting before the last decoded sample still
            // means overlapping chunks, which only the general path merges right.
            if c.min_time <= last_t {
                return Ok(None);
            }
            continue;
        }
        let err = |reason: String| ChunkError {
            min_time: c.min_time,
            max_time: c.max_time,
            reason,
        };
        let enc = encoding_to_tsdb(raw.r#type).map_err(|e| err(e.to_string()))?;
        let enc = Encoding::from_byte(enc).ok_or_else(|| err(format!("unknown encoding {enc}")))?;
        if enc == Encoding::Xor {
            // Floats no evaluation reads (a 1 h step with a 5 m window reads one 30-minute
            // chunk in two) need not be decoded. Skipping also skips the overlap check with
            // this chunk, which is right: none of its samples could change the answer.
            if thin.as_ref().is_some_and(|th| !th.reads_any(c.min_time, c.max_time)) {
                continue;
            }
            if floats.capacity() == 0 {
                // A typical XOR chunk holds 120 samples; one reservation covers the series. An
                // instant selector keeps at most one sample per evaluation.
                let all = chunks.len().saturating_mul(120).min(1 << 20);
                let kept = thin.as_ref().and_then(FloatThinner::max_kept).unwrap_or(all);
                floats.reserve(all.min(kept));
            }
            let mut it = XorIterator::new(&raw.data).map_err(|e| err(e.to_string()))?;
            loop {
                let batch = it.next_batch().map_err(|e| err(e.to_string()))?;
                let Some(&(batch_last, _)) = batch.last() else { break };
                // A float staleness marker is already the StaleNaN bit pattern.
                if batch[0].0 > last_t && batch_last <= max_t && batch[0].0 >= min_t && is_increasing(batch) {
                    push_floats(&mut thin, &mut floats, batch);
                    last_t = batch_last;
                    continue;
                }
                for &(t, v) in batch {
                    if t <= last_t {
                        return Ok(None);
                    }
                    last_t = t;
                    if t > max_t {
                        break;
                    }
                    if t >= min_t {
                        push_floats(&mut thin, &mut floats, &[(t, v)]);
                    }
                }
                if last_t > max_t {
                    break;
                }
            }
            continue;
        }
        let mut it = SampleIterator::new(enc, &raw.data).map_err(|e| err(e.to_string()))?;
        while let Some((t, v)) = it.next_sample().map_err(|e| err(e.to_string()))? {
            if t <= last_t {
                return Ok(None);
            }
            last_t = t;
            if t < min_t {
                continue;
            }
            if t > max_t {
                break;
            }
            match v {
                _ if v.is_stale() => push_floats(&mut thin, &mut floats, &[(t, stale_nan())]),
                SampleValue::Float(v) => push_floats(&mut thin, &mut floats, &[(t, v)]),
                SampleValue::Histogram(h) => hists.push(HPoint {
                    t,
                    h: Arc::new(h.to_float()),
                }),
                SampleValue::FloatHistogram(h) => hists.push(HPoint { t, h: Arc::new(*h) }),
            }
        }
    }
    if let Some(thin) = thin.as_mut() {
        thin.finish(&mut floats);
    }
    Ok(Some((floats, hists)))
}

fn is_increasing(batch: &[(i64, f64)]) -> bool {
    // Without early exit the comparisons vectorise; batches are short and almost always
    // increasing, so looking at all of them costs less than a branch per sample.
    batch.windows(2).fold(true, |ok, w| ok & (w[0].0 < w[1].0))
}

/// Sorts by time and keeps the first sample of each timestamp (overlapping chunks of one
/// replica, which a correct store does not send, would otherwise break the iterators).
pub fn sort_unique(mut pts: Vec<Point>) -> Vec<Point> {
    pts.sort_by_key(|p| p.t);
    pts.dedup_by_key(|p| p.t);
    pts
}

/// Thanos's `NewOverlapSplit`: each chunk (sorted by min time) goes to the first fake replica
/// whose last chunk ends before it starts, or opens a new one.
pub fn overlap_split(chunks: &[AggrChunk]) -> Vec<Vec<AggrChunk>> {
    let mut sorted: Vec<&AggrChunk> = chunks.iter().collect();
    sorted.sort_by_key(|c| c.min_time);
    let mut replicas: Vec<Vec<AggrChunk>> = Vec::new();
    'chunks: for c in sorted {
        for r in replicas.iter_mut() {
            if r.last().is_none_or(|l| l.max_time < c.min_time) {
                r.push(c.clone());
                continue 'chunks;
            }
        }
        replicas.push(vec![c.clone()]);
    }
    replicas
}

/// Whether the selector's function makes counter adjustment apply (Thanos's `isCounter`).
pub fn is_counter_func(func: Option<&str>) -> bool {
    matches!(func, Some("increase" | "rate" | "irate" | "resets"))
}

/// Kind of the current sample, `None` when exhausted (chunkenc.ValueType).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    None,
    Float,
    Histogram,
}

fn kind(p: Option<&Point>) -> Kind {
    match p.map(|p| &p.v) {
        None => Kind::None,
        Some(Value::Float(_)) => Kind::Float,
        Some(Value::Histogram(_)) => Kind::Histogram,
    }
}

/// One replica's samples, with Thanos's counter error adjustment when `counter` is set.
#[derive(Debug)]
struct ReplicaIter {
    points: Vec<Point>,
    /// Index of the current sample; `None` before the first `next`.
    pos: Option<usize>,
    counter: bool,
    err_adjust: f64,
}

impl ReplicaIter {
    fn cur(&self) -> Option<&Point> {
        self.pos.and_then(|i| self.points.get(i))
    }

    fn next(&mut self) -> Kind {
        let i = self.pos.map_or(0, |i| (i + 1).min(self.points.len()));
        self.pos = Some(i);
        kind(self.cur())
    }

    /// The first sample at or after `t`; stays put when the current one already is.
    fn seek(&mut self, t: i64) -> Kind {
        if self.pos.is_none() {
            self.next();
        }
        while let Some(p) = self.cur() {
            if p.t >= t {
                break;
            }
            self.next();
        }
        kind(self.cur())
    }

    fn at_t(&self) -> i64 {
        self.cur().map_or(i64::MIN, |p| p.t)
    }

    fn at(&self) -> Option<Point> {
        let p = self.cur()?;
        Some(match &p.v {
            Value::Float(v) if self.counter => Point {
                t: p.t,
                v: Value::Float(v + self.err_adjust),
            },
            _ => p.clone(),
        })
    }

    fn adjust_at_value(&mut self, last: f64) {
        if !self.counter {
            return;
        }
        if let Some(Point { v: Value::Float(v), .. }) = self.at()
            && last > v
        {
            // This replica missed the end of the counter before a restart; lift it.
            self.err_adjust += last - v;
        }
    }
}

#[derive(Debug)]
enum Iter {
    Replica(ReplicaIter),
    Pair(Box<PenaltyIter>),
}

impl Iter {
    fn next(&mut self) -> Kind {
        match self {
            Iter::Replica(r) => r.next(),
            Iter::Pair(p) => p.next_kind(),
        }
    }
    fn seek(&mut self, t: i64) -> Kind {
        match self {
            Iter::Replica(r) => r.seek(t),
            Iter::Pair(p) => p.seek(t),
        }
    }
    fn at_t(&self) -> i64 {
        match self {
            Iter::Replica(r) => r.at_t(),
            Iter::Pair(p) => p.at_t(),
        }
    }
    fn at(&self) -> Option<Point> {
        match self {
            Iter::Replica(r) => r.at(),
            Iter::Pair(p) => p.at(),
        }
    }
    fn adjust_at_value(&mut self, last: f64) {
        match self {
            Iter::Replica(r) => r.adjust_at_value(last),
            Iter::Pair(p) => p.adjust_at_value(last),
        }
    }
}

/// If no interval is known yet, the replica not chosen must skip 5 s (Thanos's constant:
/// timestamps are ms and scrape intervals typically several seconds).
const INITIAL_PENALTY: i64 = 5000;

/// Thanos's `dedupSeriesIterator` over two (possibly nested) iterators.
#[derive(Debug)]
pub struct PenaltyIter {
    a: Iter,
    b: Iter,
    a_kind: Kind,
    b_kind: Kind,
    last_t: i64,
    pen_a: i64,
    pen_b: i64,
    use_a: bool,
}

impl PenaltyIter {
    fn pair(mut a: Iter, mut b: Iter) -> Self {
        let a_kind = a.next();
        let b_kind = b.next();
        PenaltyIter {
            a,
            b,
            a_kind,
            b_kind,
            last_t: i64::MIN,
            pen_a: 0,
            pen_b: 0,
            use_a: true,
        }
    }

    fn last_float(&self) -> Option<f64> {
        let (k, it) = if self.use_a {
            (self.a_kind, &self.a)
        } else {
            (self.b_kind, &self.b)
        };
        if k != Kind::Float {
            return None;
        }
        match it.at() {
            Some(Point { v: Value::Float(v), .. }) => Some(v),
            _ => None,
        }
    }

    fn adjust_at_value(&mut self, last: f64) {
        if self.a_kind == Kind::Float {
            self.a.adjust_at_value(last);
        }
        if self.b_kind == Kind::Float {
            self.b.adjust_at_value(last);
        }
    }

    fn next_kind(&mut self) -> Kind {
        let last_float = self.last_float();
        let last_use_a = self.use_a;
        let k = self.step();
        if self.use_a != last_use_a
            && let Some(v) = last_float
        {
            // Switched replicas: make sure a counter does not appear to go down.
            self.adjust_at_value(v);
        }
        k
    }

    fn step(&mut self) -> Kind {
        if self.a_kind != Kind::None {
            self.a_kind = self.a.seek(self.last_t.saturating_add(1).saturating_add(self.pen_a));
        }
        if self.b_kind != Kind::None {
            self.b_kind = self.b.seek(self.last_t.saturating_add(1).saturating_add(self.pen_b));
        }
        if self.a_kind == Kind::None {
            self.use_a = false;
            if self.b_kind != Kind::None {
                self.last_t = self.b.at_t();
                self.pen_b = 0;
            }
            return self.b_kind;
        }
        if self.b_kind == Kind::None {
            self.use_a = true;
            self.last_t = self.a.at_t();
            self.pen_a = 0;
            return self.a_kind;
        }
        let ta = self.a.at_t();
        let tb = self.b.at_t();
        self.use_a = ta <= tb;
        if self.use_a {
            self.pen_b = if self.last_t != i64::MIN {
                2 * (ta - self.last_t)
            } else {
                INITIAL_PENALTY
            };
            self.pen_a = 0;
            self.last_t = ta;
            return self.a_kind;
        }
        self.pen_a = if self.last_t != i64::MIN {
            2 * (tb - self.last_t)
        } else {
            INITIAL_PENALTY
        };
        self.pen_b = 0;
        self.last_t = tb;
        self.b_kind
    }

    /// Walks with `next` instead of seeking underneath, so that gaps are not skipped.
    fn seek(&mut self, t: i64) -> Kind {
        loop {
            let ts = self.at_t();
            if ts >= t {
                return if self.use_a { self.a.seek(ts) } else { self.b.seek(ts) };
            }
            if self.next_kind() == Kind::None {
                return Kind::None;
            }
        }
    }

    fn at_t(&self) -> i64 {
        if self.use_a { self.a.at_t() } else { self.b.at_t() }
    }

    fn at(&self) -> Option<Point> {
        if self.use_a { self.a.at() } else { self.b.at() }
    }
}

/// Deduplicates replicas (each sorted by time) into one sample stream.
pub fn dedup_replicas(replicas: Vec<Vec<Point>>, counter: bool) -> Vec<Point> {
    let mut iters = replicas.into_iter().map(|points| {
        Iter::Replica(ReplicaIter {
            points,
            pos: None,
            counter,
            err_adjust: 0.0,
        })
    });
    let Some(first) = iters.next() else {
        return Vec::new();
    };
    let mut it = first;
    let mut single = true;
    for r in iters {
        it = Iter::Pair(Box::new(PenaltyIter::pair(it, r)));
        single = false;
    }
    let mut out = Vec::new();
    if single {
        // One replica passes through unchanged (Thanos returns the series as is).
        if let Iter::Replica(r) = it {
            return r.points;
        }
        return out;
    }
    while it.next() != Kind::None {
        if let Some(p) = it.at() {
            out.push(p);
        }
    }
    out
}

/// Deduplicates one merged series: split its chunks into replicas, decode, merge.
pub fn dedup_series(chunks: &[AggrChunk], counter: bool) -> Result<Vec<Point>, ChunkError> {
    let mut replicas = Vec::new();
    for r in overlap_split(chunks) {
        replicas.push(sort_unique(decode_chunks(&r)?));
    }
    Ok(dedup_replicas(replicas, counter))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(pts: &[(i64, f64)]) -> Vec<Point> {
        pts.iter().map(|&(t, v)| Point { t, v: Value::Float(v) }).collect()
    }

    fn ts(pts: &[Point]) -> Vec<i64> {
        pts.iter().map(|p| p.t).collect()
    }

    fn vals(pts: &[Point]) -> Vec<f64> {
        pts.iter()
            .map(|p| match p.v {
                Value::Float(v) => v,
                Value::Histogram(_) => f64::NAN,
            })
            .collect()
    }

    fn every(start: i64, end: i64, step: i64, offset: i64) -> Vec<(i64, f64)> {
        (start..=end)
            .step_by(usize::try_from(step).unwrap())
            .map(|t| (t + offset, t as f64))
            .collect()
    }

    #[test]
    fn decode_clipped_keeps_the_range_and_matches_the_general_path() {
        let samples = every(0, 3_600_000, 15_000, 0);
        let chunks = crate::memstore::encode_xor_chunks(&samples);
        assert!(chunks.len() > 2);
        // Spans the end of the first chunk and the start of the second.
        let (fl, hs) = decode_clipped(&chunks, 1_500_000, 2_500_000, None).unwrap().unwrap();
        assert!(hs.is_empty());
        let want: Vec<(i64, f64)> = samples
            .iter()
            .copied()
            .filter(|&(t, _)| (1_500_000..=2_500_000).contains(&t))
            .collect();
        assert_eq!(fl.iter().map(|p| (p.t, p.v)).collect::<Vec<_>>(), want);
        // Every clip boundary, within and between 32-sample decoding batches.
        for (lo, hi) in [
            (0, 0),
            (14_999, 15_000),
            (465_000, 480_000),
            (480_001, 1_800_000),
            (-5, 3_600_001),
        ] {
            let (fl, _) = decode_clipped(&chunks, lo, hi, None).unwrap().unwrap();
            let want: Vec<(i64, f64)> = samples
                .iter()
                .copied()
                .filter(|&(t, _)| (lo..=hi).contains(&t))
                .collect();
            assert_eq!(fl.iter().map(|p| (p.t, p.v)).collect::<Vec<_>>(), want, "{lo}..={hi}");
        }
        let (all, _) = decode_clipped(&chunks, i64::MIN, i64::MAX, None).unwrap().unwrap();
        let general = sort_unique(decode_chunks(&chunks).unwrap());
        assert_eq!(ts(&general), all.iter().map(|p| p.t).collect::<Vec<_>>());
        assert_eq!(vals(&general), all.iter().map(|p| p.v).collect::<Vec<_>>());
    }

    /// With a sparse step grid, chunks no evaluation reads are skipped: every evaluation must
    /// still read exactly what it reads from all samples.
    #[test]
    fn skipping_unread_chunks_keeps_every_read() {
        // 12 h of 15 s scrapes, 30-minute chunks; evaluations every 70 min from 00:40.
        let samples = every(0, 12 * 3_600_000, 15_000, 7);
        let chunks = crate::memstore::encode_xor_chunks(&samples);
        let (first, step, last) = (2_400_000, 4_200_000, 12 * 3_600_000);
        for (range, window) in [(0, 300_000), (300_000, 300_000), (0, 60_000), (3_600_000, 3_600_000)] {
            let thin = FloatThinner::new(first, step, last, range).with_window(window);
            let (kept, _) = decode_clipped(&chunks, first - window, last, Some(thin))
                .unwrap()
                .unwrap();
            let mut t = first;
            while t <= last {
                let reads = |pts: &[(i64, f64)]| -> Vec<(i64, f64)> {
                    let inside: Vec<(i64, f64)> =
                        pts.iter().copied().filter(|&(s, _)| t - window < s && s <= t).collect();
                    match range {
                        0 => inside.last().copied().into_iter().collect(),
                        _ => inside,
                    }
                };
                let got: Vec<(i64, f64)> = kept.iter().map(|p| (p.t, p.v)).collect();
                assert_eq!(reads(&got), reads(&samples), "range {range} window {window} at {t}");
                t += step;
            }
        }
    }

    #[test]
    fn decode_clipped_gives_up_on_overlapping_chunks() {
        let a = crate::memstore::encode_xor_chunks(&every(0, 100_000, 10_000, 0));
        let b = crate::memstore::encode_xor_chunks(&every(0, 100_000, 10_000, 5_000));
        let both: Vec<AggrChunk> = a.into_iter().chain(b).collect();
        assert!(decode_clipped(&both, i64::MIN, i64::MAX, None).unwrap().is_none());
    }

    #[test]
    fn identical_replicas_give_one_copy() {
        let a = floats(&every(0, 100_000, 10_000, 0));
        let out = dedup_replicas(vec![a.clone(), a.clone()], false);
        assert_eq!(out, a);
    }

    #[test]
    fn gap_in_one_replica_is_filled_from_the_other() {
        // Replica A misses 30s..=60s; B is offset by 1 s (scrapes are not aligned).
        let mut a = every(0, 20_000, 10_000, 0);
        a.extend(every(70_000, 100_000, 10_000, 0));
        let b = every(0, 100_000, 10_000, 1000);
        let out = dedup_replicas(vec![floats(&a), floats(&b)], false);
        // A until its gap, then B. B's 31 s sample falls inside the penalty B received while
        // A was chosen (2 × 10 s after 20 s), so the switch lands on 41 s, as in Thanos; then
        // the output stays on B because A comes back inside A's penalty window.
        assert_eq!(
            ts(&out),
            vec![
                0, 10_000, 20_000, 41_000, 51_000, 61_000, 71_000, 81_000, 91_000, 101_000
            ]
        );
    }

    #[test]
    fn switches_back_when_the_other_replica_has_a_gap() {
        // A: 0..20 s, gap, 70..100 s. B: 0..50 s, gap afterwards, offset 1 s.
        let mut a = every(0, 20_000, 10_000, 0);
        a.extend(every(70_000, 100_000, 10_000, 0));
        let b = every(0, 50_000, 10_000, 1000);
        let out = dedup_replicas(vec![floats(&a), floats(&b)], false);
        assert_eq!(
            ts(&out),
            // After B ends A resumes at the first sample past its penalty (90 s).
            vec![0, 10_000, 20_000, 41_000, 51_000, 90_000, 100_000]
        );
    }

    #[test]
    fn first_sample_penalty_is_five_seconds() {
        // B starts 2 s after A: within the initial 5 s penalty, so B's first sample is skipped
        // and A is used as long as it has no gap.
        let a = every(0, 30_000, 10_000, 0);
        let b = every(0, 30_000, 10_000, 2000);
        let out = dedup_replicas(vec![floats(&a), floats(&b)], false);
        assert_eq!(ts(&out), vec![0, 10_000, 20_000, 30_000]);
    }

    #[test]
    fn equal_timestamps_prefer_the_first_replica() {
        let a = floats(&[(0, 1.0), (10, 2.0)]);
        let b = floats(&[(0, 100.0), (10, 200.0)]);
        let out = dedup_replicas(vec![a, b], false);
        assert_eq!(vals(&out), vec![1.0, 2.0]);
    }

    #[test]
    fn exhausted_replica_hands_over() {
        let a = floats(&every(0, 20_000, 10_000, 0));
        let b = floats(&every(0, 60_000, 10_000, 500));
        let out = dedup_replicas(vec![a, b], false);
        // B was penalised by 2 × 10 s after A's 20 s sample, so it resumes at 40.5 s.
        assert_eq!(ts(&out), vec![0, 10_000, 20_000, 40_500, 50_500, 60_500]);
    }

    #[test]
    fn three_replicas_fold_left() {
        let a = floats(&every(0, 100_000, 10_000, 0));
        let out = dedup_replicas(vec![a.clone(), a.clone(), a.clone()], false);
        assert_eq!(out, a);
        // A has a gap, B ends early, C is complete. The algorithm's known weakness (Thanos
        // #981): jumping over A's gap inflates the "interval" the penalties are computed from
        // (2 × 20.3 s), so C is skipped past 80.9 s and A past 80.9 s as well; the output has
        // a hole from 40.3 s to 90 s although C had every sample. Thanos answers the same.
        let mut gappy = every(0, 20_000, 10_000, 0);
        gappy.extend(every(80_000, 100_000, 10_000, 0));
        let short = every(0, 40_000, 10_000, 300);
        let full = every(0, 100_000, 10_000, 600);
        let out = dedup_replicas(vec![floats(&gappy), floats(&short), floats(&full)], false);
        assert_eq!(ts(&out), vec![0, 10_000, 20_000, 40_300, 90_000, 100_000]);
    }

    #[test]
    fn counter_switch_does_not_look_like_a_reset() {
        // A counts 10, 20, 30 then stops; B restarted and lags behind.
        let a = floats(&[(0, 10.0), (10_000, 20.0), (20_000, 30.0)]);
        let b = floats(&[
            (0, 1.0),
            (10_000, 2.0),
            (20_000, 3.0),
            (31_000, 5.0),
            (41_000, 15.0),
            (51_000, 25.0),
        ]);
        let plain = dedup_replicas(vec![a.clone(), b.clone()], false);
        assert_eq!(vals(&plain), vec![10.0, 20.0, 30.0, 15.0, 25.0]);
        let adjusted = dedup_replicas(vec![a, b], true);
        // On the switch B is lifted by 30 - 15 = 15 so the counter does not go down.
        assert_eq!(vals(&adjusted), vec![10.0, 20.0, 30.0, 30.0, 40.0]);
    }

    #[test]
    fn genuine_counter_reset_on_the_same_replica_is_kept() {
        let a = floats(&[(0, 10.0), (10_000, 20.0), (20_000, 2.0), (30_000, 4.0)]);
        let b = floats(&[(500, 10.0), (10_500, 20.0), (20_500, 2.0), (30_500, 4.0)]);
        let out = dedup_replicas(vec![a, b], true);
        assert_eq!(vals(&out), vec![10.0, 20.0, 2.0, 4.0]);
    }

    #[test]
    fn overlap_split_rebuilds_replicas() {
        let c = |min, max| AggrChunk {
            min_time: min,
            max_time: max,
            ..Default::default()
        };
        let split = overlap_split(&[c(0, 100), c(5, 105), c(101, 200), c(106, 205), c(300, 400)]);
        let times: Vec<Vec<(i64, i64)>> = split
            .iter()
            .map(|r| r.iter().map(|c| (c.min_time, c.max_time)).collect())
            .collect();
        assert_eq!(
            times,
            vec![vec![(0, 100), (101, 200), (300, 400)], vec![(5, 105), (106, 205)]]
        );
    }

    #[test]
    fn empty_and_single_replica() {
        assert!(dedup_replicas(vec![], false).is_empty());
        let a = floats(&[(1, 1.0), (2, 2.0)]);
        assert_eq!(dedup_replicas(vec![a.clone()], true), a);
        assert_eq!(dedup_replicas(vec![a.clone(), vec![]], false), a);
    }
}
