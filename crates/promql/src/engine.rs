//! The query engine: parses, fetches every selector's series up front, then evaluates
//! synchronously over the fetched data.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hypnos_model::{METRIC_NAME, MatchOp, Matcher, Timestamp};

use crate::annotations::Annotations;
use crate::error::QueryError;
use crate::eval::{Ev, Evaluator, Guard, Precomputed, StreamedAggregate, Unsupported, materialize_name};
use crate::parser::{self, Expr, ParseError, ParserMatchOp, VectorSelector, at_ms, duration_ms, offset_ms};
use crate::storage::{Queryable, SelectHints, SeriesSet};
use crate::value::{Sample, Series, Value};

/// Engine settings; defaults are Prometheus's.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub lookback_delta: Duration,
    pub max_samples: usize,
    pub timeout: Duration,
    /// Step of subqueries without an explicit step (Prometheus: the global evaluation interval).
    pub no_step_subquery_interval: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            no_step_subquery_interval: Duration::from_secs(60),
        }
    }
}

/// A flag a caller sets to stop a running query.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A query's value with its warnings and infos.
#[derive(Clone, Debug)]
pub struct QueryResult {
    pub value: Value,
    pub annotations: Annotations,
}

#[derive(Clone, Debug)]
pub struct Engine {
    pub options: EngineOptions,
    /// Fold `sum`, `count`, `min`, `max`, `group`, `avg`, `stddev` and `stdvar` over a selector or a per-series
    /// range function as storage streams the series (see [`Engine::stream_aggregations`]).
    stream_aggregations: bool,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(EngineOptions::default())
    }
}

/// One selector to fetch, keyed by the address of its AST node.
struct Fetch<'e> {
    key: usize,
    vs: &'e VectorSelector,
    matchers: Vec<Vec<Matcher>>,
    hints: SelectHints,
    /// The range-function call this selector is the range argument of, when that call can be
    /// evaluated series by series as storage streams them (see [`per_series_call`]).
    per_series: Option<PerSeriesCall<'e>>,
    /// The aggregation this selector (or the per-series call above) is the argument of, when
    /// it can be folded series by series (see [`StreamedAggregate`]).
    aggregate: Option<&'e parser::AggregateExpr>,
}

/// A call such as `rate(x[5m])` evaluated on each selected series as it arrives.
#[derive(Clone, Copy)]
struct PerSeriesCall<'e> {
    /// The `Expr::Call` node.
    expr: &'e Expr,
    /// Whether the call sits inside `histogram_count/sum/avg` (their stats decoding applies).
    stats: bool,
}

