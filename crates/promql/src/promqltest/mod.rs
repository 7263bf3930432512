//! A runner for the upstream promqltest language (`load`, `clear`, `eval …`, `expect …`).

pub mod notation;

use std::path::Path;

use hypnos_model::{FloatHistogram, Labels, is_stale_nan};
use notation::{SeqValue, parse_duration, parse_float, parse_histogram, parse_series_desc, parse_values};

use crate::engine::{Engine, EngineOptions};
use crate::histogram_ops as hops;
use crate::storage::MemStorage;
use crate::value::Value;

/// One failing case.
#[derive(Clone, Debug)]
pub struct Failure {
    pub line: usize,
    pub message: String,
}

/// The outcome of one script.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failures: Vec<Failure>,
}

#[derive(Default)]
struct Expectations {
    fail: Option<Option<Match>>,
    warn: Vec<Option<Match>>,
    info: Vec<Option<Match>>,
    no_warn: bool,
    no_info: bool,
    ordered: bool,
    string: Option<String>,
    range_vector: Option<(i64, i64, i64)>,
}

enum Match {
    Exact(String),
    Regex(regex::Regex),
}

impl Match {
    fn matches(&self, s: &str) -> bool {
        match self {
            Match::Exact(m) => m == s,
            Match::Regex(r) => r.is_match(s),
        }
    }
}

struct ExpectedSeries {
    labels: Labels,
    values: Vec<(SeqValue, bool)>,
}

struct Eval {
    line: usize,
    query: String,
    start: i64,
    end: i64,
    step: i64,
    range: bool,
    expect: Expectations,
    series: Vec<ExpectedSeries>,
    scalar: Option<f64>,
}

/// Runs a script file.
pub fn run_file(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(run_script(&text))
}

/// Runs a script's text.
pub fn run_script(text: &str) -> Report {
    let mut report = Report::default();
    let engine = Engine::new(EngineOptions::default());
    let mut storage = MemStorage::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let body_start = i;
        while i < lines.len() {
            let l = lines[i].trim();
            if l.is_empty() || is_command(l) {
                break;
            }
            i += 1;
        }
        let body: Vec<(usize, &str)> = (body_start..i)
            .map(|k| (k + 1, lines[k].trim()))
            .filter(|(_, l)| !l.starts_with('#'))
            .collect();
        let word = line.split_whitespace().next().unwrap_or("");
        let result = match word {
            "clear" => {
                storage.clear();
                Ok(None)
            }
            "load" | "load_with_nhcb" => load(&mut storage, line, &body, word == "load_with_nhcb").map(|_| None),
            w if w.starts_with("eval") => parse_eval(line_no, line, &body).map(Some),
            _ => Err(format!("unknown command {line:?}")),
        };
        match result {
            Ok(None) => {}
            Ok(Some(ev)) => match run_eval(&engine, &storage, &ev) {
                Ok(()) => report.passed += 1,
                Err(message) => report.failures.push(Failure { line: ev.line, message }),
            },
            Err(message) => report.failures.push(Failure { line: line_no, message }),
        }
    }
    report
}

fn is_command(l: &str) -> bool {
    let w = l.split_whitespace().next().unwrap_or("");
    matches!(w, "load" | "load_with_nhcb" | "clear") || w.starts_with("eval")
}

fn load(storage: &mut MemStorage, line: &str, body: &[(usize, &str)], with_nhcb: bool) -> Result<(), String> {
    let interval = line.split_whitespace().nth(1).ok_or("load needs an interval")?;
    let interval = parse_duration(interval)?;
    let mut classic: Vec<(Labels, Vec<(SeqValue, bool)>)> = Vec::new();
    for (n, l) in body {
        let (labels, rest) = parse_series_desc(l).map_err(|e| format!("line {n}: {e}"))?;
        let values = parse_values(rest).map_err(|e| format!("line {n}: {e}"))?;
        if with_nhcb {
            classic.push((labels.clone(), values.clone()));
        }
        for (k, (v, _)) in values.into_iter().enumerate() {
            let t = k as i64 * interval;
            match v {
                SeqValue::Omitted => {}
                SeqValue::Float(f) => storage.add_float(&labels, t, f),
                SeqValue::Stale => storage.add_float(&labels, t, notation::stale_value()),
                SeqValue::Histogram(h) => storage.add_histogram(&labels, t, h),
            }
        }
    }
    if with_nhcb {
        convert_nhcb(storage, classic, interval);
    }
    Ok(())
}

