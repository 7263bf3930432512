//! A parser for the OpenMetrics text format as `promtool tsdb create-blocks-from
//! openmetrics` reads it: every sample line becomes a sample (`_bucket`, `_total`,
//! `_created`… included), timestamps are seconds turned into milliseconds by
//! truncation (`int64(ts * 1000)`), and the input must end with `# EOF`.

use hypnos_model::{Label, Labels, sample::NORMAL_NAN_BITS};

use crate::error::{Error, Result};

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct OmSample {
    pub labels: Labels,
    pub timestamp: Option<i64>,
    pub value: f64,
    pub line: usize,
}

/// Parses OpenMetrics text line by line.
#[derive(Debug)]
pub struct OmParser<'a> {
    file: String,
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    saw_eof: bool,
}

impl<'a> OmParser<'a> {
    pub fn new(file: impl Into<String>, text: &'a str) -> Self {
        OmParser {
            file: file.into(),
            lines: text.lines().enumerate(),
            saw_eof: false,
        }
    }

    fn err(&self, line: usize, reason: impl Into<String>) -> Error {
        Error::Parse {
            file: self.file.clone(),
            line,
            reason: reason.into(),
        }
    }

    fn parse_sample(&self, line_no: usize, line: &str) -> Result<OmSample> {
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
            i += 1;
        }
        if i == 0 || b[0].is_ascii_digit() {
            return Err(self.err(line_no, format!("invalid metric name in {line:?}")));
        }
        let name = &line[..i];
        let mut labels = vec![Label::new(hypnos_model::METRIC_NAME, name)];
        if i < b.len() && b[i] == b'{' {
            i += 1;
            loop {
                if i < b.len() && b[i] == b'}' {
                    i += 1;
                    break;
                }
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if start == i {
                    return Err(self.err(line_no, format!("invalid label name at column {}", i + 1)));
                }
                let lname = &line[start..i];
                if i + 1 >= b.len() || b[i] != b'=' || b[i + 1] != b'"' {
                    return Err(self.err(line_no, format!("expected =\" after label name {lname:?}")));
                }
                i += 2;
                let mut value = String::new();
                loop {
                    let Some(&c) = b.get(i) else {
                        return Err(self.err(line_no, "unterminated label value"));
                    };
                    match c {
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\\' => {
                            match b.get(i + 1) {
                                Some(b'n') => value.push('\n'),
                                Some(b'"') => value.push('"'),
                                Some(b'\\') => value.push('\\'),
                                _ => return Err(self.err(line_no, "invalid escape in label value")),
                            }
                            i += 2;
                        }
                        _ => {
                            let ch_len = line[i..].chars().next().map(char::len_utf8).unwrap_or(1);
                            value.push_str(&line[i..i + ch_len]);
                            i += ch_len;
                        }
                    }
                }
                if labels.iter().any(|l| l.name == lname) {
                    return Err(self.err(line_no, format!("duplicate label name {lname:?}")));
                }
                labels.push(Label::new(lname, value));
                match b.get(i) {
                    Some(b',') => i += 1,
                    Some(b'}') => {}
                    _ => return Err(self.err(line_no, "expected , or } after label value")),
                }
            }
        }
        if b.get(i) != Some(&b' ') {
            return Err(self.err(line_no, "expected a space before the value"));
        }
        let rest = &line[i + 1..];
        let (main, _exemplar) = match rest.find(" # ") {
            Some(p) => (&rest[..p], Some(&rest[p + 3..])),
            None => (rest, None),
        };
        let mut parts = main.split(' ');
        let vs = parts.next().unwrap_or("");
        let value = parse_go_float(vs).ok_or_else(|| self.err(line_no, format!("invalid value {vs:?}")))?;
        let timestamp = match parts.next() {
            None | Some("") => None,
            Some(ts) => {
                let f = parse_go_float(ts).ok_or_else(|| self.err(line_no, format!("invalid timestamp {ts:?}")))?;
                if !f.is_finite() {
                    return Err(self.err(line_no, format!("invalid timestamp {ts:?}")));
                }
                Some((f * 1000.0) as i64)
            }
        };
        if parts.next().is_some() {
            return Err(self.err(line_no, "unexpected text after the timestamp"));
        }
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(OmSample {
            labels: Labels::from_pairs(labels.into_iter().map(|l| (l.name, l.value))),
            timestamp,
            value,
            line: line_no,
        })
    }
}

/// Go's `strconv.ParseFloat` for the spellings OpenMetrics uses; NaN gets Prometheus's
/// normal NaN bit pattern, as Go's `math.NaN()` has.
pub fn parse_go_float(s: &str) -> Option<f64> {
    let v: f64 = match s {
        "+Inf" | "Inf" | "+inf" | "inf" => f64::INFINITY,
        "-Inf" | "-inf" => f64::NEG_INFINITY,
        _ => s.parse().ok()?,
    };
    if v.is_nan() {
        return Some(f64::from_bits(NORMAL_NAN_BITS));
    }
    Some(v)
}

impl Iterator for OmParser<'_> {
    type Item = Result<OmSample>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some((i, line)) = self.lines.next() else {
                if !self.saw_eof {
                    self.saw_eof = true;
                    return Some(Err(self.err(0, "data does not end with # EOF")));
                }
                return None;
            };
            let line_no = i + 1;
            if self.saw_eof {
                if line.trim().is_empty() {
                    continue;
                }
                return Some(Err(self.err(line_no, "unexpected data after # EOF")));
            }
            if line == "# EOF" {
                self.saw_eof = true;
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            return Some(self.parse_sample(line_no, line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples() {
        let text = "# TYPE a counter\na_total{x=\"1\",y=\"q\\\"\\n\"} 3 1700000000.123\nb NaN 5\nc +Inf\n# EOF\n";
        let got: Vec<OmSample> = OmParser::new("t", text).collect::<Result<_>>().unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].labels.get("y"), Some("q\"\n"));
        assert_eq!(got[0].labels.metric_name(), Some("a_total"));
        assert_eq!(got[0].timestamp, Some((1700000000.123f64 * 1000.0) as i64));
        assert_eq!(got[1].value.to_bits(), NORMAL_NAN_BITS);
        assert_eq!(got[2].timestamp, None);
    }

    #[test]
    fn requires_eof() {
        assert!(OmParser::new("t", "a 1 1\n").collect::<Result<Vec<_>>>().is_err());
    }
}