/// Where `collect_selectors` is in the AST: what encloses the current node.
#[derive(Clone, Copy)]
struct Context<'e> {
    /// (offset sum, range sum, @) of enclosing subqueries.
    subq: (i64, i64, Option<i64>),
    /// Name of the nearest enclosing function.
    func: Option<&'e str>,
    /// Set on the range argument of a call that may be evaluated per series.
    per_series: Option<&'e Expr>,
    /// Set on the argument of an aggregation that may be folded series by series, and
    /// carried through parentheses and a per-series call to its range argument.
    aggregate: Option<&'e parser::AggregateExpr>,
    stats: bool,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Self {
        Engine {
            options,
            stream_aggregations: true,
        }
    }

    /// Whether aggregations of a plain selector or of a range function evaluated per series
    /// fold each series into per-group accumulators as storage streams it (memory: groups ×
    /// steps) instead of holding every series' values first (series × steps). On by default;
    /// the results are the same bit for bit, which tests check by switching it off.
    pub fn stream_aggregations(mut self, on: bool) -> Self {
        self.stream_aggregations = on;
        self
    }

    /// Evaluates `query` at time `t` (ms).
    pub async fn instant_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        t: Timestamp,
        cancel: Option<&CancelToken>,
    ) -> Result<QueryResult, QueryError> {
        self.run(storage, query, t, t, 0, cancel).await
    }

    /// Evaluates `query` at every step from `start` to `end` inclusive (ms).
    pub async fn range_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: i64,
        cancel: Option<&CancelToken>,
    ) -> Result<QueryResult, QueryError> {
        if step <= 0 {
            return Err(QueryError::Parse(ParseError {
                message: "zero or negative query resolution step widths are not accepted".into(),
                position: None,
            }));
        }
        if end < start {
            return Err(QueryError::Parse(ParseError {
                message: "end timestamp must not be before start time".into(),
                position: None,
            }));
        }
        self.run(storage, query, start, end, step, cancel).await
    }

    async fn run(
        &self,
        storage: &dyn Queryable,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: i64,
        cancel: Option<&CancelToken>,
    ) -> Result<QueryResult, QueryError> {
        let began = Instant::now();
        let parsed = parser::parse_query(query)?;
        let expr = &*parsed.expr;
        let range_query = step > 0;
        if range_query {
            let t = expr.value_type();
            if t != parser::ValueType::Vector && t != parser::ValueType::Scalar {
                return Err(QueryError::Parse(ParseError {
                    message: format!(
                        "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                        type_name(t)
                    ),
                    position: None,
                }));
            }
        }
        // Every step holds at least one value; refuse before allocating per-step buffers.
        let steps = if step > 0 { (end - start) / step + 1 } else { 1 };
        if usize::try_from(steps).unwrap_or(usize::MAX) > self.options.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        let guard = Guard {
            max_samples: self.options.max_samples,
            deadline: Some(began + self.options.timeout),
            cancel: cancel.map(|c| c.0.clone()),
        };
        let lookback = duration_ms(&self.options.lookback_delta);
        let mut fetches = Vec::new();
        let ctx = Context {
            subq: (0, 0, None),
            func: None,
            per_series: None,
            aggregate: None,
            stats: false,
        };
        collect_selectors(expr, start, end, step, lookback, ctx, &mut fetches)?;
        let mut data: HashMap<usize, SeriesSet> = HashMap::new();
        let mut precomputed = HashMap::new();
        let subquery_interval = duration_ms(&self.options.no_step_subquery_interval);
        let setup = EvalSetup {
            parsed: &parsed,
            query,
            start,
            end,
            step,
            lookback,
            subquery_interval,
            guard: &guard,
        };
        for f in fetches {
            if let (Some(agg), [matchers], true) = (f.aggregate, f.matchers.as_slice(), self.stream_aggregations) {
                match stream_aggregate(storage, &setup, &f, agg, matchers).await? {
                    Streamed::Done(done) => {
                        precomputed.insert(agg as *const parser::AggregateExpr as usize, done);
                        continue;
                    }
                    // The evaluator aggregates no series itself, so that errors and warnings
                    // about the arguments still appear.
                    Streamed::NoSeries => continue,
                    Streamed::Unsupported => {}
                }
            }
            if let (Some(call), [matchers]) = (f.per_series, f.matchers.as_slice()) {
                let mut stream = storage.select_stream(&f.hints, matchers);
                let mut done = Precomputed::default();
                let mut seen = 0usize;
                while let Some(series) = stream.next().await {
                    let series = series?;
                    check_guard(&guard)?;
                    seen += 1;
                    let one = HashMap::from([(f.key, vec![series])]);
                    let mut ev = setup.evaluator(&one);
                    ev.stats_decoding = call.stats;
                    let Ev::Vector(m) = ev.eval(call.expr)? else {
                        return Err(QueryError::exec("range function without an instant vector result"));
                    };
                    done.samples = done.samples.saturating_add(ev.current_samples);
                    if done.samples > guard.max_samples {
                        return Err(QueryError::TooManySamples("query execution"));
                    }
                    done.annotations.merge(std::mem::take(&mut ev.annotations));
                    done.matrix.extend(m);
                }
                // With no series the evaluator runs the call itself, so that errors and
                // warnings about its arguments still appear.
                if seen > 0
                    && let Expr::Call(c) = call.expr
                {
                    precomputed.insert(c as *const parser::Call as usize, done);
                }
                continue;
            }
            let mut set: SeriesSet = Vec::new();
            for alt in &f.matchers {
                let fut = storage.select(&f.hints, alt);
                let res = match guard.deadline {
                    Some(d) => with_deadline(fut, d, cancel).await?,
                    None => fut.await,
                };
                let mut s = res?;
                set.append(&mut s);
            }
            if f.matchers.len() > 1 {
                set.sort_by(|a, b| a.labels.cmp(&b.labels));
                set.dedup_by(|a, b| a.labels == b.labels);
            }
            data.insert(f.key, set);
        }
        let mut ev = setup.evaluator(&data);
        ev.precomputed = precomputed;
        let res = ev.eval(expr)?;
        let annotations = std::mem::take(&mut ev.annotations);
        let value = finish(res, start, step, range_query)?;
        Ok(QueryResult { value, annotations })
    }
}

