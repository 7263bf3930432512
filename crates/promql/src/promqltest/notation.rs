//! The value notation of promqltest and `promtool test rules`: durations, series
//! descriptions, expanding value sequences and `{{…}}` native histograms.

use hypnos_model::{FloatHistogram, Labels, LabelsBuilder, Span, stale_nan};

use crate::histogram_ops as hops;

/// A parsed element of a value sequence.
#[derive(Clone, Debug, PartialEq)]
pub enum SeqValue {
    Omitted,
    Float(f64),
    Histogram(FloatHistogram),
    /// Histogram with an explicitly specified counter reset hint (checked when comparing).
    Stale,
}

/// Parses a Prometheus duration (`1h30m`, `10s53ms`, `5m`) or plain seconds to ms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(v) = s.parse::<f64>() {
        return Ok((v * 1000.0).round() as i64);
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let mut total: i64 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?}")),
        };
        total = total
            .checked_add(n.checked_mul(mult).ok_or("duration overflows")?)
            .ok_or("duration overflows")?;
    }
    Ok(if neg { -total } else { total })
}

/// Parses a Go/PromQL quoted string starting at `s[0]` (`"`, `'` or backtick); returns the
/// value and the number of bytes consumed.
pub fn parse_quoted(s: &str) -> Result<(String, usize), String> {
    let mut chars = s.char_indices();
    let Some((_, q)) = chars.next() else {
        return Err("expected string".into());
    };
    if q != '"' && q != '\'' && q != '`' {
        return Err(format!("expected quoted string at {s:?}"));
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == q {
            return Ok((out, i + c.len_utf8()));
        }
        if c == '\\' && q != '`' {
            let Some((_, e)) = chars.next() else { break };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                'x' => {
                    let h: String = (0..2).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    let v = u8::from_str_radix(&h, 16).map_err(|_| "bad \\x escape")?;
                    out.push(char::from(v));
                }
                'u' | 'U' => {
                    let n = if e == 'u' { 4 } else { 8 };
                    let h: String = (0..n).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    let v = u32::from_str_radix(&h, 16).map_err(|_| "bad unicode escape")?;
                    out.push(char::from_u32(v).ok_or("bad unicode escape")?);
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        } else {
            out.push(c);
        }
    }
    Err(format!("unterminated string {s:?}"))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses `metric{a="b", …}` at the start of `s`; returns the labels and the rest.
pub fn parse_series_desc(s: &str) -> Result<(Labels, &str), String> {
    let s = s.trim_start();
    let name_len = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
    let mut b = LabelsBuilder::new();
    if name_len > 0 {
        b.set("__name__", &s[..name_len]);
    }
    let mut rest = &s[name_len..];
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let (name, r) = if rest.starts_with('"') || rest.starts_with('\'') || rest.starts_with('`') {
                let (n, used) = parse_quoted(rest)?;
                (n, &rest[used..])
            } else {
                let l = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
                if l == 0 {
                    return Err(format!("invalid series description {s:?}"));
                }
                (rest[..l].to_string(), &rest[l..])
            };
            let r = r.trim_start();
            match r.strip_prefix('=') {
                Some(r) => {
                    let r = r.trim_start();
                    let (v, used) = parse_quoted(r)?;
                    b.set(name, v);
                    rest = &r[used..];
                }
                // A lone quoted string is the metric name.
                None => {
                    b.set("__name__", name);
                    rest = r;
                }
            }
        }
    } else if name_len == 0 {
        return Err(format!("invalid series description {s:?}"));
    }
    Ok((b.build(), rest))
}

pub fn parse_float(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        b if b.starts_with("0x") => {
            i64::from_str_radix(&b[2..], 16).map_err(|_| format!("invalid number {s:?}"))? as f64
        }
        _ => body.parse::<f64>().map_err(|_| format!("invalid number {s:?}"))?,
    };
    Ok(if neg { -v } else { v })
}

/// Splits a value sequence into tokens, keeping `{{…}}` together.
fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' && chars.get(i + 1) == Some(&'{') {
            depth += 1;
            cur.push_str("{{");
            i += 2;
            continue;
        }
        if c == '}' && chars.get(i + 1) == Some(&'}') && depth > 0 {
            depth -= 1;
            cur.push_str("}}");
            i += 2;
            continue;
        }
        if c.is_whitespace() && depth == 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A parsed histogram with whether it named a counter reset hint.