/// `load_with_nhcb`: classic `_bucket`/`_count`/`_sum` series also become one native
/// histogram with custom buckets per label set.
fn convert_nhcb(storage: &mut MemStorage, classic: Vec<(Labels, Vec<(SeqValue, bool)>)>, interval: i64) {
    use std::collections::BTreeMap;
    type Key = Labels;
    #[derive(Default)]
    struct Group {
        buckets: BTreeMap<i64, Vec<(f64, f64)>>,
        count: BTreeMap<i64, f64>,
        sum: BTreeMap<i64, f64>,
    }
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    for (labels, values) in classic {
        let name = labels.metric_name().unwrap_or("").to_string();
        let (base, kind) = if let Some(b) = name.strip_suffix("_bucket") {
            (b, 0)
        } else if let Some(b) = name.strip_suffix("_count") {
            (b, 1)
        } else if let Some(b) = name.strip_suffix("_sum") {
            (b, 2)
        } else {
            continue;
        };
        let mut b = labels.builder();
        b.set("__name__", base);
        b.del("le");
        let key = b.build();
        let le = labels.get("le").and_then(|v| parse_float(v).ok());
        let g = groups.entry(key).or_default();
        for (k, (v, _)) in values.into_iter().enumerate() {
            let SeqValue::Float(f) = v else { continue };
            let t = k as i64 * interval;
            match kind {
                0 => {
                    if let Some(le) = le {
                        g.buckets.entry(t).or_default().push((le, f));
                    }
                }
                1 => {
                    g.count.insert(t, f);
                }
                _ => {
                    g.sum.insert(t, f);
                }
            }
        }
    }
    for (key, g) in groups {
        for (t, mut bs) in g.buckets {
            bs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            let mut h = FloatHistogram {
                schema: hypnos_model::histogram::CUSTOM_BUCKETS_SCHEMA,
                ..Default::default()
            };
            let mut prev = 0.0;
            let mut counts = Vec::new();
            for (le, c) in &bs {
                if le.is_finite() {
                    h.custom_values.push(*le);
                }
                counts.push(c - prev);
                prev = *c;
            }
            h.count = g.count.get(&t).copied().unwrap_or(prev);
            h.sum = g.sum.get(&t).copied().unwrap_or(0.0);
            h.positive_spans = vec![hypnos_model::Span::new(0, counts.len() as u32)];
            h.positive_buckets = counts;
            storage.add_histogram(&key, t, hops::compact(h));
        }
    }
}