fn type_name(t: parser::ValueType) -> &'static str {
    match t {
        parser::ValueType::Vector => "instant vector",
        parser::ValueType::Scalar => "scalar",
        parser::ValueType::Matrix => "range vector",
        parser::ValueType::String => "string",
    }
}

/// Awaits a storage future, giving up at the deadline or on cancellation. The check is
/// cooperative: a storage future that never yields is not interrupted.
async fn with_deadline<F: std::future::Future>(
    fut: F,
    deadline: Instant,
    cancel: Option<&CancelToken>,
) -> Result<F::Output, QueryError> {
    let out = fut.await;
    if cancel.is_some_and(CancelToken::is_canceled) {
        return Err(QueryError::Canceled("query execution"));
    }
    if Instant::now() >= deadline {
        return Err(QueryError::Timeout("query execution"));
    }
    Ok(out)
}

/// What every evaluator of one query shares: the whole query's and the per-series ones
/// differ only in their data.
struct EvalSetup<'q> {
    parsed: &'q parser::Parsed,
    query: &'q str,
    start: Timestamp,
    end: Timestamp,
    step: i64,
    lookback: i64,
    subquery_interval: i64,
    guard: &'q Guard,
}

impl EvalSetup<'_> {
    fn evaluator<'a>(&'a self, data: &'a HashMap<usize, SeriesSet>) -> Evaluator<'a> {
        let mut ev = Evaluator::new(
            data,
            self.query,
            self.start,
            self.end,
            self.step.max(1),
            self.lookback,
            self.subquery_interval,
            self.guard,
        );
        ev.trims = &self.parsed.trims;
        ev.invalid_utf8 = &self.parsed.invalid_utf8;
        ev
    }
}

/// What [`stream_aggregate`] did.
enum Streamed {
    Done(Precomputed),
    /// Storage selected no series: nothing to fetch either.
    NoSeries,
    /// The series hold what the fold does not handle: fetch and evaluate as usual.
    Unsupported,
}

/// Folds an aggregation over its argument's series as storage streams them: the argument is
/// a plain instant selector (read at each step) or a call evaluated per series
/// ([`per_series_call`]). Holds one series and the per-group accumulators at a time.
async fn stream_aggregate(
    storage: &dyn Queryable,
    setup: &EvalSetup<'_>,
    f: &Fetch<'_>,
    agg: &parser::AggregateExpr,
    matchers: &[Matcher],
) -> Result<Streamed, QueryError> {
    let no_data = HashMap::new();
    let ev = setup.evaluator(&no_data);
    let Some(mut fold) = StreamedAggregate::new(agg, ev.num_steps(), setup.guard.max_samples) else {
        return Ok(Streamed::Unsupported);
    };
    let timing = ev.selector_timing(f.vs);
    let mut stream = storage.select_stream(&f.hints, matchers);
    let mut seen = false;
    while let Some(series) = stream.next().await {
        let series = series?;
        check_guard(setup.guard)?;
        seen = true;
        let folded = match f.per_series {
            None => fold.add_selector_series(&ev, timing, &series)?,
            Some(call) => {
                let one = HashMap::from([(f.key, vec![series])]);
                let mut one_ev = setup.evaluator(&one);
                one_ev.stats_decoding = call.stats;
                let Ev::Vector(m) = one_ev.eval(call.expr)? else {
                    return Err(QueryError::exec("range function without an instant vector result"));
                };
                fold.add_samples(one_ev.current_samples)?;
                fold.annotations.merge(std::mem::take(&mut one_ev.annotations));
                fold.add_series(&m, ev.start, ev.interval)
            }
        };
        if let Err(Unsupported) = folded {
            return Ok(Streamed::Unsupported);
        }
    }
    if !seen {
        return Ok(Streamed::NoSeries);
    }
    Ok(Streamed::Done(fold.finish(&ev)?))
}

