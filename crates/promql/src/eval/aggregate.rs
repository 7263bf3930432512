//! Aggregation operators.

use std::collections::HashMap;
use std::sync::Arc;

use hypnos_model::{FloatHistogram, Labels, LabelsBuilder, METRIC_NAME};

use super::group_fold::{Cells, FoldOp};
use super::windows::{self, kahan_inc};
use super::{Ev, Evaluator, StepCursor, StepValue, push_value};
use crate::error::QueryError;
use crate::histogram_ops as hops;
use crate::parser::{AggregateExpr, Expr, LabelModifier, unwrap_parens};
use crate::value::{Matrix, Series};

#[derive(Default, Clone)]
struct Acc {
    seen: bool,
    f: f64,
    c: f64,
    mean: f64,
    count: f64,
    incremental: bool,
    has_float: bool,
    has_hist: bool,
    incompatible: bool,
    values: Vec<f64>,
    hint: Option<hypnos_model::CounterResetHint>,
    hists: Vec<Arc<FloatHistogram>>,
    hint_collision: bool,
}

impl Evaluator<'_> {
    pub(super) fn eval_aggregate(&mut self, a: &AggregateExpr) -> Result<Ev, QueryError> {
        let op = a.op.to_string();
        let op = op.as_str();
        let param_scalar = match (&a.param, op) {
            (Some(p), "topk" | "bottomk" | "quantile" | "limitk" | "limit_ratio") => Some(self.scalar_arg(p)?),
            _ => None,
        };
        let param_string = match (&a.param, op) {
            (Some(p), "count_values") => match unwrap_parens(p) {
                Expr::StringLiteral(s) => Some(s.val.clone()),
                _ => return Err(QueryError::exec("count_values needs a string parameter")),
            },
            _ => None,
        };
        let input = self.vector_arg(&a.expr)?;
        let arg_pos = self.position(&a.expr);
        let agg_pos = self.position(&Expr::Aggregate(a.clone()));
        let (without, grouping): (bool, Vec<String>) = match &a.modifier {
            None => (false, Vec::new()),
            Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
        };
        if let Some(label) = &param_string {
            self.check_label_name(label)?;
        }
        // Group keys, computed once per series.
        let mut group_of = Vec::with_capacity(input.len());
        let mut group_labels: Vec<Labels> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        // With delayed name removal, groups are formed on the names still present; a group
        // drops its name at the end if any member was marked for that.
        let mut group_drop: Vec<bool> = Vec::new();
        for s in &input {
            let key = group_key(&s.metric, &grouping, without);
            let g = *index.entry(key.clone()).or_insert_with(|| {
                group_labels.push(key);
                group_drop.push(false);
                group_labels.len() - 1
            });
            group_drop[g] |= s.drop_name;
            group_of.push(g);
        }
        let out = match op {
            "topk" | "bottomk" | "limitk" | "limit_ratio" => self.aggregate_select(
                op,
                &input,
                &group_of,
                group_labels.len(),
                param_scalar.unwrap_or_default(),
                a.param.as_deref().and_then(|p| self.position(p)),
            )?,
            "count_values" => self.count_values(&input, &group_of, &group_labels, &param_string.unwrap_or_default()),
            _ => {
                let q = param_scalar.unwrap_or_default();
                if op == "quantile" {
                    for &v in &q {
                        if !(0.0..=1.0).contains(&v) {
                            self.annotations.warn(
                                format!(
                                    "quantile value should be between 0 and 1, got {}",
                                    super::functions::fmt_float(v)
                                ),
                                a.param.as_deref().and_then(|p| self.position(p)),
                            );
                        }
                    }
                }
                let mut m = self.aggregate_reduce(op, &input, &group_of, &group_labels, &q, arg_pos, agg_pos)?;
                for s in &mut m {
                    if let Some(&g) = index.get(&s.metric) {
                        s.drop_name |= group_drop[g];
                    }
                }
                m
            }
        };
        Ok(Ev::Vector(out))
    }

    #[allow(clippy::too_many_arguments)]
    fn aggregate_reduce(
        &mut self,
        op: &str,
        input: &Matrix,
        group_of: &[usize],
        group_labels: &[Labels],
        q: &[f64],
        arg_pos: Option<(usize, usize)>,
        agg_pos: Option<(usize, usize)>,
    ) -> Result<Matrix, QueryError> {
        if let Some(out) = self.reduce_floats_by_series(op, input, group_of, group_labels)? {
            self.add_samples(out.iter().map(Series::len).sum())?;
            return Ok(out);
        }
        self.reduce_by_step(op, input, group_of, group_labels, q, arg_pos, agg_pos)
    }

    /// Every aggregation of [`Self::aggregate_reduce`], step by step over all series.
    #[allow(clippy::too_many_arguments)]
    fn reduce_by_step(
        &mut self,
        op: &str,
        input: &Matrix,
        group_of: &[usize],
        group_labels: &[Labels],
        q: &[f64],
        arg_pos: Option<(usize, usize)>,
        agg_pos: Option<(usize, usize)>,
    ) -> Result<Matrix, QueryError> {
        let steps = self.num_steps();
        let mut cursors: Vec<StepCursor> = input.iter().map(|_| StepCursor::new()).collect();
        let mut out: Vec<Option<Series>> = vec![None; group_labels.len()];
        let mut order: Vec<usize> = Vec::new();
        let mut accs: Vec<Acc> = vec![Acc::default(); group_labels.len()];
        let mut mixed = false;
        let mut mixed_schemas = false;
        let mut ignored_hist = false;
        let mut conflicting_resets = false;
        let mut reconciled = false;
        for step in 0..steps {
            self.check("query execution")?;
            let ts = self.step_ts(step);
            accs.iter_mut().for_each(|a| *a = Acc::default());
            for (si, s) in input.iter().enumerate() {
                let Some(v) = cursors[si].at(s, ts) else { continue };
                let g = group_of[si];
                let acc = &mut accs[g];
                let (f, h) = match &v {
                    StepValue::F(f) => (*f, None),
                    StepValue::H(h) => (0.0, Some(h)),
                };
                if let Some(hint) = h.map(|h| h.counter_reset_hint) {
                    match acc.hint {
                        None => acc.hint = Some(hint),
                        Some(cur) => {
                            let (n, collision) = hops::fold_hint(cur, hint);
                            acc.hint = Some(n);
                            acc.hint_collision |= collision;
                        }
                    }
                }
                if !acc.seen {
                    let (hint, hint_collision) = (acc.hint, acc.hint_collision);
                    *acc = Acc {
                        seen: true,
                        f,
                        mean: f,
                        count: 1.0,
                        hint,
                        hint_collision,
                        ..Default::default()
                    };
                    match op {
                        "sum" | "avg" => match h {
                            Some(h) => {
                                acc.hists.push(h.clone());
                                acc.has_hist = true;
                            }
                            None => acc.has_float = true,
                        },
                        "stddev" | "stdvar" => {
                            if h.is_some() {
                                acc.seen = false;
                                ignored_hist = true;
                            } else if f.is_nan() || f.is_infinite() {
                                acc.f = f64::NAN;
                            } else {
                                acc.f = 0.0;
                            }
                        }
                        "quantile" => {
                            if h.is_some() {
                                acc.seen = false;
                                ignored_hist = true;
                            } else {
                                acc.values.push(f);
                            }
                        }
                        "group" => acc.f = 1.0,
                        "min" | "max" if h.is_some() => {
                            acc.seen = false;
                            ignored_hist = true;
                        }
                        _ => {}
                    }
                    continue;
                }
                match op {
                    "sum" => match h {
                        Some(h) => {
                            acc.has_hist = true;
                            acc.hists.push(h.clone());
                        }
                        None => {
                            acc.has_float = true;
                            (acc.f, acc.c) = kahan_inc(f, acc.f, acc.c);
                        }
                    },
                    "avg" => {
                        acc.count += 1.0;
                        match h {
                            Some(h) => {
                                acc.has_hist = true;
                                acc.hists.push(h.clone());
                            }
                            None => {
                                acc.has_float = true;
                                if !acc.incremental {
                                    let (nv, nc) = kahan_inc(f, acc.f, acc.c);
                                    if !nv.is_infinite() {
                                        (acc.f, acc.c) = (nv, nc);
                                        continue;
                                    }
                                    acc.incremental = true;
                                    acc.mean = acc.f / (acc.count - 1.0);
                                    acc.c /= acc.count - 1.0;
                                }
                                let qf = (acc.count - 1.0) / acc.count;
                                (acc.mean, acc.c) = kahan_inc(f / acc.count, qf * acc.mean, qf * acc.c);
                            }
                        }
                    }
                    "count" => acc.count += 1.0,
                    "group" => {}
                    "max" | "min" => {
                        if h.is_some() {
                            ignored_hist = true;
                        } else if (op == "max" && acc.f < f) || (op == "min" && acc.f > f) || acc.f.is_nan() {
                            acc.f = f;
                        }
                    }
                    "stddev" | "stdvar" => {
                        if h.is_some() {
                            ignored_hist = true;
                        } else if f.is_nan() || f.is_infinite() {
                            acc.f = f64::NAN;
                        } else {
                            acc.count += 1.0;
                            let delta = f - acc.mean;
                            acc.mean += delta / acc.count;
                            acc.f += delta * (f - acc.mean);
                        }
                    }
                    "quantile" => {
                        if h.is_some() {
                            ignored_hist = true;
                        } else {
                            acc.values.push(f);
                        }
                    }
                    _ => {}
                }
            }
            for (g, acc) in accs.iter_mut().enumerate() {
                if !acc.seen {
                    continue;
                }
                let value = match op {
                    "sum" | "avg" => {
                        if acc.has_float && acc.has_hist {
                            mixed = true;
                            continue;
                        }
                        if acc.incompatible {
                            mixed_schemas = true;
                            continue;
                        }
                        if acc.has_hist {
                            use hypnos_model::CounterResetHint as Hint;
                            conflicting_resets |= acc.hint_collision
                                || (acc.hists.iter().any(|h| h.counter_reset_hint == Hint::CounterReset)
                                    && acc.hists.iter().any(|h| h.counter_reset_hint == Hint::NotCounterReset));
                            let refs: Vec<&FloatHistogram> = acc.hists.iter().map(|h| &**h).collect();
                            let mut h = match hops::sum_all(&refs, op == "avg") {
                                Ok((h, r)) => {
                                    reconciled |= r;
                                    hops::compact(h)
                                }
                                Err(_) => {
                                    mixed_schemas = true;
                                    continue;
                                }
                            };
                            if let Some(hint) = acc.hint {
                                h.counter_reset_hint = hint;
                            }
                            StepValue::H(Arc::new(h))
                        } else if op == "sum" {
                            StepValue::F(acc.f + acc.c)
                        } else if acc.incremental {
                            StepValue::F(acc.mean + acc.c)
                        } else {
                            StepValue::F(acc.f / acc.count + acc.c / acc.count)
                        }
                    }
                    "count" => StepValue::F(acc.count),
                    "group" => StepValue::F(1.0),
                    "max" | "min" => StepValue::F(acc.f),
                    "stdvar" => StepValue::F(acc.f / acc.count),
                    "stddev" => StepValue::F((acc.f / acc.count).sqrt()),
                    "quantile" => StepValue::F(windows::quantile(q[step], &mut acc.values)),
                    _ => continue,
                };
                let series = out[g].get_or_insert_with(|| {
                    order.push(g);
                    Series::new(group_labels[g].clone())
                });
                push_value(series, ts, value);
            }
        }
        if mixed {
            self.annotations
                .warn("encountered a mix of histograms and floats for aggregation", arg_pos);
        }
        if ignored_hist {
            self.annotations
                .info(format!("ignored histogram in {op} aggregation"), agg_pos);
        }
        if mixed_schemas {
            self.annotations.warn(
                "vector contains a mix of histograms with exponential and custom buckets schemas for metric name \"\"",
                arg_pos,
            );
        }
        if conflicting_resets {
            self.annotations
                .warn("conflicting counter resets during histogram aggregation", arg_pos);
        }
        if reconciled {
            self.annotations
                .info("mismatched custom buckets were reconciled during aggregation", agg_pos);
        }
        let out: Matrix = order.into_iter().filter_map(|g| out[g].take()).collect();
        self.add_samples(out.iter().map(Series::len).sum())?;
        Ok(out)
    }

    /// `sum`, `count`, `min`, `max`, `group`, `avg`, `stddev` and `stdvar` of float-only input, series by series
    /// into one cell per (group, step) (see [`Cells`]): each series' points are read once, in
    /// memory order, and a cell still sees the series in input order, so the result is the
    /// step-by-step one's. None when the input holds histograms or the cells would not be small.
    fn reduce_floats_by_series(
        &mut self,
        op: &str,
        input: &Matrix,
        group_of: &[usize],
        group_labels: &[Labels],
    ) -> Result<Option<Matrix>, QueryError> {
        const MAX_CELLS: usize = 1 << 22;
        let Some(op) = FoldOp::parse(op) else {
            return Ok(None);
        };
        if input.iter().any(|s| !s.histograms.is_empty()) {
            return Ok(None);
        }
        let steps = self.num_steps();
        if group_labels.len().checked_mul(steps).is_none_or(|c| c > MAX_CELLS) {
            return Ok(None);
        }
        let mut cells = Cells::with_groups(op, steps, group_labels.len());
        for (s, &g) in input.iter().zip(group_of) {
            self.check("query execution")?;
            cells.fold_series(g, s, self.start, self.interval);
        }
        Ok(Some(cells.finish(group_labels, &[], |i| self.step_ts(i))))
    }

    fn aggregate_select(
        &mut self,
        op: &str,
        input: &Matrix,
        group_of: &[usize],
        groups: usize,
        param: Vec<f64>,
        agg_pos: Option<(usize, usize)>,
    ) -> Result<Matrix, QueryError> {
        let steps = self.num_steps();
        let mut cursors: Vec<StepCursor> = input.iter().map(|_| StepCursor::new()).collect();
        let mut out: Vec<Option<Series>> = vec![None; input.len()];
        let mut order: Vec<usize> = Vec::new();
        let mut ignored_hist = false;
        for step in 0..steps {
            self.check("query execution")?;
            let ts = self.step_ts(step);
            let p = param.get(step).copied().unwrap_or(f64::NAN);
            let mut per_group: Vec<Vec<(usize, StepValue)>> = vec![Vec::new(); groups];
            for (si, s) in input.iter().enumerate() {
                if let Some(v) = cursors[si].at(s, ts) {
                    per_group[group_of[si]].push((si, v));
                }
            }
            let mut selected: Vec<(usize, StepValue)> = Vec::new();
            match op {
                "topk" | "bottomk" | "limitk" => {
                    if p.is_nan() {
                        return Err(QueryError::exec("Parameter value is NaN"));
                    }
                    if !(-9.223372036854776e18..9.223372036854776e18).contains(&p) {
                        return Err(QueryError::exec(format!("Scalar value {p} overflows int64")));
                    }
                    let k = p as i64;
                    if k < 1 {
                        continue;
                    }
                    let k = usize::try_from(k).unwrap_or(usize::MAX);
                    for mut members in per_group {
                        if op == "limitk" {
                            members.truncate(k);
                            selected.extend(members);
                            continue;
                        }
                        let before = members.len();
                        members.retain(|(_, v)| matches!(v, StepValue::F(_)));
                        ignored_hist |= members.len() != before;
                        let val = |v: &StepValue| if let StepValue::F(f) = v { *f } else { f64::NAN };
                        let mut chosen = select_k(members, k, op == "topk");
                        if op == "topk" {
                            chosen.sort_by(|a, b| desc_nan_last(val(&a.1), val(&b.1)));
                        } else {
                            chosen.sort_by(|a, b| asc_nan_last(val(&a.1), val(&b.1)));
                        }
                        selected.extend(chosen);
                    }
                }
                _ => {
                    if p.is_nan() {
                        return Err(QueryError::exec("Ratio value is NaN"));
                    }
                    let mut r = p;
                    if !(-1.0..=1.0).contains(&r) {
                        let capped = r.clamp(-1.0, 1.0);
                        self.annotations.warn(
                            format!(
                                "ratio value should be between -1 and 1, got {}, capping to {}",
                                super::functions::fmt_float(r),
                                super::functions::fmt_float(capped)
                            ),
                            agg_pos,
                        );
                        r = capped;
                    }
                    for members in per_group {
                        for (si, v) in members {
                            let offset = labels_hash(&input[si].metric) as f64 / u64::MAX as f64;
                            if (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r) {
                                selected.push((si, v));
                            }
                        }
                    }
                }
            }
            for (si, v) in selected {
                let series = out[si].get_or_insert_with(|| {
                    order.push(si);
                    Series {
                        metric: input[si].metric.clone(),
                        drop_name: input[si].drop_name,
                        ..Default::default()
                    }
                });
                push_value(series, ts, v);
            }
        }
        if ignored_hist {
            self.annotations
                .info(format!("ignored histogram in {op} aggregation"), agg_pos);
        }
        Ok(order.into_iter().filter_map(|i| out[i].take()).collect())
    }

    fn count_values(&mut self, input: &Matrix, group_of: &[usize], group_labels: &[Labels], label: &str) -> Matrix {
        let steps = self.num_steps();
        let mut cursors: Vec<StepCursor> = input.iter().map(|_| StepCursor::new()).collect();
        let mut out: Vec<Series> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for step in 0..steps {
            let ts = self.step_ts(step);
            let mut counts: Vec<(Labels, f64)> = Vec::new();
            let mut pos: HashMap<Labels, usize> = HashMap::new();
            for (si, s) in input.iter().enumerate() {
                let Some(v) = cursors[si].at(s, ts) else { continue };
                let value = match &v {
                    StepValue::F(f) => super::functions::fmt_float(*f),
                    StepValue::H(h) => crate::histogram_fmt::to_string(h),
                };
                let mut b = group_labels[group_of[si]].builder();
                b.set(label, value);
                let l = b.build();
                match pos.get(&l) {
                    Some(&i) => counts[i].1 += 1.0,
                    None => {
                        pos.insert(l.clone(), counts.len());
                        counts.push((l, 1.0));
                    }
                }
            }
            for (l, c) in counts {
                let i = *index.entry(l.clone()).or_insert_with(|| {
                    out.push(Series::new(l));
                    out.len() - 1
                });
                push_value(&mut out[i], ts, StepValue::F(c));
            }
        }
        out
    }
}

