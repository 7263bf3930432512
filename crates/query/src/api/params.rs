//! Request parameters as Prometheus's API reads them: URL query plus form body, times as float
//! seconds or RFC 3339, durations as float seconds or Prometheus durations.

use hypnos_model::{METRIC_NAME, MatchOp, Matcher};
use hypnos_promql::parser::{self, Expr, ParserMatchOp};

/// The smallest and largest times the metadata endpoints default to (Prometheus's
/// `minTime`/`maxTime`), in ms.
pub const MIN_TIME: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
pub const MAX_TIME: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;

/// All parameters of a request, body first (Go's `r.Form` order).
#[derive(Clone, Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(query: Option<&str>, form_body: Option<&[u8]>) -> Result<Self, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(b) = form_body {
            pairs.extend(serde_urlencoded::from_bytes::<Vec<(String, String)>>(b).map_err(|e| e.to_string())?);
        }
        if let Some(q) = query {
            pairs.extend(serde_urlencoded::from_str::<Vec<(String, String)>>(q).map_err(|e| e.to_string())?);
        }
        Ok(Params { pairs })
    }

    /// The first value, like Go's `FormValue` (empty string and missing are the same there).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// `invalid parameter "<name>": <err>`, the message of Prometheus's parameter errors.
pub fn invalid_param(name: &str, err: impl std::fmt::Display) -> String {
    format!("invalid parameter \"{name}\": {err}")
}

/// Prometheus's `parseTime`: float Unix seconds (fraction rounded to ms) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        let secs = f.trunc();
        let ms = ((f - secs) * 1000.0).round();
        let t = secs * 1000.0 + ms;
        if t >= i64::MIN as f64 && t <= i64::MAX as f64 {
            return Ok(t as i64);
        }
    }
    // Go's formatted minTime / maxTime, which clients send back.
    match s {
        "-292273086-05-16T16:47:06Z" => return Ok(MIN_TIME),
        "292277025-08-18T07:12:54.999999999Z" => return Ok(MAX_TIME),
        _ => {}
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse \"{s}\" to a valid timestamp"))
}

/// RFC 3339 with optional fraction and a `Z` or `±hh:mm` offset, to ms.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let p = s.get(r)?;
        if p.bytes().all(|c| c.is_ascii_digit()) {
            p.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let frac = &r[..digits];
        let padded = format!("{:0<3}", &frac[..frac.len().min(3)]);
        ms = padded.parse().ok()?;
        rest = &r[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' {
                return None;
            }
            let sign = match rb[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 60 + om)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Go's RFC 3339 with nanoseconds (trailing zeros trimmed), UTC.
pub fn format_rfc3339_nano(unix_nanos: i128) -> String {
    let secs = unix_nanos.div_euclid(1_000_000_000);
    let nanos = unix_nanos.rem_euclid(1_000_000_000);
    let days = i64::try_from(secs.div_euclid(86_400)).unwrap_or(0);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Prometheus's `parseDuration`, in ms: float seconds or a Prometheus duration (`1h30m`).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms >= i64::MAX as f64 / 1e6 || ms <= i64::MIN as f64 / 1e6 {
            return Err(format!("cannot parse \"{s}\" to a valid duration. It overflows int64"));
        }
        return Ok(ms.round() as i64);
    }
    parse_prometheus_duration(s).ok_or_else(|| format!("cannot parse \"{s}\" to a valid duration"))
}

/// `model.ParseDuration`: units y, w, d, h, m, s, ms in this order, each at most once.
pub fn parse_prometheus_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut total: i64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let pos = UNITS.iter().position(|(u, _)| *u == unit)?;
        if pos < next_unit {
            return None;
        }
        next_unit = pos + 1;
        total = total.checked_add(n.checked_mul(UNITS[pos].1)?)?;
    }
    Some(total)
}

/// Parses one `match[]` selector into matchers, as Prometheus's `parser.ParseMetricSelector`.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>, String> {
    let expr = parser::parse(s).map_err(|e| e.to_string())?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("1:1: parse error: expected series selector, got {s:?}"));
    };
    let mut out = Vec::new();
    if let Some(n) = &vs.name {
        out.push(Matcher::equal(METRIC_NAME, n.clone()));
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            ParserMatchOp::Equal => MatchOp::Equal,
            ParserMatchOp::NotEqual => MatchOp::NotEqual,
            ParserMatchOp::Re(_) => MatchOp::RegexMatch,
            ParserMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
        };
        if op == MatchOp::Equal && m.name == METRIC_NAME && out.iter().any(|x: &Matcher| x.name == METRIC_NAME) {
            continue;
        }
        out.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// All `match[]` selectors; each must have a matcher that does not match the empty string.
pub fn parse_match_params(values: &[&str]) -> Result<Vec<Vec<Matcher>>, String> {
    let mut sets = Vec::new();
    for v in values {
        let ms = parse_selector(v).map_err(|e| {
            // Our parser rejects an all-empty selector itself; Prometheus's API checks after
            // parsing and words it differently.
            if e.contains("at least one non-empty matcher") {
                "match[] must contain at least one non-empty matcher".to_string()
            } else {
                invalid_param("match[]", e)
            }
        })?;
        if ms.iter().all(Matcher::matches_empty) {
            return Err("match[] must contain at least one non-empty matcher".into());
        }
        sets.push(ms);
    }
    Ok(sets)
}

/// Thanos's boolean parameters: `strconv.ParseBool` forms.
pub fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!(
            "cannot parse parameter {name}: strconv.ParseBool: parsing {v:?}: invalid syntax"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1700000000.1234").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("2023-11-14T22:13:20.5+01:00").unwrap(), 1_699_996_400_500);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(format_rfc3339_nano(1_700_000_000_500_000_000), "2023-11-14T22:13:20.5Z");
        assert_eq!(format_rfc3339_nano(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("5m").unwrap(), 300_000);
        assert_eq!(parse_duration("100ms").unwrap(), 100);
        assert!(parse_duration("1ns").is_err());
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn selectors() {
        let ms = parse_selector(r#"up{job="a",instance=~"x.*"}"#).unwrap();
        assert_eq!(ms.len(), 3);
        assert!(parse_match_params(&[r#"{job=~".*"}"#]).is_err());
        assert!(parse_match_params(&["sum(up)"]).is_err());
    }

    #[test]
    fn form_values_come_first() {
        let p = Params::parse(Some("query=a&match[]=x"), Some(b"query=b&match%5B%5D=y")).unwrap();
        assert_eq!(p.get("query"), Some("b"));
        assert_eq!(p.all("match[]"), vec!["y", "x"]);
    }
}