/// The deadline and cancel checks between two streamed series.
fn check_guard(guard: &Guard) -> Result<(), QueryError> {
    if guard.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(QueryError::Canceled("query execution"));
    }
    if guard.deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(QueryError::Timeout("query execution"));
    }
    Ok(())
}

/// Turns the evaluator's output into the API value, dropping names marked for removal.
fn finish(res: Ev, start: Timestamp, step: i64, range_query: bool) -> Result<Value, QueryError> {
    Ok(match res {
        Ev::String(s) => Value::String { t: start, s },
        Ev::Scalar(v) if !range_query => Value::Scalar {
            t: start,
            v: v.first().copied().unwrap_or(f64::NAN),
        },
        Ev::Scalar(v) => Value::Matrix(vec![Series {
            metric: Default::default(),
            floats: v
                .iter()
                .enumerate()
                .map(|(i, &v)| crate::value::FPoint {
                    t: start + i as i64 * step,
                    v,
                })
                .collect(),
            ..Default::default()
        }]),
        Ev::Range(m) => {
            let m: Vec<Series> = m
                .into_iter()
                .map(|mut s| {
                    s.metric = materialize_name(&s.metric, s.drop_name);
                    s.drop_name = false;
                    s
                })
                .collect();
            Value::Matrix(m)
        }
        Ev::Vector(m) if !range_query => {
            let mut v = Vec::with_capacity(m.len());
            for s in m {
                let metric = materialize_name(&s.metric, s.drop_name);
                if let Some(p) = s.floats.first() {
                    v.push(Sample {
                        metric: metric.clone(),
                        t: p.t,
                        f: p.v,
                        h: None,
                        drop_name: false,
                    });
                }
                if let Some(p) = s.histograms.first() {
                    v.push(Sample {
                        metric,
                        t: p.t,
                        f: 0.0,
                        h: Some(p.h.clone()),
                        drop_name: false,
                    });
                }
            }
            let mut seen = std::collections::HashSet::new();
            if v.iter().any(|s| !seen.insert(&s.metric)) {
                return Err(QueryError::exec("vector cannot contain metrics with the same labelset"));
            }
            Value::Vector(v)
        }
        Ev::Vector(m) => {
            // Series that became equal when their names were dropped merge if they do not
            // overlap in time; overlapping ones are an error.
            let mut out: Vec<Series> = Vec::with_capacity(m.len());
            let mut index: HashMap<hypnos_model::Labels, usize> = HashMap::new();
            for mut s in m.into_iter().filter(|s| !s.is_empty()) {
                s.metric = materialize_name(&s.metric, s.drop_name);
                s.drop_name = false;
                match index.get(&s.metric) {
                    Some(&i) => {
                        let o = &mut out[i];
                        let before = o.floats.len() + o.histograms.len() + s.floats.len() + s.histograms.len();
                        o.floats.extend(s.floats);
                        o.histograms.extend(s.histograms);
                        let mut ts: Vec<i64> = o
                            .floats
                            .iter()
                            .map(|p| p.t)
                            .chain(o.histograms.iter().map(|p| p.t))
                            .collect();
                        ts.sort_unstable();
                        ts.dedup();
                        if ts.len() != before {
                            return Err(QueryError::exec("vector cannot contain metrics with the same labelset"));
                        }
                        o.floats.sort_by_key(|p| p.t);
                        o.histograms.sort_by_key(|p| p.t);
                    }
                    None => {
                        index.insert(s.metric.clone(), out.len());
                        out.push(s);
                    }
                }
            }
            let mut m = out;
            m.sort_by(|a, b| a.metric.cmp(&b.metric));
            Value::Matrix(m)
        }
    })
}

