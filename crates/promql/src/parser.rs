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
    promql_parser::parser::parse(query).map_err(|message| ParseError {
        message,
        position: None,
    })
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
