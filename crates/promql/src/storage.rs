//! The storage boundary: the engine reads series through [`Queryable`], which is async and
//! dyn-compatible so that the querier can back it with concurrent StoreAPI calls.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use hypnos_model::{CounterResetHint, FloatHistogram, Labels, Matcher, Timestamp, is_stale_nan, stale_nan};

use crate::value::{FPoint, HPoint, Timed};

/// What the engine will do with the selected data; storage may use it to prune, and may
/// return more than asked (the engine clips to the time range itself).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelectHints {
    /// Inclusive time range, in ms.
    pub start: Timestamp,
    pub end: Timestamp,
    /// Query step in ms (0 for instant queries).
    pub step: i64,
    /// Range of the matrix selector in ms (0 for instant selectors).
    pub range: i64,
    /// Name of the function the selector is an argument of, if any.
    pub func: Option<String>,
    /// Grouping labels of the surrounding aggregation, and whether they are `by` labels.
    pub grouping: Vec<String>,
    pub by: bool,
    /// For a selector outside subqueries and `@`: its first evaluation time. It is evaluated
    /// at `eval_first + k * step` up to `end` (only there when `step` is 0), reading at each
    /// time `t` the newest sample at or before `t` (instant selector) or the samples in
    /// `(t - range, t]` (range selector), so storage may drop the other float samples (see
    /// [`keep_samples_read`]).
    pub eval_first: Option<Timestamp>,
    /// The selector is read by `histogram_count`, `histogram_sum` or `histogram_avg`, which
    /// look at every histogram sample to detect counter resets: storage must not drop
    /// histogram samples even with `eval_first`.
    pub histogram_stats: bool,
}

/// Keeps, of float samples sorted by time, only those a selector evaluated at `first + k *
/// step` (k ≥ 0, times up to `last`; just `first` when `step` is 0) can read: for an instant
/// selector (`range` 0) the newest sample at or before each time, for a range selector the
/// samples within `range` before a time. A range query with a 5 m step over 15 s scrapes keeps
/// 1 sample in 20 of an instant selector and 4 in 20 of a `[1m]` range.
pub fn keep_samples_read<P: Timed>(points: &mut Vec<P>, first: Timestamp, step: i64, last: Timestamp, range: i64) {
    let grid = EvalGrid { first, step, last };
    if range > 0 && step > 0 && range >= step {
        // Windows at least a step wide cover every sample from the first window's start to
        // the last evaluation time: only the ends go.
        let Some(last_eval) = grid.last_eval() else {
            points.clear();
            return;
        };
        let from = first.saturating_sub(range);
        let a = points.partition_point(|p| p.time() < from);
        let b = points.partition_point(|p| p.time() <= last_eval);
        points.truncate(b.max(a));
        points.drain(..a);
        return;
    }
    let mut slot = Slot::default();
    let mut next_slot = Slot::default();
    let mut kept = 0;
    for i in 0..points.len() {
        let t = points[i].time();
        if !slot.holds(t) {
            slot = grid.slot(t);
        }
        let Some(eval_t) = slot.eval_t else { break };
        let keep = if range > 0 {
            eval_t <= t.saturating_add(range)
        } else {
            points.get(i + 1).is_none_or(|next| {
                if !next_slot.holds(next.time()) {
                    next_slot = grid.slot(next.time());
                }
                next_slot.eval_t != Some(eval_t)
            })
        };
        if keep {
            points.swap(kept, i);
            kept += 1;
        }
    }
    points.truncate(kept);
}

/// [`keep_samples_read`] applied while samples are decoded, batch by batch, so that the samples
/// it would drop are never stored. Batches must be strictly increasing in time, each after the
/// previous one; the kept samples are appended to the output in order. Work is per step rather
/// than per sample where it can be: in a batch, the samples of one evaluation's slot are found
/// by a binary search.
pub struct FloatThinner {
    grid: EvalGrid,
    range: i64,
    /// Samples at or after `from` and up to `last_eval` are all read (range at least a step).
    whole: Option<(Timestamp, Timestamp)>,
    slot: Slot,
    /// Instant selectors: the newest sample so far of the current slot.
    pending: Option<FPoint>,
    /// Samples in the last slot that ended inside a batch.
    last_slot_len: usize,
    done: bool,
    /// How far back from an evaluation time its reads reach (the range, or the lookback
    /// delta of an instant selector); 0 when unknown, and then every chunk is read.
    window: i64,
}

