//! Our boundary around the `promql-parser` crate: everything else in the engine reaches the
//! parser through this module, so that it can be patched or replaced in one place.

pub use promql_parser::label::{MatchOp as ParserMatchOp, Matchers as ParserMatchers};
pub use promql_parser::parser::value::ValueType;
pub use promql_parser::parser::{
    AggregateExpr, AtModifier, BinModifier, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector, NumberLiteral,
    Offset, ParenExpr, StringLiteral, SubqueryExpr, UnaryExpr, VectorMatchCardinality, VectorSelector,
};

/// A query that does not parse or type-check. Keeps the parser's message; the position is
/// known only for errors we detect ourselves, as promql-parser does not report one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub message: String,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some((l, c)) => write!(f, "{l}:{c}: parse error: {}", self.message),
            None => write!(f, "parse error: {}", self.message),
        }
    }
}

/// Parses a PromQL expression.
pub fn parse(query: &str) -> Result<Expr, ParseError> {
    if query.trim().is_empty() {
        return Err(ParseError {
            message: "no expression found in input".into(),
            position: Some((1, 1)),
        });
    }
    promql_parser::parser::parse(query).map_err(|message| {
        let position = error_position(query, &message);
        ParseError { message, position }
    })
}

/// promql-parser reports no positions; for the errors whose place is evident from the
/// message we compute it as Prometheus would report it.
fn error_position(query: &str, message: &str) -> Option<(usize, usize)> {
    let at = |byte: usize| {
        let before = &query[..byte];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    };
    if message.starts_with("unclosed") || message.contains("end of input") {
        return Some(at(query.trim_end().len()));
    }
    if message.starts_with("unexpected right parenthesis") {
        let mut depth = 0i32;
        for (i, c) in query.char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => return Some(at(i)),
                ')' => depth -= 1,
                _ => {}
            }
        }
    }
    None
}

/// A parsed query plus what the pre-pass rewrote: the histogram trim operators `</` and
/// `>/`, which promql-parser lacks, are parsed as `atan2` (same precedence) and remembered
/// by the address of their `BinaryExpr` node.
#[derive(Debug)]
pub struct Parsed {
    pub expr: Box<Expr>,
    /// `BinaryExpr` address → `true` for `</` (keep below), `false` for `>/`.
    pub trims: std::collections::HashMap<usize, bool>,
    /// String literals that are not valid UTF-8 in PromQL's (Go's) reading, where `\xNN`
    /// is a raw byte: promql-parser reads them as the char U+00NN. Maps the parser's string
    /// to the literal as written, for error messages.
    pub invalid_utf8: std::collections::HashMap<String, String>,
}

/// Parses with our pre-pass for syntax promql-parser does not know.
pub fn parse_query(query: &str) -> Result<Parsed, ParseError> {
    let (rewritten, ops) = rewrite_trim_operators(query);
    let expr = Box::new(parse(&rewritten)?);
    let mut trims = std::collections::HashMap::new();
    if ops.iter().any(Option::is_some) {
        let mut nodes = Vec::new();
        atan2_nodes_in_order(&expr, &mut nodes);
        for (node, op) in nodes.into_iter().zip(ops) {
            if let Some(keep_below) = op {
                trims.insert(node, keep_below);
            }
        }
    }
    Ok(Parsed {
        expr,
        trims,
        invalid_utf8: invalid_utf8_literals(query),
    })
}

/// Finds quoted literals whose Go reading (with `\xNN` as raw bytes) is not valid UTF-8.
fn invalid_utf8_literals(q: &str) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let quote = chars[i];
        if quote != '"' && quote != '\'' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let (mut bytes, mut parsed, mut raw_hex) = (Vec::new(), String::new(), false);
        while i < chars.len() && chars[i] != quote {
            if chars[i] == '\\' && i + 1 < chars.len() {
                if chars[i + 1] == 'x' && i + 3 < chars.len() {
                    let hex: String = chars[i + 2..i + 4].iter().collect();
                    if let Ok(b) = u8::from_str_radix(&hex, 16) {
                        bytes.push(b);
                        parsed.push(char::from(b));
                        raw_hex |= b >= 0x80;
                        i += 4;
                        continue;
                    }
                }
                // Other escapes are the same in both readings; keep them opaque.
                let c = chars[i + 1];
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                parsed.push(c);
                i += 2;
                continue;
            }
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(chars[i].encode_utf8(&mut buf).as_bytes());
            parsed.push(chars[i]);
            i += 1;
        }
        if raw_hex && std::str::from_utf8(&bytes).is_err() {
            let body: String = chars[start + 1..i.min(chars.len())].iter().collect();
            out.insert(parsed, format!("\"{body}\""));
        }
        i += 1;
    }
    out
}

/// Replaces `</` and `>/` outside strings and comments by `atan2`; returns the operators in
/// textual order (`None` for a genuine `atan2`).
fn rewrite_trim_operators(q: &str) -> (String, Vec<Option<bool>>) {
    let chars: Vec<char> = q.chars().collect();
    let mut out = String::with_capacity(q.len() + 8);
    let mut ops = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                out.push(c);
                i += 1;
                while i < chars.len() {
                    out.push(chars[i]);
                    if chars[i] == '\\' && c != '`' && i + 1 < chars.len() {
                        out.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    if chars[i - 1] == c {
                        break;
                    }
                }
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    out.push(chars[i]);
                    i += 1;
                }
            }
            '<' | '>' if chars.get(i + 1) == Some(&'/') => {
                ops.push(Some(c == '<'));
                out.push_str(" atan2 ");
                i += 2;
            }
            'a' if chars[i..].starts_with(&['a', 't', 'a', 'n', '2'])
                && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':'))
                && !chars
                    .get(i + 5)
                    .is_some_and(|n| n.is_alphanumeric() || *n == '_' || *n == ':') =>
            {
                ops.push(None);
                out.push_str("atan2");
                i += 5;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    (out, ops)
}

fn atan2_nodes_in_order(e: &Expr, out: &mut Vec<usize>) {
    match e {
        Expr::Binary(b) => {
            atan2_nodes_in_order(&b.lhs, out);
            if b.op.to_string() == "atan2" {
                out.push(b as *const BinaryExpr as usize);
            }
            atan2_nodes_in_order(&b.rhs, out);
        }
        Expr::Paren(p) => atan2_nodes_in_order(&p.expr, out),
        Expr::Unary(u) => atan2_nodes_in_order(&u.expr, out),
        Expr::Subquery(s) => atan2_nodes_in_order(&s.expr, out),
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                atan2_nodes_in_order(p, out);
            }
            atan2_nodes_in_order(&a.expr, out);
        }
        Expr::Call(c) => c.args.args.iter().for_each(|a| atan2_nodes_in_order(a, out)),
        _ => {}
    }
}

/// Milliseconds of a parser duration.
pub(crate) fn duration_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Signed milliseconds of an offset modifier.
pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

/// The `@` modifier as a timestamp, resolving `start()`/`end()` against the query range.
pub(crate) fn at_ms(at: &Option<AtModifier>, query_start: i64, query_end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(query_start),
        Some(AtModifier::End) => Some(query_end),
        Some(AtModifier::At(t)) => Some(system_time_ms(t)),
    }
}

fn system_time_ms(t: &std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Strips any number of parentheses.
pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}