/// Converts a parser matcher into ours; the regex syntax is Go's RE2, which the `regex`
/// crate accepts except for a literal `{` not starting a repetition.
fn convert_matcher(m: &promql_parser::label::Matcher) -> Result<Matcher, QueryError> {
    let op = match m.op {
        ParserMatchOp::Equal => MatchOp::Equal,
        ParserMatchOp::NotEqual => MatchOp::NotEqual,
        ParserMatchOp::Re(_) => MatchOp::RegexMatch,
        ParserMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
    };
    Matcher::new(op, m.name.clone(), m.value.clone())
        .or_else(|_| Matcher::new(op, m.name.clone(), escape_braces(&m.value)))
        .map_err(|e| {
            QueryError::Parse(ParseError {
                message: e.to_string(),
                position: None,
            })
        })
}

fn escape_braces(re: &str) -> String {
    let mut out = String::with_capacity(re.len());
    let chars: Vec<char> = re.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '{' && !chars.get(i + 1).is_some_and(char::is_ascii_digit) && (i == 0 || chars[i - 1] != '\\') {
            out.push_str("\\{");
        } else {
            out.push(c);
        }
    }
    out
}

fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, QueryError> {
    let mut base = Vec::new();
    if let Some(n) = &vs.name {
        base.push(Matcher::equal(METRIC_NAME, n.clone()));
    }
    let mut out = Vec::new();
    if vs.matchers.or_matchers.is_empty() {
        let mut ms = base.clone();
        for m in &vs.matchers.matchers {
            ms.push(convert_matcher(m)?);
        }
        out.push(ms);
    } else {
        for alt in &vs.matchers.or_matchers {
            let mut ms = base.clone();
            for m in alt {
                ms.push(convert_matcher(m)?);
            }
            out.push(ms);
        }
    }
    Ok(out)
}

/// Whether a call can be evaluated on each series of its range argument alone: a range
/// function (not `absent_over_time`, which looks at the whole set) whose other arguments are
/// literals, so that evaluating it once per series computes exactly what one evaluation over
/// all series would. (The smoothing functions check their factors once per query: left out.)
fn per_series_call(c: &parser::Call) -> Option<usize> {
    let name = c.func.name;
    let eligible =
        crate::eval::range_function(name).is_some() && !matches!(name, "double_exponential_smoothing" | "holt_winters");
    if !eligible {
        return None;
    }
    let matrix_idx = usize::from(name == "quantile_over_time");
    let args = &c.args.args;
    let literal = |e: &Expr| match parser::unwrap_parens(e) {
        Expr::NumberLiteral(_) => true,
        Expr::Unary(u) => matches!(parser::unwrap_parens(&u.expr), Expr::NumberLiteral(_)),
        _ => false,
    };
    let matrix_ok = args
        .get(matrix_idx)
        .is_some_and(|a| matches!(parser::unwrap_parens(a), Expr::MatrixSelector(_)));
    let others_ok = args.iter().enumerate().all(|(i, a)| i == matrix_idx || literal(a));
    (matrix_ok && others_ok).then_some(matrix_idx)
}

/// Whether an aggregation can be folded series by series ([`StreamedAggregate`]).
fn streamable_aggregate(a: &parser::AggregateExpr) -> bool {
    let op = a.op.to_string();
    if matches!(op.as_str(), "topk" | "bottomk") {
        // With a literal k; StreamedAggregate::new checks its value.
        return a
            .param
            .as_deref()
            .is_some_and(|p| matches!(parser::unwrap_parens(p), Expr::NumberLiteral(_)));
    }
    a.param.is_none()
        && matches!(
            a.op.to_string().as_str(),
            "sum" | "count" | "min" | "max" | "group" | "avg" | "stddev" | "stdvar"
        )
}

