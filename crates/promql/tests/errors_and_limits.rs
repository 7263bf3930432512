//! Bad input and limits: each failure has Prometheus's error class and a useful message,
//! and nothing panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::executor::block_on;
use hypnos_model::Labels;
use hypnos_promql::{CancelToken, Engine, EngineOptions, ErrorType, MemStorage, QueryError, Value};

fn storage() -> MemStorage {
    let mut s = MemStorage::new();
    for (name, label, step) in [("a", "x", 1.0), ("a", "y", 2.0), ("b", "x", 3.0)] {
        let l = Labels::from_pairs([("__name__", name), ("label", label)]);
        for i in 0..100 {
            s.add_float(&l, i * 15_000, step * i as f64);
        }
    }
    s
}

fn instant(q: &str) -> Result<hypnos_promql::QueryResult, QueryError> {
    block_on(Engine::default().instant_query(&storage(), q, 600_000, None))
}

#[test]
fn unparsable_queries_are_bad_data_with_the_parser_message() {
    for (q, want) in [
        ("sum(", "unclosed left parenthesis"),
        ("foo)", "unexpected right parenthesis ')'"),
        ("x{", "unexpected end of input inside braces"),
        ("unknown_fn(a)", "unknown function with name 'unknown_fn'"),
        ("", "no expression found in input"),
    ] {
        let err = instant(q).expect_err(q);
        assert_eq!(err.error_type(), ErrorType::BadData, "{q}");
        assert!(err.to_string().contains(want), "{q}: {err}");
        assert!(err.to_string().contains("parse error"), "{q}: {err}");
    }
    assert_eq!(
        instant("sum(").unwrap_err().to_string(),
        "1:5: parse error: unclosed left parenthesis"
    );
}

#[test]
fn wrong_argument_types_are_bad_data() {
    for (q, want) in [
        ("rate(a)", "expected type matrix in call to function 'rate', got vector"),
        ("abs(a, a)", "expected 1 argument(s) in call to 'abs', got 2"),
        (
            "topk(a, a)",
            "expected type scalar in aggregation expression, got vector",
        ),
        (
            "a[5m] + 1",
            "binary expression must contain only scalar and instant vector types",
        ),
    ] {
        let err = instant(q).expect_err(q);
        assert_eq!(err.error_type(), ErrorType::BadData, "{q}");
        assert!(err.to_string().contains(want), "{q}: {err}");
    }
}

#[test]
fn many_to_many_matching_is_an_execution_error() {
    let err = instant("a + on() b").unwrap_err();
    assert_eq!(err.error_type(), ErrorType::Execution);
    assert_eq!(
        err.to_string(),
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
    let err = instant("b + on() a").unwrap_err();
    assert_eq!(err.error_type(), ErrorType::Execution);
    assert!(
        err.to_string().starts_with("found duplicate series for the match group {} on the right hand-side of the operation: [{__name__=\"a\", label=\"x\"}, {__name__=\"a\", label=\"y\"}]"),
        "{err}"
    );
    let err = instant("a + ignoring(label) a").unwrap_err();
    assert!(err.to_string().contains("many-to-many"), "{err}");
}

#[test]
fn duplicate_label_sets_are_an_execution_error() {
    let err = instant(r#"label_replace({__name__=~"a|b"}, "__name__", "c", "", "")"#).unwrap_err();
    assert_eq!(err.error_type(), ErrorType::Execution);
    assert_eq!(err.to_string(), "vector cannot contain metrics with the same labelset");
    let err = instant(r#"-{label="x"}"#).unwrap_err();
    assert_eq!(err.to_string(), "vector cannot contain metrics with the same labelset");
}

#[test]
fn out_of_range_quantiles_warn_like_prometheus() {
    let r = instant("quantile(2, a)").unwrap();
    let w: Vec<String> = r.annotations.warnings().map(ToString::to_string).collect();
    assert_eq!(
        w,
        vec!["PromQL warning: quantile value should be between 0 and 1, got 2 (1:10)".to_string()]
    );
    match r.value {
        Value::Vector(v) => assert_eq!(v[0].f, f64::INFINITY),
        other => panic!("{other:?}"),
    }
    let err = instant("double_exponential_smoothing(a[5m], 2, 0.5)").unwrap_err();
    assert_eq!(err.error_type(), ErrorType::Execution);
    assert_eq!(
        err.to_string(),
        "invalid smoothing factor. Expected: 0 < sf < 1, got: 2.000000"
    );
}

#[test]
fn sample_limit_fails_with_prometheus_text() {
    let engine = Engine::new(EngineOptions {
        max_samples: 50,
        ..Default::default()
    });
    let err = block_on(engine.range_query(&storage(), "a", 0, 1_500_000, 15_000, None)).unwrap_err();
    assert_eq!(err.error_type(), ErrorType::Execution);
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    // A huge number of steps is refused before anything is allocated.
    let err = block_on(Engine::default().range_query(&storage(), "1", 0, i64::MAX / 2, 1, None)).unwrap_err();
    assert!(matches!(err, QueryError::TooManySamples(_)));
}

#[test]
fn timeout_and_cancellation() {
    let engine = Engine::new(EngineOptions {
        timeout: Duration::ZERO,
        ..Default::default()
    });
    let err = block_on(engine.instant_query(&storage(), "sum(a)", 600_000, None)).unwrap_err();
    assert_eq!(err.error_type(), ErrorType::Timeout);
    assert_eq!(err.to_string(), "query timed out in query execution");

    let cancel = CancelToken::new();
    cancel.cancel();
    let err = block_on(Engine::default().instant_query(&storage(), "sum(a)", 600_000, Some(&cancel))).unwrap_err();
    assert_eq!(err.error_type(), ErrorType::Canceled);
    assert_eq!(err.to_string(), "query was canceled in query execution");
}

#[test]
fn range_query_rejects_bad_ranges() {
    let s = storage();
    let e = Engine::default();
    assert_eq!(
        block_on(e.range_query(&s, "a", 0, 10, 0, None))
            .unwrap_err()
            .error_type(),
        ErrorType::BadData
    );
    assert_eq!(
        block_on(e.range_query(&s, "a", 10, 0, 1, None))
            .unwrap_err()
            .error_type(),
        ErrorType::BadData
    );
    let err = block_on(e.range_query(&s, "a[5m]", 0, 10, 1, None)).unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid expression type \"range vector\" for range query"),
        "{err}"
    );
}
