//! Function calls.

use std::sync::Arc;

use hypnos_model::{Labels, METRIC_NAME};

use super::windows::prefix::{IndexCursor, SeriesPrefix};
use super::windows::{self, Notes};
use super::{Ev, Evaluator, MatrixSource, StepValue, push_value};
use crate::error::QueryError;
use crate::parser::{Call, Expr, unwrap_parens};
use crate::value::{FPoint, Matrix, Series};

/// Functions taking a range vector, and whether they keep the metric name.
pub(crate) fn range_function(name: &str) -> Option<bool> {
    Some(match name {
        "last_over_time" | "first_over_time" => true,
        "rate"
        | "increase"
        | "delta"
        | "irate"
        | "idelta"
        | "deriv"
        | "predict_linear"
        | "changes"
        | "resets"
        | "avg_over_time"
        | "sum_over_time"
        | "count_over_time"
        | "min_over_time"
        | "max_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "quantile_over_time"
        | "present_over_time"
        | "mad_over_time"
        | "ts_of_first_over_time"
        | "ts_of_last_over_time"
        | "ts_of_min_over_time"
        | "ts_of_max_over_time"
        | "double_exponential_smoothing"
        | "holt_winters" => false,
        _ => return None,
    })
}

fn math_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |v: f64| v * 180.0 / std::f64::consts::PI,
        "rad" => |v: f64| v * std::f64::consts::PI / 180.0,
        "sgn" => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

fn time_function(name: &str) -> Option<fn(i64) -> f64> {
    Some(match name {
        "day_of_month" => |t| civil(t).2 as f64,
        "day_of_week" => |t| (t.div_euclid(86400) + 4).rem_euclid(7) as f64,
        "day_of_year" => |t| {
            let (y, m, d) = civil(t);
            (days_from_civil(y, m, d) - days_from_civil(y, 1, 1) + 1) as f64
        },
        "days_in_month" => |t| {
            let (y, m, _) = civil(t);
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)) as f64
        },
        "hour" => |t| t.rem_euclid(86400).div_euclid(3600) as f64,
        "minute" => |t| t.rem_euclid(3600).div_euclid(60) as f64,
        "month" => |t| civil(t).1 as f64,
        "year" => |t| civil(t).0 as f64,
        _ => return None,
    })
}

/// Year, month, day of a Unix time in seconds (UTC).
fn civil(t: i64) -> (i64, i64, i64) {
    let z = t.div_euclid(86400) + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Labels `absent()` gives its result: the equality matchers of a selector argument.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match unwrap_parens(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut b = hypnos_model::LabelsBuilder::new();
    let mut has = std::collections::HashSet::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        let is_eq = matches!(m.op, crate::parser::ParserMatchOp::Equal);
        if is_eq && !has.contains(&m.name) {
            b.set(m.name.clone(), m.value.clone());
            has.insert(m.name.clone());
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

/// Natural ("version") order used by `sort_by_label`.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut ai, mut bi) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (ai.peek().copied(), bi.peek().copied()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let mut na = String::new();
                while let Some(c) = ai.peek().copied().filter(char::is_ascii_digit) {
                    na.push(c);
                    ai.next();
                }
                let mut nb = String::new();
                while let Some(c) = bi.peek().copied().filter(char::is_ascii_digit) {
                    nb.push(c);
                    bi.next();
                }
                let ta = na.trim_start_matches('0');
                let tb = nb.trim_start_matches('0');
                let o = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                ai.next();
                bi.next();
            }
        }
    }
}