pub fn parse_histogram(s: &str) -> Result<(FloatHistogram, bool), String> {
    let inner = s
        .trim()
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .ok_or(format!("invalid histogram {s:?}"))?;
    let mut h = FloatHistogram::default();
    let mut hint_given = false;
    let (mut buckets, mut offset, mut n_buckets, mut n_offset) = (Vec::new(), 0i32, Vec::new(), 0i32);
    let toks = tokenize_hist(inner);
    for (k, v) in toks {
        let list = || -> Result<Vec<f64>, String> {
            let l = v
                .trim()
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .ok_or(format!("expected list for {k}"))?;
            l.split_whitespace().map(parse_float).collect()
        };
        match k.as_str() {
            "schema" => h.schema = v.parse().map_err(|_| format!("bad schema {v}"))?,
            "sum" => h.sum = parse_float(&v)?,
            "count" => h.count = parse_float(&v)?,
            "z_bucket" => h.zero_count = parse_float(&v)?,
            "z_bucket_w" => h.zero_threshold = parse_float(&v)?,
            "buckets" => buckets = list()?,
            "offset" => offset = v.parse().map_err(|_| format!("bad offset {v}"))?,
            "n_buckets" => n_buckets = list()?,
            "n_offset" => n_offset = v.parse().map_err(|_| format!("bad offset {v}"))?,
            "custom_values" => h.custom_values = list()?,
            "counter_reset_hint" => {
                hint_given = true;
                h.counter_reset_hint = match v.as_str() {
                    "unknown" => hypnos_model::CounterResetHint::Unknown,
                    "reset" => hypnos_model::CounterResetHint::CounterReset,
                    "not_reset" => hypnos_model::CounterResetHint::NotCounterReset,
                    "gauge" => hypnos_model::CounterResetHint::Gauge,
                    other => return Err(format!("bad counter_reset_hint {other}")),
                }
            }
            other => return Err(format!("unknown histogram field {other:?}")),
        }
    }
    if !buckets.is_empty() {
        h.positive_spans = vec![Span::new(offset, buckets.len() as u32)];
        h.positive_buckets = buckets;
    }
    if !n_buckets.is_empty() {
        h.negative_spans = vec![Span::new(n_offset, n_buckets.len() as u32)];
        h.negative_buckets = n_buckets;
    }
    Ok((h, hint_given))
}

fn tokenize_hist(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(colon) = rest.find(':') else { break };
        let key = rest[..colon].trim().to_string();
        rest = rest[colon + 1..].trim_start();
        let end = if rest.starts_with('[') {
            rest.find(']').map_or(rest.len(), |i| i + 1)
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        out.push((key, rest[..end].to_string()));
        rest = rest[end..].trim_start();
    }
    out
}

/// Parses an expanding value sequence (`1 2+3x4 _ stale {{…}}x2`).
pub fn parse_values(s: &str) -> Result<Vec<(SeqValue, bool)>, String> {
    let mut out = Vec::new();
    for tok in tokenize(s) {
        expand(&tok, &mut out)?;
    }
    Ok(out)
}

fn split_times(tok: &str) -> (&str, Option<&str>) {
    // The repetition suffix `xN` follows the last `}}` or number.
    let search_from = tok.rfind("}}").map_or(0, |i| i + 2);
    match tok[search_from..].rfind('x') {
        Some(i)
            if !tok[search_from + i + 1..].is_empty()
                && tok[search_from + i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            let i = search_from + i;
            (&tok[..i], Some(&tok[i + 1..]))
        }
        _ => (tok, None),
    }
}