impl FloatThinner {
    pub fn new(first: Timestamp, step: i64, last: Timestamp, range: i64) -> Self {
        let grid = EvalGrid { first, step, last };
        let whole = (range > 0 && step > 0 && range >= step).then(|| match grid.last_eval() {
            Some(last_eval) => (first.saturating_sub(range), last_eval),
            None => (Timestamp::MAX, Timestamp::MIN),
        });
        Self {
            grid,
            range,
            whole,
            slot: Slot::default(),
            pending: None,
            last_slot_len: 0,
            done: false,
            window: 0,
        }
    }

    /// Reads at time `T` reach back to `T - window` (exclusive): the selector's range, or the
    /// lookback delta of an instant selector. With it, [`FloatThinner::reads_any`] can tell
    /// a chunk no evaluation reads.
    pub fn with_window(mut self, window: i64) -> Self {
        self.window = window.max(0);
        self
    }

    /// Whether some evaluation reads a sample in `[min_t, max_t]`, i.e. some `T` on the
    /// grid has `T - window < t <= T` for a `t` in it. A 1 h step with a 5 m window reads
    /// about one 30-minute chunk in two; the others need not be decoded.
    pub fn reads_any(&self, min_t: Timestamp, max_t: Timestamp) -> bool {
        if self.window <= 0 {
            return true;
        }
        let EvalGrid { first, step, last } = self.grid;
        // The earliest evaluation at or after min_t is the one reaching back furthest.
        let t = if min_t <= first {
            first
        } else if step <= 0 {
            return false;
        } else {
            let k = (min_t - first - 1) / step + 1;
            first.saturating_add(k.saturating_mul(step))
        };
        t <= last && t.saturating_sub(self.window) < max_t
    }

    /// At most how many samples an instant selector keeps (one per evaluation); None for
    /// range selectors.
    pub fn max_kept(&self) -> Option<usize> {
        if self.range > 0 {
            return None;
        }
        let evals = match self.grid.last_eval() {
            None => 0,
            Some(_) if self.grid.step <= 0 => 1,
            Some(last) => (last - self.grid.first) / self.grid.step + 1,
        };
        usize::try_from(evals).ok()
    }

    /// True once no later sample can be kept.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn push_batch(&mut self, out: &mut Vec<FPoint>, batch: &[(Timestamp, f64)]) {
        if self.done {
            return;
        }
        if let Some((from, last_eval)) = self.whole {
            let a = batch.partition_point(|&(t, _)| t < from);
            let b = batch.partition_point(|&(t, _)| t <= last_eval);
            out.extend(batch[a..b.max(a)].iter().map(|&(t, v)| FPoint { t, v }));
            self.done = b < batch.len();
            return;
        }
        let mut rest = batch;
        while let Some(&(t0, _)) = rest.first() {
            if !self.slot.holds(t0) {
                self.slot = self.slot_after(t0);
                out.extend(self.pending.take());
            }
            let Some(eval_t) = self.slot.eval_t else {
                self.done = true;
                return;
            };
            let n = self.slot_len(rest);
            let (in_slot, after) = rest.split_at(n);
            if self.range > 0 {
                let from = eval_t.saturating_sub(self.range);
                let a = in_slot.partition_point(|&(t, _)| t < from);
                out.extend(in_slot[a..].iter().map(|&(t, v)| FPoint { t, v }));
            } else if let Some(&(t, v)) = in_slot.last() {
                self.pending = Some(FPoint { t, v });
            }
            rest = after;
        }
    }

    /// The slot of `t`, a sample after the current slot: usually the next one, found without
    /// the division [`EvalGrid::slot`] needs.
    fn slot_after(&self, t: Timestamp) -> Slot {
        let Slot { hi, eval_t, .. } = self.slot;
        let step = self.grid.step;
        if eval_t.is_some() && step > 0 && t > hi && t - hi <= step {
            let next = hi.saturating_add(step);
            return Slot {
                lo: hi,
                hi: next,
                eval_t: (next <= self.grid.last).then_some(next),
            };
        }
        self.grid.slot(t)
    }

    /// How many of `rest` (starting in the current slot) are in it. Scrapes are regular, so
    /// a slot usually holds as many samples as the one before: that guess is checked first.
    fn slot_len(&mut self, rest: &[(Timestamp, f64)]) -> usize {
        let hi = self.slot.hi;
        if rest.last().is_some_and(|&(t, _)| t <= hi) {
            return rest.len();
        }
        let g = self.last_slot_len;
        let n = if g >= 1 && g < rest.len() && rest[g - 1].0 <= hi && rest[g].0 > hi {
            g
        } else {
            rest.partition_point(|&(t, _)| t <= hi)
        };
        self.last_slot_len = n;
        n
    }

    /// Appends the last kept sample still held back.
    pub fn finish(&mut self, out: &mut Vec<FPoint>) {
        out.extend(self.pending.take());
    }
}