impl Evaluator<'_> {
    fn string_arg(&self, c: &Call, i: usize) -> Result<String, QueryError> {
        match c.args.args.get(i).map(|a| unwrap_parens(a)) {
            Some(Expr::StringLiteral(s)) => Ok(s.val.clone()),
            _ => Err(QueryError::exec(format!(
                "expected string literal as argument {} of {}",
                i + 1,
                c.func.name
            ))),
        }
    }

    pub(super) fn scalar_arg(&mut self, e: &Expr) -> Result<Vec<f64>, QueryError> {
        match self.eval(e)? {
            Ev::Scalar(v) => Ok(v),
            _ => Err(QueryError::exec("expected scalar argument")),
        }
    }

    pub(super) fn vector_arg(&mut self, e: &Expr) -> Result<Matrix, QueryError> {
        match self.eval(e)? {
            Ev::Vector(m) => Ok(m),
            _ => Err(QueryError::exec("expected instant vector argument")),
        }
    }

    pub(super) fn eval_call(&mut self, c: &Call) -> Result<Ev, QueryError> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|b| b.as_ref()).collect();
        if let Some(keep_name) = range_function(name) {
            return self.eval_range_function(c, &args, keep_name).map(Ev::Vector);
        }
        if let Some(f) = math_function(name) {
            let m = self.vector_arg(args[0])?;
            return Ok(Ev::Vector(map_floats(m, |_, v| Some(f(v)))));
        }
        if let Some(f) = time_function(name) {
            let m = match args.first() {
                Some(a) => self.vector_arg(a)?,
                None => {
                    let steps = self.num_steps();
                    vec![Series {
                        metric: Labels::empty(),
                        floats: (0..steps)
                            .map(|i| FPoint {
                                t: self.step_ts(i),
                                v: self.step_ts(i) as f64 / 1000.0,
                            })
                            .collect(),
                        ..Default::default()
                    }]
                }
            };
            return Ok(Ev::Vector(map_floats(m, |_, v| {
                if v.is_nan() || v.is_infinite() {
                    Some(v)
                } else {
                    Some(f(v.floor() as i64))
                }
            })));
        }
        match name {
            "step" => Ok(Ev::Scalar(vec![
                if self.query_start == self.query_end {
                    0.0
                } else {
                    self.interval as f64 / 1000.0
                };
                self.num_steps()
            ])),
            "range" => Ok(Ev::Scalar(vec![
                (self.query_end - self.query_start) as f64 / 1000.0;
                self.num_steps()
            ])),
            "start" => Ok(Ev::Scalar(vec![self.query_start as f64 / 1000.0; self.num_steps()])),
            "end" => Ok(Ev::Scalar(vec![self.query_end as f64 / 1000.0; self.num_steps()])),
            "min_of" | "max_of" => {
                let mut acc: Option<Vec<f64>> = None;
                for a in &args {
                    let v = self.scalar_arg(a)?;
                    acc = Some(match acc {
                        None => v,
                        Some(prev) => prev
                            .iter()
                            .zip(&v)
                            .map(|(&x, &y)| if name == "min_of" { go_min(x, y) } else { go_max(x, y) })
                            .collect(),
                    });
                }
                Ok(Ev::Scalar(acc.unwrap_or_else(|| vec![f64::NAN; self.num_steps()])))
            }
            "time" => Ok(Ev::Scalar(
                (0..self.num_steps()).map(|i| self.step_ts(i) as f64 / 1000.0).collect(),
            )),
            "pi" => Ok(Ev::Scalar(vec![std::f64::consts::PI; self.num_steps()])),
            "vector" => {
                let v = self.scalar_arg(args[0])?;
                let floats = v
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| FPoint { t: self.step_ts(i), v })
                    .collect();
                Ok(Ev::Vector(vec![Series {
                    metric: Labels::empty(),
                    floats,
                    ..Default::default()
                }]))
            }
            "scalar" => {
                let m = self.vector_arg(args[0])?;
                let steps = self.num_steps();
                let mut out = vec![f64::NAN; steps];
                let mut count = vec![0u32; steps];
                for s in &m {
                    for p in &s.floats {
                        let i = self.step_index(p.t);
                        out[i] = p.v;
                        count[i] += 1;
                    }
                }
                for (o, c) in out.iter_mut().zip(count) {
                    if c != 1 {
                        *o = f64::NAN;
                    }
                }
                Ok(Ev::Scalar(out))
            }
            "timestamp" => {
                let m = match unwrap_parens(args[0]) {
                    Expr::VectorSelector(vs) => self.eval_vector_selector(vs, true)?,
                    other => {
                        let m = self.vector_arg(other)?;
                        m.into_iter()
                            .map(|s| {
                                let mut floats: Vec<FPoint> = s
                                    .floats
                                    .iter()
                                    .map(|p| FPoint {
                                        t: p.t,
                                        v: p.t as f64 / 1000.0,
                                    })
                                    .collect();
                                floats.extend(s.histograms.iter().map(|p| FPoint {
                                    t: p.t,
                                    v: p.t as f64 / 1000.0,
                                }));
                                floats.sort_by_key(|p| p.t);
                                Series {
                                    metric: s.metric,
                                    floats,
                                    histograms: Vec::new(),
                                    drop_name: s.drop_name,
                                }
                            })
                            .collect()
                    }
                };
                Ok(Ev::Vector(
                    m.into_iter()
                        .map(|mut s| {
                            s.drop_name = true;
                            s
                        })
                        .collect(),
                ))
            }
            "absent" => {
                let m = self.vector_arg(args[0])?;
                let steps = self.num_steps();
                let mut present = vec![false; steps];
                for s in &m {
                    for t in s.floats.iter().map(|p| p.t).chain(s.histograms.iter().map(|p| p.t)) {
                        present[self.step_index(t)] = true;
                    }
                }
                Ok(Ev::Vector(self.absent_result(&present, args[0])))
            }
            "absent_over_time" => {
                let src = self.range_source(args[0])?;
                let steps = self.num_steps();
                let mut present = vec![false; steps];
                for (i, p) in present.iter_mut().enumerate() {
                    let (lo, hi) = src.bounds(self.step_ts(i));
                    *p = src.series.iter().any(|s| {
                        let w = s.window(lo, hi);
                        !w.floats.is_empty() || !w.hists.is_empty()
                    });
                }
                Ok(Ev::Vector(self.absent_result(&present, args[0])))
            }
            "round" => {
                let m = self.vector_arg(args[0])?;
                let to = match args.get(1) {
                    Some(a) => Some(self.scalar_arg(a)?),
                    None => None,
                };
                let start = self.start;
                let interval = self.interval;
                Ok(Ev::Vector(map_floats(m, |t, v| {
                    let n = to.as_ref().map_or(1.0, |to| to[((t - start) / interval) as usize]);
                    let inv = 1.0 / n;
                    Some((v * inv + 0.5).floor() / inv)
                })))
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let m = self.vector_arg(args[0])?;
                let a = self.scalar_arg(args[1])?;
                let b = match args.get(2) {
                    Some(e) => Some(self.scalar_arg(e)?),
                    None => None,
                };
                let (start, interval) = (self.start, self.interval);
                Ok(Ev::Vector(map_floats(m, |t, v| {
                    let i = ((t - start) / interval) as usize;
                    match name {
                        "clamp_min" => Some(go_max(a[i], v)),
                        "clamp_max" => Some(go_min(a[i], v)),
                        _ => {
                            let (lo, hi) = (a[i], b.as_ref().map_or(f64::NAN, |b| b[i]));
                            if hi < lo { None } else { Some(go_max(lo, go_min(hi, v))) }
                        }
                    }
                })))
            }
            "label_replace" => self.label_replace(c, &args),
            "label_join" => self.label_join(c, &args),
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
                if self.start != self.end {
                    let pos = self.position(&Expr::Call(c.clone()));
                    self.annotations.warn(
                        "sort is ineffective for range queries since results are always ordered by labels",
                        pos,
                    );
                }
                let mut m = self.vector_arg(args[0])?;
                if matches!(name, "sort" | "sort_desc") {
                    m.retain(|s| !s.floats.is_empty());
                }
                let value = |s: &Series| s.floats.first().map_or(f64::NAN, |p| p.v);
                match name {
                    "sort" => m.sort_by(|a, b| sort_cmp(value(a), value(b))),
                    "sort_desc" => m.sort_by(|a, b| sort_cmp(-value(a), -value(b))),
                    _ => {
                        let mut labels = Vec::new();
                        for i in 1..args.len() {
                            labels.push(self.string_arg(c, i)?);
                        }
                        let desc = name == "sort_by_label_desc";
                        m.sort_by(|a, b| {
                            let mut o = std::cmp::Ordering::Equal;
                            for l in &labels {
                                o = natural_cmp(a.metric.get(l).unwrap_or(""), b.metric.get(l).unwrap_or(""));
                                if o != std::cmp::Ordering::Equal {
                                    break;
                                }
                            }
                            let o = o.then_with(|| a.metric.cmp(&b.metric));
                            if desc { o.reverse() } else { o }
                        });
                    }
                }
                Ok(Ev::Vector(m))
            }
            "info" => self.eval(args[0]),
            "histogram_count"
            | "histogram_sum"
            | "histogram_avg"
            | "histogram_stddev"
            | "histogram_stdvar"
            | "histogram_fraction"
            | "histogram_quantile"
            | "histogram_quantiles" => self.eval_histogram_function(c, &args),
            other => Err(QueryError::exec(format!("function {other:?} is not supported"))),
        }
    }

    fn absent_result(&self, present: &[bool], arg: &Expr) -> Matrix {
        let floats: Vec<FPoint> = present
            .iter()
            .enumerate()
            .filter(|(_, p)| !**p)
            .map(|(i, _)| FPoint {
                t: self.step_ts(i),
                v: 1.0,
            })
            .collect();
        if floats.is_empty() {
            return Vec::new();
        }
        vec![Series {
            metric: absent_labels(arg),
            floats,
            ..Default::default()
        }]
    }

    pub(super) fn range_source(&mut self, e: &Expr) -> Result<MatrixSource<'static>, QueryError> {
        match unwrap_parens(e) {
            Expr::MatrixSelector(ms) => {
                let src = self.matrix_source_selector(ms);
                // Detach the lifetime: sources only hold Arcs and owned data.
                Ok(MatrixSource {
                    series: src.series,
                    range: src.range,
                    offset: src.offset,
                    at: src.at,
                    _p: std::marker::PhantomData,
                })
            }
            Expr::Subquery(sq) => self.matrix_source_subquery(sq),
            _ => Err(QueryError::exec("expected range vector argument")),
        }
    }

    fn eval_range_function(&mut self, c: &Call, args: &[&Expr], keep_name: bool) -> Result<Matrix, QueryError> {
        let name = c.func.name;
        let matrix_idx = if name == "quantile_over_time" { 1 } else { 0 };
        let mut scalars: Vec<Vec<f64>> = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i != matrix_idx {
                scalars.push(self.scalar_arg(a)?);
            }
        }
        let arg_pos = self.position(args[matrix_idx]);
        let src = self.range_source(args[matrix_idx])?;
        let steps = self.num_steps();
        let mut out = Vec::with_capacity(src.series.len());
        let mut notes_total = Vec::new();
        if name == "quantile_over_time" {
            for &q in &scalars[0] {
                if !(0.0..=1.0).contains(&q) {
                    self.annotations.warn(
                        format!("quantile value should be between 0 and 1, got {}", fmt_float(q)),
                        self.position(args[0]),
                    );
                }
            }
        }
        if matches!(name, "double_exponential_smoothing" | "holt_winters") {
            for i in 0..steps {
                let (sf, tf) = (scalars[0][i], scalars[1][i]);
                if !(sf > 0.0 && sf < 1.0) {
                    return Err(QueryError::exec(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                    )));
                }
                if !(tf > 0.0 && tf < 1.0) {
                    return Err(QueryError::exec(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    )));
                }
            }
        }
        for s in &src.series {
            self.check("query execution")?;
            let mut series = Series::new(s.metric.clone());
            series.drop_name = s.drop_name || !keep_name;
            let mut notes = Notes::default();
            let extreme = matches!(
                name,
                "max_over_time" | "min_over_time" | "ts_of_max_over_time" | "ts_of_min_over_time"
            );
            if extreme && s.hists().is_empty() {
                let max = matches!(name, "max_over_time" | "ts_of_max_over_time");
                self.sliding_extreme(&src, s, max, name.starts_with("ts_of_"), &mut series);
                if !series.is_empty() {
                    self.add_samples(series.len())?;
                    out.push(series);
                }
                continue;
            }
            if let Some(prefix) = self.series_prefix(name, &src, s) {
                let mut cursor = IndexCursor::default();
                for i in 0..steps {
                    let ts = self.step_ts(i);
                    let (lo, hi) = src.bounds(ts);
                    let idx = cursor.advance(s.floats(), s.hists(), lo, hi);
                    if idx.fa == idx.fb && idx.ha == idx.hb {
                        continue;
                    }
                    if let Some(v) = prefix.eval(s, idx, lo, hi, src.range, &mut notes) {
                        push_value(&mut series, ts, v);
                    }
                }
                notes_total.push((s.metric.metric_name().unwrap_or("").to_string(), notes));
                if !series.is_empty() {
                    self.add_samples(series.len())?;
                    out.push(series);
                }
                continue;
            }
            let mut cursor = super::WindowCursor::default();
            for i in 0..steps {
                let ts = self.step_ts(i);
                let (lo, hi) = src.bounds(ts);
                let w = cursor.window(s, lo, hi);
                if w.floats.is_empty() && w.hists.is_empty() {
                    continue;
                }
                let eval_ts = ts;
                let v = window_function(name, &w, src.range, eval_ts, &scalars, i, &mut notes);
                if let Some(v) = v {
                    push_value(&mut series, ts, v);
                }
            }
            notes_total.push((s.metric.metric_name().unwrap_or("").to_string(), notes));
            if !series.is_empty() {
                self.add_samples(series.len())?;
                out.push(series);
            }
        }
        for (metric, n) in notes_total {
            self.note_annotations(&metric, &n, arg_pos, name);
        }
        Ok(out)
    }

    /// The one-pass precomputation answering `name`'s windows over `s`, when `name` has one
    /// and the windows overlap enough for it to pay: their total length must exceed the time
    /// they span, else the pass would look at more samples than the scans of the windows.
    fn series_prefix(&self, name: &str, src: &MatrixSource<'_>, s: &super::SrcSeries) -> Option<SeriesPrefix> {
        let steps = self.num_steps();
        if steps < 2 {
            return None;
        }
        let (first_lo, _) = src.bounds(self.step_ts(0));
        let (_, last_hi) = src.bounds(self.step_ts(steps - 1));
        let covered = i64::try_from(steps).ok()?.checked_mul(src.range)?;
        if covered <= last_hi.checked_sub(first_lo)? {
            return None;
        }
        SeriesPrefix::build(name, s, first_lo, last_hi)
    }

    /// `max_over_time` / `min_over_time` of a float series at every step with a monotonic
    /// queue of window indices, so each sample is looked at a few times instead of once per
    /// step its window covers (a 6h window at a 15s step: 1,440 times). Same result as the
    /// scan: the first maximal value of the window's non-NaN samples, NaN if they all are.
    /// With `timestamp` (`ts_of_max_over_time` / `ts_of_min_over_time`) the time of the last
    /// maximal non-NaN sample instead, or of the window's first sample if they all are NaN:
    /// ties then replace the queued sample.
    fn sliding_extreme(
        &self,
        src: &MatrixSource<'_>,
        s: &super::SrcSeries,
        max: bool,
        timestamp: bool,
        out: &mut Series,
    ) {
        let f = s.floats();
        let displaces = |new: f64, queued: f64| match (max, timestamp) {
            (true, false) => new > queued,
            (false, false) => new < queued,
            (true, true) => new >= queued,
            (false, true) => new <= queued,
        };
        let mut queue: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
        let (mut a, mut b) = (0, 0);
        for i in 0..self.num_steps() {
            let ts = self.step_ts(i);
            let (lo, hi) = src.bounds(ts);
            while b < f.len() && f[b].t <= hi {
                if !f[b].v.is_nan() {
                    while queue.back().is_some_and(|&k| displaces(f[b].v, f[k].v)) {
                        queue.pop_back();
                    }
                    queue.push_back(b);
                }
                b += 1;
            }
            while a < b && f[a].t <= lo {
                a += 1;
            }
            while queue.front().is_some_and(|&k| k < a) {
                queue.pop_front();
            }
            if a == b {
                continue;
            }
            let v = match (queue.front(), timestamp) {
                (Some(&k), false) => f[k].v,
                (None, false) => f64::NAN,
                (Some(&k), true) => f[k].t as f64 / 1000.0,
                (None, true) => f[a].t as f64 / 1000.0,
            };
            push_value(out, ts, StepValue::F(v));
        }
    }

    pub(super) fn note_annotations(&mut self, metric: &str, n: &Notes, pos: Option<(usize, usize)>, func: &str) {
        if n.mixed_floats_histograms {
            self.annotations.warn(
                format!("encountered a mix of histograms and floats for metric name {metric:?}"),
                pos,
            );
        }
        if n.not_counter {
            self.annotations.warn(
                format!("this native histogram metric is not a counter: {metric:?}"),
                pos,
            );
        }
        if n.not_gauge {
            self.annotations
                .warn(format!("this native histogram metric is not a gauge: {metric:?}"), pos);
        }
        if n.mixed_schemas {
            self.annotations.warn(
                format!("vector contains a mix of histograms with exponential and custom buckets schemas for metric name {metric:?}"),
                pos,
            );
        }
        if n.incompatible_custom_buckets {
            self.annotations.warn(
                format!("vector contains histograms with incompatible custom buckets for metric name {metric:?}"),
                pos,
            );
        }
        if n.histograms_ignored {
            self.annotations.info(
                format!(
                    "ignored histograms in a range containing both floats and histograms for metric name {metric:?}"
                ),
                pos,
            );
        }
        if n.conflicting_resets {
            self.annotations
                .warn("conflicting counter resets during histogram aggregation", pos);
        }
        if n.custom_buckets_reconciled {
            let _ = func;
            self.annotations.info(
                format!(
                    "mismatched custom buckets were reconciled during {}",
                    if matches!(func, "sum_over_time" | "avg_over_time") {
                        "aggregation"
                    } else {
                        "subtraction"
                    }
                ),
                pos,
            );
        }
    }

    fn label_replace(&mut self, c: &Call, args: &[&Expr]) -> Result<Ev, QueryError> {
        let dst = self.string_arg(c, 1)?;
        let repl = self.string_arg(c, 2)?;
        let src = self.string_arg(c, 3)?;
        let re_str = self.string_arg(c, 4)?;
        let re = regex::Regex::new(&format!("^(?s:{re_str})$"))
            .map_err(|e| QueryError::exec(format!("invalid regular expression in label_replace(): {e}")))?;
        if self.check_label_name(&dst).is_err() {
            let shown = self.invalid_utf8.get(&dst).cloned().unwrap_or_else(|| dst.clone());
            return Err(QueryError::exec(format!(
                "invalid destination label name in label_replace(): {shown}"
            )));
        }
        let mut m = self.vector_arg(args[0])?;
        for s in &mut m {
            let src_val = s.metric.get(&src).unwrap_or("").to_string();
            if let Some(caps) = re.captures(&src_val) {
                let mut res = String::new();
                caps.expand(&repl, &mut res);
                let mut b = s.metric.builder();
                b.set(dst.clone(), res);
                s.metric = b.build();
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
            }
        }
        check_unique(&m)?;
        Ok(Ev::Vector(m))
    }

    fn label_join(&mut self, c: &Call, args: &[&Expr]) -> Result<Ev, QueryError> {
        let dst = self.string_arg(c, 1)?;
        let sep = self.string_arg(c, 2)?;
        let mut srcs = Vec::new();
        for i in 3..args.len() {
            srcs.push(self.string_arg(c, i)?);
        }
        if self.check_label_name(&dst).is_err() {
            let shown = self.invalid_utf8.get(&dst).cloned().unwrap_or_else(|| dst.clone());
            return Err(QueryError::exec(format!(
                "invalid destination label name in label_join(): {shown}"
            )));
        }
        let mut m = self.vector_arg(args[0])?;
        for s in &mut m {
            let joined: Vec<&str> = srcs.iter().map(|l| s.metric.get(l).unwrap_or("")).collect();
            let joined = joined.join(&sep);
            let mut b = s.metric.builder();
            b.set(dst.clone(), joined);
            s.metric = b.build();
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
        check_unique(&m)?;
        Ok(Ev::Vector(m))
    }
}