fn parse_eval(line_no: usize, line: &str, body: &[(usize, &str)]) -> Result<Eval, String> {
    let (cmd, rest) = line.split_once(char::is_whitespace).ok_or("incomplete eval command")?;
    let rest = rest.trim_start();
    let mut expect = Expectations::default();
    match cmd {
        "eval" => {}
        "eval_fail" => expect.fail = Some(None),
        "eval_warn" => expect.warn.push(None),
        "eval_info" => expect.info.push(None),
        "eval_ordered" => expect.ordered = true,
        other => return Err(format!("unknown command {other:?}")),
    }
    let (start, end, step, range, query) = if let Some(r) = rest.strip_prefix("instant") {
        let r = r
            .trim_start()
            .strip_prefix("at")
            .ok_or("expected `at` after `eval instant`")?
            .trim_start();
        let (t, q) = r.split_once(char::is_whitespace).ok_or("missing query")?;
        let t = parse_duration(t)?;
        (t, t, 0, false, q.trim().to_string())
    } else if let Some(r) = rest.strip_prefix("range") {
        let r = r
            .trim_start()
            .strip_prefix("from")
            .ok_or("expected `from`")?
            .trim_start();
        let (s, r) = r.split_once(char::is_whitespace).ok_or("missing range end")?;
        let r = r.trim_start().strip_prefix("to").ok_or("expected `to`")?.trim_start();
        let (e, r) = r.split_once(char::is_whitespace).ok_or("missing step")?;
        let r = r
            .trim_start()
            .strip_prefix("step")
            .ok_or("expected `step`")?
            .trim_start();
        let (st, q) = r.split_once(char::is_whitespace).ok_or("missing query")?;
        (
            parse_duration(s)?,
            parse_duration(e)?,
            parse_duration(st)?,
            true,
            q.trim().to_string(),
        )
    } else {
        return Err(format!("invalid eval command {line:?}"));
    };
    let mut ev = Eval {
        line: line_no,
        query,
        start,
        end,
        step,
        range,
        expect,
        series: Vec::new(),
        scalar: None,
    };
    for &(n, l) in body {
        if let Some(r) = l.strip_prefix("expected_fail_message") {
            ev.expect.fail = Some(Some(Match::Exact(r.trim().to_string())));
            continue;
        }
        if let Some(r) = l.strip_prefix("expected_fail_regexp") {
            let re = regex::Regex::new(r.trim()).map_err(|e| format!("line {n}: {e}"))?;
            ev.expect.fail = Some(Some(Match::Regex(re)));
            continue;
        }
        if let Some(r) = l.strip_prefix("expect ") {
            parse_expect(&mut ev.expect, r.trim()).map_err(|e| format!("line {n}: {e}"))?;
            continue;
        }
        if let Ok(v) = parse_float(l) {
            ev.scalar = Some(v);
            continue;
        }
        let (labels, rest) = parse_series_desc(l).map_err(|e| format!("line {n}: {e}"))?;
        let values = parse_values(rest).map_err(|e| format!("line {n}: {e}"))?;
        if !ev.range && ev.expect.range_vector.is_none() && values.len() > 1 {
            return Err(format!(
                "line {n}: expecting multiple values in instant evaluation not allowed"
            ));
        }
        ev.series.push(ExpectedSeries { labels, values });
    }
    Ok(ev)
}

fn parse_expect(e: &mut Expectations, r: &str) -> Result<(), String> {
    let (kind, rest) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
    let rest = rest.trim();
    let matcher = |rest: &str| -> Result<Option<Match>, String> {
        if rest.is_empty() {
            return Ok(None);
        }
        if let Some(m) = rest.strip_prefix("msg:") {
            return Ok(Some(Match::Exact(m.trim().to_string())));
        }
        if let Some(m) = rest.strip_prefix("regex:") {
            let m = m.trim();
            let m = m.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(m);
            return regex::Regex::new(m)
                .map(|r| Some(Match::Regex(r)))
                .map_err(|e| e.to_string());
        }
        Err(format!("invalid expect line {rest:?}"))
    };
    match kind {
        "fail" => {
            let m = matcher(rest)?.map(|m| match m {
                Match::Exact(s) if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') => {
                    Match::Exact(s[1..s.len() - 1].to_string())
                }
                other => other,
            });
            e.fail = Some(m);
        }
        "warn" => e.warn.push(matcher(rest)?),
        "info" => e.info.push(matcher(rest)?),
        "no_warn" => e.no_warn = true,
        "no_info" => e.no_info = true,
        "ordered" => e.ordered = true,
        "string" => {
            let (s, _) = notation::parse_quoted(rest)?;
            e.string = Some(s);
        }
        "range" => {
            let r = rest.strip_prefix("vector").ok_or("expected `range vector`")?.trim();
            let r = r.strip_prefix("from").ok_or("expected `from`")?.trim();
            let (s, r) = r.split_once(" to ").ok_or("expected `to`")?;
            let (en, st) = r.split_once(" step ").ok_or("expected `step`")?;
            e.range_vector = Some((parse_duration(s)?, parse_duration(en)?, parse_duration(st)?));
        }
        other => return Err(format!("unknown expectation {other:?}")),
    }
    Ok(())
}

/// Prometheus's test comparison: relative tolerance 1e-6, NaN equals NaN.
pub fn almost_equal(a: f64, b: f64) -> bool {
    const EPS: f64 = 1e-6;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < EPS * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPS
}