/// Evaluation times `first + k * step` (k ≥ 0) up to `last`; just `first` when `step` is 0.
struct EvalGrid {
    first: Timestamp,
    step: i64,
    last: Timestamp,
}

/// The samples in `(lo, hi]` are read at `eval_t` first (None: after the last evaluation).
#[derive(Default)]
struct Slot {
    lo: Timestamp,
    hi: Timestamp,
    eval_t: Option<Timestamp>,
}

impl Slot {
    fn holds(&self, t: Timestamp) -> bool {
        self.lo < t && t <= self.hi
    }
}

impl EvalGrid {
    fn time_of(&self, k: i64) -> Timestamp {
        self.first.saturating_add(k.saturating_mul(self.step.max(0)))
    }

    fn last_eval(&self) -> Option<Timestamp> {
        if self.first > self.last {
            return None;
        }
        if self.step <= 0 {
            return Some(self.first);
        }
        Some(self.time_of((self.last - self.first) / self.step))
    }

    /// The slot of `t`: found by one division, then reused for the samples that follow.
    fn slot(&self, t: Timestamp) -> Slot {
        let after = |lo: Timestamp| Slot {
            lo,
            hi: Timestamp::MAX,
            eval_t: None,
        };
        if t <= self.first {
            return match self.first <= self.last {
                true => Slot {
                    lo: Timestamp::MIN,
                    hi: self.first,
                    eval_t: Some(self.first),
                },
                false => after(Timestamp::MIN),
            };
        }
        if self.step <= 0 {
            return after(self.first);
        }
        let k = (t.saturating_sub(self.first) - 1) / self.step + 1;
        let (lo, hi) = (self.time_of(k - 1), self.time_of(k));
        if hi <= self.last {
            Slot {
                lo,
                hi,
                eval_t: Some(hi),
            }
        } else {
            after(lo)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    Other(String),
}

/// One stored series. Floats and histograms are each sorted by time; a staleness marker is a
/// float StaleNaN (also when the series holds histograms).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageSeries {
    pub labels: Labels,
    pub floats: Vec<FPoint>,
    pub histograms: Vec<HPoint>,
}

pub type SeriesSet = Vec<Arc<StorageSeries>>;

/// Series handed out one at a time, sorted by labels.
pub type SeriesStream<'a> = BoxStream<'a, Result<Arc<StorageSeries>, StorageError>>;

/// Where the engine gets data from.
pub trait Queryable: Send + Sync {
    /// Series matching all matchers with samples in `[hints.start, hints.end]`.
    fn select<'a>(
        &'a self,
        hints: &'a SelectHints,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<SeriesSet, StorageError>>;