/// Errors when two series of a result share a label set at the same step.
fn check_unique(m: &Matrix) -> Result<(), QueryError> {
    let mut seen: std::collections::HashMap<&Labels, Vec<i64>> = std::collections::HashMap::new();
    for s in m {
        let ts: Vec<i64> = s
            .floats
            .iter()
            .map(|p| p.t)
            .chain(s.histograms.iter().map(|p| p.t))
            .collect();
        let e = seen.entry(&s.metric).or_default();
        if ts.iter().any(|t| e.contains(t)) {
            return Err(QueryError::exec("vector cannot contain metrics with the same labelset"));
        }
        e.extend(ts);
    }
    Ok(())
}

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

/// NaN-last ascending order.
fn sort_cmp(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Formats a float like Go's `%g`-ish `strconv.FormatFloat(f, 'f', -1)` for messages.
pub(crate) fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

/// Applies `f` to every float point, dropping histograms and marking the name for removal.
pub(crate) fn map_floats(m: Matrix, mut f: impl FnMut(i64, f64) -> Option<f64>) -> Matrix {
    m.into_iter()
        .filter_map(|mut s| {
            s.histograms.clear();
            s.floats = s
                .floats
                .into_iter()
                .filter_map(|p| f(p.t, p.v).map(|v| FPoint { t: p.t, v }))
                .collect();
            s.drop_name = true;
            if s.floats.is_empty() { None } else { Some(s) }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn window_function(
    name: &str,
    w: &super::Window<'_>,
    range: i64,
    ts: i64,
    scalars: &[Vec<f64>],
    step: usize,
    notes: &mut Notes,
) -> Option<StepValue> {
    let floats = w.floats;
    let f = |v: f64| Some(StepValue::F(v));
    let floats_only = |notes: &mut Notes| {
        if floats.is_empty() {
            return false;
        }
        if !w.hists.is_empty() {
            notes.histograms_ignored = true;
        }
        true
    };
    match name {
        "rate" => windows::extrapolated_rate(w, range, true, true, notes),
        "increase" => windows::extrapolated_rate(w, range, true, false, notes),
        "delta" => windows::extrapolated_rate(w, range, false, false, notes),
        "irate" => windows::instant_value(w, true, notes),
        "idelta" => windows::instant_value(w, false, notes),
        "deriv" => {
            if !floats_only(notes) || floats.len() < 2 {
                return None;
            }
            f(windows::linear_regression(floats, floats[0].t).0)
        }
        "predict_linear" => {
            if !floats_only(notes) || floats.len() < 2 {
                return None;
            }
            let (slope, intercept) = windows::linear_regression(floats, ts);
            f(slope * scalars[0][step] + intercept)
        }
        "changes" => windows::changes_or_resets(w, false).map(StepValue::F),
        "resets" => windows::changes_or_resets(w, true).map(StepValue::F),
        "count_over_time" => f((floats.len() + w.hists.len()) as f64),
        "present_over_time" => f(1.0),
        "last_over_time" => {
            let lf = floats.last();
            let lh = w.hists.last();
            match (lf, lh) {
                (Some(a), Some(b)) if b.t > a.t => Some(StepValue::H(b.h.clone())),
                (Some(a), _) => f(a.v),
                (None, Some(b)) => Some(StepValue::H(b.h.clone())),
                (None, None) => None,
            }
        }
        "first_over_time" => {
            let lf = floats.first();
            let lh = w.hists.first();
            match (lf, lh) {
                (Some(a), Some(b)) if b.t < a.t => Some(StepValue::H(b.h.clone())),
                (Some(a), _) => f(a.v),
                (None, Some(b)) => Some(StepValue::H(b.h.clone())),
                (None, None) => None,
            }
        }
        "ts_of_last_over_time" => {
            let t = floats.last().map(|p| p.t).max(w.hists.last().map(|p| p.t))?;
            f(t as f64 / 1000.0)
        }
        "ts_of_first_over_time" => {
            let a = floats.first().map(|p| p.t);
            let b = w.hists.first().map(|p| p.t);
            let t = match (a, b) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b)?,
            };
            f(t as f64 / 1000.0)
        }
        "ts_of_min_over_time" | "ts_of_max_over_time" => {
            if !floats_only(notes) {
                return None;
            }
            let max = name == "ts_of_max_over_time";
            let mut best = floats[0];
            for p in &floats[1..] {
                let better = if max {
                    p.v >= best.v || best.v.is_nan()
                } else {
                    p.v <= best.v || best.v.is_nan()
                };
                if better && !p.v.is_nan() {
                    best = *p;
                }
            }
            f(best.t as f64 / 1000.0)
        }
        "sum_over_time" | "avg_over_time" => {
            if !floats.is_empty() && !w.hists.is_empty() {
                notes.mixed_floats_histograms = true;
                return None;
            }
            if floats.is_empty() {
                return super::histograms::sum_or_avg_histograms(w.hists, name == "avg_over_time", notes)
                    .map(|h| StepValue::H(Arc::new(h)));
            }
            if name == "sum_over_time" {
                f(windows::sum_floats(floats))
            } else {
                f(windows::avg_floats(floats))
            }
        }
        "min_over_time" | "max_over_time" => {
            if !floats_only(notes) {
                return None;
            }
            let max = name == "max_over_time";
            let mut v = floats[0].v;
            for p in &floats[1..] {
                if (max && p.v > v) || (!max && p.v < v) || v.is_nan() {
                    v = p.v;
                }
            }
            f(v)
        }
        "stddev_over_time" | "stdvar_over_time" => {
            if !floats_only(notes) {
                return None;
            }
            let var = windows::stdvar_floats(floats);
            f(if name == "stddev_over_time" { var.sqrt() } else { var })
        }
        "quantile_over_time" => {
            if !floats_only(notes) {
                return None;
            }
            let mut vals: Vec<f64> = floats.iter().map(|p| p.v).collect();
            f(windows::quantile(scalars[0][step], &mut vals))
        }
        "mad_over_time" => {
            if !floats_only(notes) {
                return None;
            }
            let mut vals: Vec<f64> = floats.iter().map(|p| p.v).collect();
            if vals.iter().any(|v| v.is_nan()) {
                return f(f64::NAN);
            }
            let median = windows::quantile(0.5, &mut vals);
            let mut dev: Vec<f64> = vals.iter().map(|v| (v - median).abs()).collect();
            f(windows::quantile(0.5, &mut dev))
        }
        "double_exponential_smoothing" | "holt_winters" => {
            if !floats_only(notes) {
                return None;
            }
            windows::double_exponential_smoothing(floats, scalars[0][step], scalars[1][step]).map(StepValue::F)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(951782400), (2000, 2, 29));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a2", "a10"), std::cmp::Ordering::Less);
        assert_eq!(natural_cmp("b", "a10"), std::cmp::Ordering::Greater);
    }
}