fn group_key(metric: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        let mut names: Vec<&str> = grouping.iter().map(String::as_str).collect();
        names.push(METRIC_NAME);
        metric.without(&names)
    } else if grouping.is_empty() {
        Labels::empty()
    } else {
        let names: Vec<&str> = grouping.iter().map(String::as_str).collect();
        metric.keep_only(&names)
    }
}

/// Prometheus's `labels.Hash`: xxHash64 over `name 0xff value 0xff …`.
pub(crate) fn labels_hash(l: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(128);
    for lb in l {
        buf.extend_from_slice(lb.name.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(lb.value.as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&buf, 0)
}

/// topk's (`top`) or bottomk's choice among `members`, given in input order, made the way
/// Prometheus makes it: a k-element heap (Go's container/heap) whose root a later sample
/// replaces only when strictly better. Ties between equal values are thereby broken exactly as
/// in Prometheus, which a sort by value does not do (with [5a, 5b, 7c] and k = 2 Prometheus
/// keeps 5b and 7c).
fn select_k(members: Vec<(usize, StepValue)>, k: usize, top: bool) -> Vec<(usize, StepValue)> {
    let val = |v: &(usize, StepValue)| if let StepValue::F(f) = v.1 { f } else { f64::NAN };
    let mut heap: Vec<(usize, StepValue)> = Vec::with_capacity(k.min(members.len()));
    for m in members {
        heap_offer(&mut heap, m, k, top, val);
    }
    heap
}

/// One step of [`select_k`]: offers the next member (in input order) to the k-element heap;
/// returns the member it displaced or refused. Shared with the streamed topk, so that both
/// break ties identically.
pub(super) fn heap_offer<T>(heap: &mut Vec<T>, m: T, k: usize, top: bool, val: impl Fn(&T) -> f64) -> Option<T> {
    // The heap's order: its root is the member the next better sample replaces.
    let less = |a: f64, b: f64| (a.is_nan() && !b.is_nan()) || if top { a < b } else { a > b };
    if heap.len() < k {
        heap.push(m);
        let mut j = heap.len() - 1;
        while j > 0 {
            let parent = (j - 1) / 2;
            if !less(val(&heap[j]), val(&heap[parent])) {
                break;
            }
            heap.swap(parent, j);
            j = parent;
        }
        return None;
    }
    if !heap.first().is_some_and(|root| less(val(root), val(&m))) {
        return Some(m);
    }
    let old = std::mem::replace(&mut heap[0], m);
    let mut i = 0;
    loop {
        let left = 2 * i + 1;
        if left >= heap.len() {
            break;
        }
        let mut child = left;
        if left + 1 < heap.len() && less(val(&heap[left + 1]), val(&heap[left])) {
            child = left + 1;
        }
        if !less(val(&heap[child]), val(&heap[i])) {
            break;
        }
        heap.swap(i, child);
        i = child;
    }
    Some(old)
}

pub(super) fn desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

pub(super) fn asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

#[allow(dead_code)]
fn unused(_: LabelsBuilder) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::FPoint;

    fn chosen(values: &[f64], k: usize, top: bool) -> Vec<usize> {
        let members = values.iter().enumerate().map(|(i, v)| (i, StepValue::F(*v))).collect();
        let mut ids: Vec<usize> = select_k(members, k, top).into_iter().map(|(i, _)| i).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn series_by_series_reduction_equals_step_by_step() {
        let guard = super::super::Guard {
            max_samples: usize::MAX,
            deadline: None,
            cancel: None,
        };
        let data = HashMap::new();
        let mut ev = Evaluator::new(&data, "", 1_000, 61_000, 10_000, 300_000, 60_000, &guard);
        // Values that exercise Kahan compensation, NaN replacement, infinities and sums that
        // overflow (avg's switch to an incremental mean); series with gaps, points off the step
        // grid and a repeated timestamp.
        let values = [
            1.5e308,
            -1.7e308,
            1.6e308,
            1e16,
            1.0,
            -1e16,
            f64::NAN,
            3.5,
            f64::INFINITY,
            -2.0,
            0.1,
            0.2,
            f64::NEG_INFINITY,
        ];
        let mut input = Matrix::new();
        for i in 0..12usize {
            let mut s = Series::new(Labels::from_pairs([("i", i.to_string())]));
            for step in 0..7usize {
                if (i + step) % 4 == 3 {
                    continue;
                }
                let t = 1_000 + step as i64 * 10_000;
                s.floats.push(FPoint {
                    t,
                    v: values[(i * 7 + step * 3) % values.len()],
                });
                if i == 5 && step == 2 {
                    s.floats.push(FPoint { t, v: 42.0 });
                }
                if i == 7 {
                    s.floats.push(FPoint { t: t + 5, v: 9.0 });
                }
            }
            input.push(s);
        }
        let group_labels: Vec<Labels> = (0..3).map(|g| Labels::from_pairs([("g", g.to_string())])).collect();
        // Group 2 first appears later than group 1 would, to check the output order.
        let group_of: Vec<usize> = (0..12).map(|i| [1, 0, 2, 1][i % 4]).collect();
        for op in ["sum", "count", "min", "max", "group", "avg", "stddev", "stdvar"] {
            let fast = ev
                .reduce_floats_by_series(op, &input, &group_of, &group_labels)
                .unwrap()
                .unwrap();
            let slow = ev
                .reduce_by_step(op, &input, &group_of, &group_labels, &[], None, None)
                .unwrap();
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{op}");
        }
    }

    #[test]
    fn ties_are_broken_like_prometheus_heap() {
        // Prometheus: heap [5a, 5b]; 7c replaces the root 5a.
        assert_eq!(chosen(&[5.0, 5.0, 7.0], 2, true), vec![1, 2]);
        // Equal values never replace: the first ones stay.
        assert_eq!(chosen(&[5.0, 5.0, 5.0], 1, true), vec![0]);
        assert_eq!(chosen(&[5.0, 3.0, 5.0, 5.0], 2, true), vec![0, 2]);
        assert_eq!(chosen(&[1.0, 1.0, 0.0], 2, false), vec![1, 2]);
        // NaN is worst for both.
        assert_eq!(chosen(&[f64::NAN, 1.0], 1, true), vec![1]);
        assert_eq!(chosen(&[f64::NAN, 1.0], 1, false), vec![1]);
        assert_eq!(chosen(&[3.0, 1.0, 2.0], 5, true), vec![0, 1, 2]);
    }
}