fn expand(tok: &str, out: &mut Vec<(SeqValue, bool)>) -> Result<(), String> {
    if tok == "_" {
        out.push((SeqValue::Omitted, false));
        return Ok(());
    }
    if tok == "stale" {
        out.push((SeqValue::Stale, false));
        return Ok(());
    }
    let (head, times) = split_times(tok);
    let times: Option<usize> = match times {
        Some(t) => Some(t.parse().map_err(|_| format!("invalid repetition in {tok:?}"))?),
        None => None,
    };
    if head == "_" {
        for _ in 0..times.unwrap_or(1) {
            out.push((SeqValue::Omitted, false));
        }
        return Ok(());
    }
    if head == "stale" {
        for _ in 0..times.unwrap_or(1) {
            out.push((SeqValue::Stale, false));
        }
        return Ok(());
    }
    if head.starts_with("{{") {
        // `{{a}}`, `{{a}}+{{b}}`, `{{a}}-{{b}}`
        let first_end = head.find("}}").ok_or("unterminated histogram")? + 2;
        let (base, hint) = parse_histogram(&head[..first_end])?;
        let rest = &head[first_end..];
        let Some(n) = times else {
            if !rest.is_empty() {
                return Err(format!("invalid histogram sequence {tok:?}"));
            }
            out.push((SeqValue::Histogram(base), hint));
            return Ok(());
        };
        if rest.is_empty() {
            for _ in 0..=n {
                out.push((SeqValue::Histogram(base.clone()), hint));
            }
            return Ok(());
        }
        let sign = if rest.starts_with('-') { -1.0 } else { 1.0 };
        let (inc, _) = parse_histogram(&rest[1..])?;
        let mut cur = base.clone();
        out.push((SeqValue::Histogram(cur.clone()), hint));
        for _ in 0..n {
            let mut i = inc.clone();
            if sign < 0.0 {
                hops::scale(&mut i, -1.0);
            }
            cur = add_for_series(&cur, &i);
            out.push((SeqValue::Histogram(cur.clone()), hint));
        }
        return Ok(());
    }
    let Some(n) = times else {
        out.push((SeqValue::Float(parse_float(head)?), false));
        return Ok(());
    };
    // `a`, `a+b`, `a-b` (the operator is the last sign not at the start or after an exponent).
    let bytes = head.as_bytes();
    let mut split = None;
    for i in (1..bytes.len()).rev() {
        if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
            split = Some(i);
            break;
        }
    }
    match split {
        None => {
            let v = parse_float(head)?;
            for _ in 0..=n {
                out.push((SeqValue::Float(v), false));
            }
        }
        Some(i) => {
            let a = parse_float(&head[..i])?;
            let mut b = parse_float(&head[i + 1..])?;
            if bytes[i] == b'-' {
                b = -b;
            }
            let mut cur = a;
            for _ in 0..=n {
                out.push((SeqValue::Float(cur), false));
                cur += b;
            }
        }
    }
    Ok(())
}

/// Histogram addition for series expansion: keeps the base's schema when compatible.
fn add_for_series(a: &FloatHistogram, b: &FloatHistogram) -> FloatHistogram {
    match hops::add(a, b) {
        Ok((mut h, _)) => {
            h.counter_reset_hint = a.counter_reset_hint;
            h
        }
        Err(_) => a.clone(),
    }
}

/// The staleness marker as a sequence value stored in a float series.
pub fn stale_value() -> f64 {
    stale_nan()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s53ms"), Ok(10053));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("100"), Ok(100_000));
    }

    #[test]
    fn sequences() {
        let v = parse_values("1 2+3x2 _ stale -1-1x1 1e3+1x1 _x2").unwrap();
        let f: Vec<String> = v.iter().map(|(x, _)| format!("{x:?}")).collect();
        assert_eq!(f.len(), 12, "{f:?}");
    }

    #[test]
    fn series_desc() {
        let (l, rest) = parse_series_desc(r#"foo{a="b", c="d,}"} 1 2"#).unwrap();
        assert_eq!(l.get("c"), Some("d,}"));
        assert_eq!(rest.trim(), "1 2");
        let (l, _) = parse_series_desc(r#"{"my.metric", a="x"} 1"#).unwrap();
        assert_eq!(l.metric_name(), Some("my.metric"));
    }

    #[test]
    fn histograms() {
        let v = parse_values("{{schema:1 sum:3 count:22 buckets:[5 10 7]}}+{{count:1 buckets:[1]}}x2").unwrap();
        assert_eq!(v.len(), 3);
        let (h, hint) = parse_histogram("{{schema:0 counter_reset_hint:gauge n_buckets:[1 2] n_offset:-1}}").unwrap();
        assert!(hint);
        assert_eq!(h.negative_spans, vec![Span::new(-1, 2)]);
    }
}