fn histograms_match(exp: &FloatHistogram, check_hint: bool, got: &FloatHistogram) -> bool {
    let a = hops::compact(exp.clone());
    let b = hops::compact(got.clone());
    if check_hint && a.counter_reset_hint != b.counter_reset_hint {
        return false;
    }
    let buckets_eq = |x: &[f64], y: &[f64]| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| almost_equal(*p, *q));
    a.schema == b.schema
        && almost_equal(a.zero_threshold, b.zero_threshold)
        && almost_equal(a.zero_count, b.zero_count)
        && almost_equal(a.count, b.count)
        && almost_equal(a.sum, b.sum)
        && a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && buckets_eq(&a.positive_buckets, &b.positive_buckets)
        && buckets_eq(&a.negative_buckets, &b.negative_buckets)
        && a.custom_values == b.custom_values
}

fn describe(v: &SeqValue) -> String {
    match v {
        SeqValue::Float(f) => f.to_string(),
        SeqValue::Histogram(h) => crate::histogram_fmt::to_string(h),
        SeqValue::Omitted => "_".into(),
        SeqValue::Stale => "stale".into(),
    }
}

fn value_matches(exp: &(SeqValue, bool), f: Option<f64>, h: Option<&FloatHistogram>) -> bool {
    match (&exp.0, f, h) {
        (SeqValue::Float(e), Some(g), None) => almost_equal(*e, g),
        (SeqValue::Histogram(e), _, Some(g)) => histograms_match(e, exp.1, g),
        (SeqValue::Stale, Some(g), None) => is_stale_nan(g),
        _ => false,
    }
}

fn run_eval(engine: &Engine, storage: &MemStorage, ev: &Eval) -> Result<(), String> {
    let fut = async {
        if ev.range {
            engine
                .range_query(storage, &ev.query, ev.start, ev.end, ev.step, None)
                .await
        } else {
            engine.instant_query(storage, &ev.query, ev.start, None).await
        }
    };
    let res = futures::executor::block_on(fut);
    let res = match (res, &ev.expect.fail) {
        (Err(e), Some(m)) => {
            let msg = e.to_string();
            return match m {
                Some(m) if !m.matches(&msg) => Err(format!(
                    "expected error matching the expectation for {:?}, got {msg:?}",
                    ev.query
                )),
                _ => Ok(()),
            };
        }
        (Err(e), None) => return Err(format!("error evaluating query {:?}: {e}", ev.query)),
        (Ok(_), Some(_)) => return Err(format!("expected error evaluating query {:?} but got none", ev.query)),
        (Ok(r), None) => r,
    };
    check_annotations(ev, &res.annotations)?;
    if let Some(s) = &ev.expect.string {
        return match &res.value {
            Value::String { s: got, .. } if got == s => Ok(()),
            other => Err(format!("expected string {s:?} for {:?}, got {other:?}", ev.query)),
        };
    }
    compare(ev, &res.value)?;
    // Like upstream, an instant query must give the same result as the middle step of a
    // range query around it (ordered results excepted: range results are sorted by labels).
    if !ev.range
        && !ev.expect.ordered
        && matches!(res.value, Value::Vector(_) | Value::Scalar { .. })
        && !uses_query_range_functions(&ev.query)
    {
        let t = ev.start;
        let range =
            futures::executor::block_on(engine.range_query(storage, &ev.query, t - 60_000, t + 60_000, 60_000, None))
                .map_err(|e| format!("error evaluating query {:?} in range mode: {e}", ev.query))?;
        let Value::Matrix(m) = range.value else {
            return Err(format!("range mode of {:?} did not return a matrix", ev.query));
        };
        let mut v = Vec::new();
        for s in m {
            if let Some(p) = s.floats.iter().find(|p| p.t == t) {
                v.push(crate::value::Sample {
                    metric: s.metric.clone(),
                    t,
                    f: p.v,
                    h: None,
                    drop_name: false,
                });
            }
            if let Some(p) = s.histograms.iter().find(|p| p.t == t) {
                v.push(crate::value::Sample {
                    metric: s.metric.clone(),
                    t,
                    f: 0.0,
                    h: Some(p.h.clone()),
                    drop_name: false,
                });
            }
        }
        let as_instant = match res.value {
            Value::Scalar { .. } => Value::Scalar {
                t,
                v: v.first().map_or(f64::NAN, |s| s.f),
            },
            _ => Value::Vector(v),
        };
        compare(ev, &as_instant).map_err(|e| format!("in range mode: {e}"))?;
    }
    Ok(())
}