/// Walks the AST and records every selector with the time range its evaluation reads
/// (Prometheus's populateSeries).
fn collect_selectors<'e>(
    e: &'e Expr,
    start: i64,
    end: i64,
    step: i64,
    lookback: i64,
    ctx: Context<'e>,
    out: &mut Vec<Fetch<'e>>,
) -> Result<(), QueryError> {
    let subq = ctx.subq;
    let selector = |vs: &'e VectorSelector, range: i64, out: &mut Vec<Fetch<'e>>| -> Result<(), QueryError> {
        let (mut s, mut en) = (start, end);
        if let Some(t) = subq.2 {
            (s, en) = (t, t);
        }
        let off = offset_ms(&vs.offset);
        let at = at_ms(&vs.at, start, end);
        // Where the selector is evaluated on the query's own step grid, tell storage so.
        let eval_first = (subq == (0, 0, None) && at.is_none()).then(|| start - off);
        if let Some(t) = at {
            // The selector's own timestamp overrides every enclosing time.
            (s, en) = (t, t);
        } else {
            s -= subq.0 + subq.1;
            en -= subq.0;
        }
        s -= if range == 0 { lookback } else { range };
        s -= off;
        en -= off;
        let per_series = match ctx.per_series {
            Some(expr) if range > 0 && eval_first.is_some() => Some(PerSeriesCall { expr, stats: ctx.stats }),
            _ => None,
        };
        // An aggregation folds a selector it reads directly at the query's steps, or the
        // per-series call whose range argument this is.
        let aggregate = match (ctx.aggregate, ctx.per_series, &per_series) {
            (Some(a), None, None) if range == 0 && eval_first.is_some() => Some(a),
            (Some(a), Some(_), Some(_)) => Some(a),
            _ => None,
        };
        out.push(Fetch {
            key: vs as *const VectorSelector as usize,
            vs,
            matchers: selector_matchers(vs)?,
            hints: SelectHints {
                start: s,
                end: en,
                step,
                range,
                func: ctx.func.map(str::to_string),
                eval_first,
                histogram_stats: ctx.stats,
                ..Default::default()
            },
            per_series,
            aggregate,
        });
        Ok(())
    };
    let inner = Context {
        per_series: None,
        aggregate: None,
        ..ctx
    };
    match e {
        Expr::VectorSelector(vs) => selector(vs, 0, out),
        Expr::MatrixSelector(ms) => selector(&ms.vs, duration_ms(&ms.range), out),
        Expr::Paren(p) => collect_selectors(&p.expr, start, end, step, lookback, ctx, out),
        Expr::Unary(u) => collect_selectors(&u.expr, start, end, step, lookback, inner, out),
        Expr::Binary(b) => {
            collect_selectors(&b.lhs, start, end, step, lookback, inner, out)?;
            collect_selectors(&b.rhs, start, end, step, lookback, inner, out)
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                collect_selectors(p, start, end, step, lookback, inner, out)?;
            }
            let arg_ctx = Context {
                aggregate: streamable_aggregate(a).then_some(a),
                ..inner
            };
            collect_selectors(&a.expr, start, end, step, lookback, arg_ctx, out)
        }
        Expr::Call(c) => {
            let name = c.func.name;
            // The evaluator's stats decoding: switched on inside these three, off inside the
            // other histogram functions, inherited elsewhere.
            let stats = match name {
                "histogram_count" | "histogram_sum" | "histogram_avg" => true,
                "histogram_quantile" | "histogram_fraction" | "histogram_stddev" | "histogram_stdvar" => false,
                _ => ctx.stats,
            };
            let matrix_idx = per_series_call(c);
            for (i, a) in c.args.args.iter().enumerate() {
                let arg_ctx = Context {
                    func: Some(name),
                    per_series: (matrix_idx == Some(i)).then_some(e),
                    aggregate: ctx.aggregate.filter(|_| matrix_idx == Some(i)),
                    stats,
                    ..ctx
                };
                collect_selectors(a, start, end, step, lookback, arg_ctx, out)?;
            }
            Ok(())
        }
        Expr::Subquery(sq) => {
            let at = at_ms(&sq.at, start, end).or(subq.2);
            let subq = (subq.0 + offset_ms(&sq.offset), subq.1 + duration_ms(&sq.range), at);
            let ctx = Context {
                subq,
                per_series: None,
                aggregate: None,
                stats: false,
                ..ctx
            };
            collect_selectors(&sq.expr, start, end, step, lookback, ctx, out)
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
    }
}

#[allow(dead_code)]
fn unused(_: Series) {}