    /// [`Queryable::select`] one series at a time. The engine evaluates a range function
    /// such as `rate(x[5m])` on each series as it arrives and keeps only the per-step output,
    /// so storage that can decode lazily should: the raw samples of every selected series
    /// are then never in memory at once.
    fn select_stream<'a>(&'a self, hints: &'a SelectHints, matchers: &'a [Matcher]) -> SeriesStream<'a> {
        futures::stream::once(self.select(hints, matchers))
            .map_ok(|set| futures::stream::iter(set.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    /// Sorted label names of series matching the matchers (all series when empty).
    fn label_names<'a>(
        &'a self,
        start: Timestamp,
        end: Timestamp,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<Vec<String>, StorageError>>;

    /// Sorted values of a label over series matching the matchers.
    fn label_values<'a>(
        &'a self,
        name: &'a str,
        start: Timestamp,
        end: Timestamp,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<Vec<String>, StorageError>>;
}

/// A simple in-memory store, used by promqltest, tests and benches.
#[derive(Debug, Default)]
pub struct MemStorage {
    series: Vec<Arc<StorageSeries>>,
    by_labels: HashMap<Labels, usize>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.series.clear();
        self.by_labels.clear();
    }

    fn entry(&mut self, labels: &Labels) -> &mut StorageSeries {
        let idx = match self.by_labels.get(labels) {
            Some(i) => *i,
            None => {
                self.series.push(Arc::new(StorageSeries {
                    labels: labels.clone(),
                    ..Default::default()
                }));
                self.by_labels.insert(labels.clone(), self.series.len() - 1);
                self.series.len() - 1
            }
        };
        Arc::make_mut(&mut self.series[idx])
    }

    /// Adds a float sample; a later sample at the same time replaces the earlier one.
    pub fn add_float(&mut self, labels: &Labels, t: Timestamp, v: f64) {
        let s = self.entry(labels);
        s.histograms.retain(|p| p.t != t);
        insert_sorted(&mut s.floats, FPoint { t, v }, |p| p.t);
    }

    /// Adds a histogram sample; a histogram whose sum is StaleNaN is stored as a staleness marker.
    pub fn add_histogram(&mut self, labels: &Labels, t: Timestamp, h: FloatHistogram) {
        if is_stale_nan(h.sum) {
            self.add_float(labels, t, stale_nan());
            return;
        }
        let s = self.entry(labels);
        s.floats.retain(|p| p.t != t);
        let mut h = h;
        // Like the TSDB appender: a histogram following another one of the same series
        // records whether it starts a new counter (read back as reset / not reset).
        if h.counter_reset_hint == CounterResetHint::Unknown
            && let Some(prev) = s.histograms.last()
            && prev.t < t
            && s.floats.last().is_none_or(|f| f.t < prev.t)
        {
            // A detected reset starts a new chunk, whose first sample reads back as
            // "unknown" (prometheus/prometheus#15346).
            let kind_changed = prev.h.counter_reset_hint == CounterResetHint::Gauge;
            h.counter_reset_hint = if kind_changed || crate::histogram_ops::detect_reset(&h, &prev.h) {
                CounterResetHint::Unknown
            } else {
                CounterResetHint::NotCounterReset
            };
        }
        insert_sorted(&mut s.histograms, HPoint { t, h: Arc::new(h) }, |p| p.t);
    }

    pub fn series(&self) -> &[Arc<StorageSeries>] {
        &self.series
    }

    fn matching<'a>(&'a self, matchers: &'a [Matcher]) -> impl Iterator<Item = &'a Arc<StorageSeries>> + 'a {
        self.series
            .iter()
            .filter(move |s| matchers.iter().all(|m| m.matches(s.labels.get(&m.name).unwrap_or(""))))
    }
}

fn insert_sorted<T>(v: &mut Vec<T>, item: T, key: impl Fn(&T) -> Timestamp) {
    let t = key(&item);
    match v.binary_search_by_key(&t, &key) {
        Ok(i) => v[i] = item,
        Err(i) => v.insert(i, item),
    }
}

fn has_samples_in(s: &StorageSeries, start: Timestamp, end: Timestamp) -> bool {
    let f = s.floats.partition_point(|p| p.t < start);
    let h = s.histograms.partition_point(|p| p.t < start);
    s.floats.get(f).is_some_and(|p| p.t <= end) || s.histograms.get(h).is_some_and(|p| p.t <= end)
}

impl Queryable for MemStorage {
    fn select<'a>(
        &'a self,
        hints: &'a SelectHints,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<SeriesSet, StorageError>> {
        let mut out: SeriesSet = self
            .matching(matchers)
            .filter(|s| has_samples_in(s, hints.start, hints.end))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Box::pin(futures::future::ready(Ok(out)))
    }

    fn label_names<'a>(
        &'a self,
        start: Timestamp,
        end: Timestamp,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        let mut names: Vec<String> = self
            .matching(matchers)
            .filter(|s| has_samples_in(s, start, end))
            .flat_map(|s| s.labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        Box::pin(futures::future::ready(Ok(names)))
    }

    fn label_values<'a>(
        &'a self,
        name: &'a str,
        start: Timestamp,
        end: Timestamp,
        matchers: &'a [Matcher],
    ) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        let mut values: Vec<String> = self
            .matching(matchers)
            .filter(|s| has_samples_in(s, start, end))
            .filter_map(|s| s.labels.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Box::pin(futures::future::ready(Ok(values)))
    }
}