/// `step()`, `range()`, `start()` and `end()` as functions depend on the query's range, so
/// their instant and range results legitimately differ.
fn uses_query_range_functions(query: &str) -> bool {
    fn walk(e: &crate::parser::Expr) -> bool {
        use crate::parser::Expr;
        match e {
            Expr::Call(c) => {
                matches!(c.func.name, "step" | "range" | "start" | "end") || c.args.args.iter().any(|a| walk(a))
            }
            Expr::Binary(b) => walk(&b.lhs) || walk(&b.rhs),
            Expr::Paren(p) => walk(&p.expr),
            Expr::Unary(u) => walk(&u.expr),
            Expr::Subquery(s) => walk(&s.expr),
            Expr::Aggregate(a) => walk(&a.expr) || a.param.as_deref().is_some_and(walk),
            _ => false,
        }
    }
    crate::parser::parse_query(query).is_ok_and(|p| walk(&p.expr))
}

/// Compares a query value with the expected result of an eval command.
fn compare(ev: &Eval, value: &Value) -> Result<(), String> {
    match value {
        Value::Scalar { v, .. } => {
            let Some(e) = ev.scalar else {
                return Err(format!(
                    "expected vector or matrix result for {:?}, got scalar {v}",
                    ev.query
                ));
            };
            if !almost_equal(e, *v) {
                return Err(format!("expected scalar {e} but got {v} for {:?}", ev.query));
            }
            Ok(())
        }
        Value::String { s, .. } => Err(format!("unexpected string result {s:?} for {:?}", ev.query)),
        Value::Vector(v) => {
            if ev.scalar.is_some() {
                return Err(format!("expected scalar result for {:?}, got vector", ev.query));
            }
            if v.len() != ev.series.len() {
                return Err(format!(
                    "expected {} series but got {} for {:?}: got {}",
                    ev.series.len(),
                    v.len(),
                    ev.query,
                    v.iter().map(|s| s.metric.to_string()).collect::<Vec<_>>().join(", ")
                ));
            }
            for (k, s) in v.iter().enumerate() {
                let Some(pos) = ev.series.iter().position(|e| e.labels == s.metric) else {
                    return Err(format!("unexpected series {} in result of {:?}", s.metric, ev.query));
                };
                if ev.expect.ordered && pos != k {
                    return Err(format!(
                        "expected series {} at position {pos}, got it at {k} for {:?}",
                        s.metric, ev.query
                    ));
                }
                let exp = &ev.series[pos].values[0];
                if !value_matches(exp, Some(s.f).filter(|_| s.h.is_none()), s.h.as_deref()) {
                    let got = match &s.h {
                        Some(h) => crate::histogram_fmt::to_string(h),
                        None => s.f.to_string(),
                    };
                    return Err(format!(
                        "expected {} for {} but got {got} for {:?}",
                        describe(&exp.0),
                        s.metric,
                        ev.query
                    ));
                }
            }
            Ok(())
        }
        Value::Matrix(m) => {
            let (start, step) = match (ev.range, ev.expect.range_vector) {
                (true, _) => (ev.start, ev.step),
                (false, Some((s, _, st))) => (s, st),
                (false, None) => {
                    if m.is_empty() && ev.series.is_empty() {
                        return Ok(());
                    }
                    return Err(format!(
                        "unexpected range vector result for instant query {:?}",
                        ev.query
                    ));
                }
            };
            let expected: Vec<&ExpectedSeries> = ev
                .series
                .iter()
                .filter(|e| e.values.iter().any(|v| !matches!(v.0, SeqValue::Omitted)))
                .collect();
            if m.len() != expected.len() {
                return Err(format!(
                    "expected {} series but got {} for {:?}: got {}",
                    expected.len(),
                    m.len(),
                    ev.query,
                    m.iter().map(|s| s.metric.to_string()).collect::<Vec<_>>().join(", ")
                ));
            }
            for s in m {
                let Some(e) = expected.iter().find(|e| e.labels == s.metric) else {
                    return Err(format!("unexpected series {} in result of {:?}", s.metric, ev.query));
                };
                let mut points: Vec<(i64, Option<f64>, Option<&FloatHistogram>)> =
                    s.floats.iter().map(|p| (p.t, Some(p.v), None)).collect();
                points.extend(s.histograms.iter().map(|p| (p.t, None, Some(&*p.h))));
                points.sort_by_key(|p| p.0);
                let exp: Vec<(i64, &(SeqValue, bool))> = e
                    .values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !matches!(v.0, SeqValue::Omitted))
                    .map(|(k, v)| (start + k as i64 * step, v))
                    .collect();
                if exp.len() != points.len() {
                    return Err(format!(
                        "expected {} points for {} but got {} ({}) for {:?}",
                        exp.len(),
                        s.metric,
                        points.len(),
                        points
                            .iter()
                            .map(|p| format!("{}@{}", p.1.map_or("H".into(), |v| v.to_string()), p.0))
                            .collect::<Vec<_>>()
                            .join(" "),
                        ev.query
                    ));
                }
                for ((t, v), (gt, gf, gh)) in exp.iter().zip(&points) {
                    if t != gt || !value_matches(v, *gf, *gh) {
                        let got = match gh {
                            Some(h) => crate::histogram_fmt::to_string(h),
                            None => gf.map_or(String::new(), |f| f.to_string()),
                        };
                        return Err(format!(
                            "expected {} @ {t} for {} but got {got} @ {gt} for {:?}",
                            describe(&v.0),
                            s.metric,
                            ev.query
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

fn check_annotations(ev: &Eval, a: &crate::annotations::Annotations) -> Result<(), String> {
    let warns: Vec<String> = a.warnings().map(|x| x.to_string()).collect();
    let infos: Vec<String> = a.infos().map(|x| x.to_string()).collect();
    for (kind, expects, got, none) in [
        ("warn", &ev.expect.warn, &warns, ev.expect.no_warn),
        ("info", &ev.expect.info, &infos, ev.expect.no_info),
    ] {
        if none && !got.is_empty() {
            return Err(format!("unexpected {kind} annotations for {:?}: {got:?}", ev.query));
        }
        if expects.is_empty() {
            continue;
        }
        if got.is_empty() {
            return Err(format!("expected {kind} annotations for {:?} but got none", ev.query));
        }
        for e in expects.iter().flatten() {
            if !got.iter().any(|g| e.matches(g)) {
                return Err(format!(
                    "no {kind} annotation of {:?} matches the expectation; got {got:?}",
                    ev.query
                ));
            }
        }
        if expects.iter().all(Option::is_some) {
            for g in got {
                if !expects.iter().flatten().any(|e| e.matches(g)) {
                    return Err(format!("unexpected {kind} annotation {g:?} for {:?}", ev.query));
                }
            }
        }
    }
    Ok(())
}

/// Runs files and prints failures as `FILE:LINE: message`; returns (passed, failed).
pub fn run_files(paths: &[impl AsRef<Path>], out: &mut dyn std::io::Write) -> std::io::Result<(usize, usize)> {
    let (mut passed, mut failed) = (0, 0);
    for p in paths {
        let p = p.as_ref();
        match run_file(p) {
            Ok(r) => {
                passed += r.passed;
                failed += r.failures.len();
                for f in r.failures {
                    writeln!(out, "{}:{}: {}", p.display(), f.line, f.message)?;
                }
            }
            Err(e) => {
                failed += 1;
                writeln!(out, "{e}")?;
            }
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok((passed, failed))
}

#[allow(dead_code)]
fn unused() -> Result<(FloatHistogram, bool), String> {
    parse_histogram("{{}}")
}
