//! Label matchers (`=`, `!=`, `=~`, `!~`) with Prometheus 3.x semantics: regexes are fully
//! anchored and `.` matches newlines (`^(?s:…)$`), and a matcher on an absent label sees "".

use std::fmt;

use regex::Regex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }

    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::RegexMatch | MatchOp::RegexNoMatch)
    }

    pub fn is_negative(self) -> bool {
        matches!(self, MatchOp::NotEqual | MatchOp::RegexNoMatch)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error("invalid regular expression {pattern:?}: {source}")]
    InvalidRegex {
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },
}

/// A compiled label matcher.
#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

/// Regexes larger than this are refused rather than compiled, so that a client cannot make
/// a server spend unbounded memory on one matcher.
const REGEX_SIZE_LIMIT: usize = 8 << 20;

/// Compiled regexes of recent matchers, by pattern. Dashboards send the same few regexes
/// again and again, and compiling one (the regex crate builds a DFA for small ones) costs more
/// than the rest of a small query; Prometheus keeps such a cache too. A compiled regex is
/// shared, not copied, by the matchers using it.
struct RegexCache {
    compiled: std::collections::HashMap<String, Regex>,
}

/// Entries kept; the cache starts over when full, which bounds its memory without tracking use.
const REGEX_CACHE_ENTRIES: usize = 256;

static REGEX_CACHE: std::sync::LazyLock<std::sync::Mutex<RegexCache>> = std::sync::LazyLock::new(|| {
    std::sync::Mutex::new(RegexCache {
        compiled: std::collections::HashMap::new(),
    })
});

fn compile_anchored(value: &str) -> Result<Regex, MatcherError> {
    let cached = |value: &str| REGEX_CACHE.lock().ok().and_then(|c| c.compiled.get(value).cloned());
    if let Some(re) = cached(value) {
        return Ok(re);
    }
    let pattern = format!("^(?s:{value})$");
    let re = regex::RegexBuilder::new(&pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| MatcherError::InvalidRegex {
            pattern: value.to_string(),
            source: Box::new(e),
        })?;
    if let Ok(mut c) = REGEX_CACHE.lock() {
        if c.compiled.len() >= REGEX_CACHE_ENTRIES {
            c.compiled.clear();
        }
        c.compiled.insert(value.to_string(), re.clone());
    }
    Ok(re)
}

impl Matcher {
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, MatcherError> {
        let (name, value) = (name.into(), value.into());
        let regex = match op.is_regex() {
            true => Some(compile_anchored(&value)?),
            false => None,
        };
        Ok(Matcher { name, op, value, regex })
    }

    /// `name="value"`: never fails.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            regex: None,
        }
    }

    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == v,
            MatchOp::NotEqual => self.value != v,
            MatchOp::RegexMatch => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::RegexNoMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher accepts a series that lacks the label entirely.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=~` with a plain alternation of literals (`a|b|c`), the literal values; lets
    /// index lookups avoid scanning every value of a label.
    pub fn set_matches(&self) -> Option<Vec<String>> {
        if self.op != MatchOp::RegexMatch {
            return None;
        }
        let special = |c: char| "\\.+*?()|[]{}^$".contains(c);
        let parts: Vec<&str> = self.value.split('|').collect();
        if parts.iter().any(|p| p.chars().any(special)) {
            return None;
        }
        Some(parts.into_iter().map(str::to_string).collect())
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_regexes_match_like_fresh_ones_and_errors_are_not_cached() -> Result<(), MatcherError> {
        // More patterns than the cache holds, each compiled twice: the second comes from the
        // cache (or a fresh start of it) and must match exactly the same values.
        for round in 0..2 {
            for i in 0..(REGEX_CACHE_ENTRIES + 40) {
                let m = Matcher::new(MatchOp::RegexMatch, "a", format!("v{i}|w.*"))?;
                assert!(m.matches(&format!("v{i}")), "round {round} pattern {i}");
                assert!(m.matches("w\n"));
                assert!(!m.matches(&format!("xv{i}")));
            }
        }
        for _ in 0..2 {
            assert!(Matcher::new(MatchOp::RegexMatch, "a", "(unclosed").is_err());
        }
        Ok(())
    }

    #[test]
    fn regex_is_anchored_and_dot_matches_newline() -> Result<(), MatcherError> {
        let m = Matcher::new(MatchOp::RegexMatch, "a", "fo.")?;
        assert!(m.matches("foo"));
        assert!(!m.matches("xfoo"));
        assert!(m.matches("fo\n"));
        let n = Matcher::new(MatchOp::RegexNoMatch, "a", "")?;
        assert!(!n.matches(""));
        assert!(n.matches("x"));
        Ok(())
    }

    #[test]
    fn set_matches() -> Result<(), MatcherError> {
        let m = Matcher::new(MatchOp::RegexMatch, "a", "x|y|z")?;
        assert_eq!(m.set_matches(), Some(vec!["x".into(), "y".into(), "z".into()]));
        assert_eq!(Matcher::new(MatchOp::RegexMatch, "a", "x.*")?.set_matches(), None);
        Ok(())
    }

    #[test]
    fn bad_regex_is_an_error() {
        assert!(Matcher::new(MatchOp::RegexMatch, "a", "(").is_err());
    }
}
