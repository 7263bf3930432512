//! `tsdb dump`: every float sample as `{labels} value timestamp`, series in label order,
//! exactly as `promtool tsdb dump` 2.42 prints them (histogram samples end a series'
//! output there, so they do here).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use hypnos_model::{Labels, Matcher, SampleValue};

use super::Progress;
use crate::block::{BlockReader, SelectedSeries};
use crate::error::{Error, Result};
use crate::gofmt::{format_g, labels_string};

/// Dumps the series matching any of `selectors` (all series when there is none).
pub fn dump(
    dir: &Path,
    mint: i64,
    maxt: i64,
    selectors: &[Vec<Matcher>],
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<()> {
    let blocks: Vec<BlockReader> = super::blocks_in(dir)?
        .iter()
        .map(|p| BlockReader::open(p))
        .collect::<Result<_>>()?;
    let mut series: BTreeMap<Labels, Vec<(usize, SelectedSeries)>> = BTreeMap::new();
    let all: [Vec<Matcher>; 1] = [Vec::new()];
    let selectors = if selectors.is_empty() { &all[..] } else { selectors };
    for (bi, b) in blocks.iter().enumerate() {
        for matchers in selectors {
            for s in b.select(matchers, mint, maxt)? {
                let s = s?;
                let parts = series.entry(s.labels.clone()).or_default();
                if !parts.iter().any(|(pb, ps)| *pb == bi && ps.series_ref == s.series_ref) {
                    parts.push((bi, s));
                }
            }
        }
    }
    let total = series.len() as u64;
    let io = |e: std::io::Error| Error::io("<output>", e);
    let mut line = String::new();
    for (n, (labels, parts)) in series.into_iter().enumerate() {
        let ls = labels_string(&labels);
        let mut samples: Vec<(i64, SampleValue)> = Vec::new();
        for (bi, s) in &parts {
            for x in blocks[*bi].samples(s, mint, maxt) {
                samples.push(x?);
            }
        }
        if parts.len() > 1 {
            samples.sort_by_key(|(t, _)| *t);
            samples.dedup_by_key(|(t, _)| *t);
        }
        for (t, v) in samples {
            let SampleValue::Float(v) = v else { break };
            line.clear();
            line.push_str(&ls);
            line.push(' ');
            line.push_str(&format_g(v));
            line.push(' ');
            line.push_str(&t.to_string());
            line.push('\n');
            out.write_all(line.as_bytes()).map_err(io)?;
        }
        if n % 1000 == 0 {
            progress(n as u64, total);
        }
    }
    out.flush().map_err(io)?;
    Ok(())
}

/// Parses a series selector such as `up{job="x",instance=~"a.*"}` or `{__name__!=""}`.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>> {
    use hypnos_model::MatchOp;
    let bad = |why: &str| Error::Invalid(format!("invalid series selector {s:?}: {why}"));
    let s = s.trim();
    let (name, rest) = match s.find('{') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let mut out = Vec::new();
    if !name.is_empty() {
        out.push(Matcher::equal(hypnos_model::METRIC_NAME, name.trim()));
    }
    if rest.is_empty() {
        return if out.is_empty() { Err(bad("empty")) } else { Ok(out) };
    }
    let inner = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| bad("unbalanced braces"))?;
    let b = inner.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let lname = &inner[start..i];
        if lname.is_empty() {
            return Err(bad("expected a label name"));
        }
        let ops: [(&str, MatchOp); 4] = [
            ("=~", MatchOp::RegexMatch),
            ("!~", MatchOp::RegexNoMatch),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ];
        let rest = &inner[i..];
        let Some((tok, op)) = ops.iter().find(|(t, _)| rest.starts_with(t)) else {
            return Err(bad("expected =, !=, =~ or !~"));
        };
        i += tok.len();
        let quote = *b.get(i).ok_or_else(|| bad("expected a quoted value"))?;
        if quote != b'"' && quote != b'\'' {
            return Err(bad("expected a quoted value"));
        }
        i += 1;
        let mut value = String::new();
        loop {
            let c = *b.get(i).ok_or_else(|| bad("unterminated value"))?;
            if c == quote {
                i += 1;
                break;
            }
            if c == b'\\' {
                let n = *b.get(i + 1).ok_or_else(|| bad("unterminated escape"))?;
                value.push(match n {
                    b'n' => '\n',
                    b't' => '\t',
                    other => other as char,
                });
                i += 2;
                continue;
            }
            let ch_len = inner[i..].chars().next().map(char::len_utf8).unwrap_or(1);
            value.push_str(&inner[i..i + ch_len]);
            i += ch_len;
        }
        out.push(Matcher::new(*op, lname, value).map_err(|e| bad(&e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let m = parse_selector(r#"up{job="a", env!~'d.*',x!="q\"",y=~"1|2"}"#).unwrap();
        let s: Vec<String> = m.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            s,
            vec![
                r#"__name__="up""#,
                r#"job="a""#,
                r#"env!~"d.*""#,
                r#"x!="q\"""#,
                r#"y=~"1|2""#
            ]
        );
        assert_eq!(parse_selector("up").unwrap().len(), 1);
        assert!(parse_selector("{job=a}").is_err());
        assert!(parse_selector("{job=\"a\"").is_err());
        assert!(parse_selector("").is_err());
    }
}
