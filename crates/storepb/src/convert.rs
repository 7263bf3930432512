//! Conversions between the StoreAPI messages and `hypnos-model` types.
//!
//! Decoding is where untrusted input enters: unknown enum values and regexes that do not compile
//! become [`ConvertError`]s naming the matcher, which map to gRPC `InvalidArgument`.

use hypnos_model::{Label as ModelLabel, Labels, MatchOp, Matcher, MatcherError};

use crate::proto::thanos::{Label, LabelMatcher, ZLabelSet, label_matcher};

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("label matcher for {name:?} has unknown type {value} (want EQ=0, NEQ=1, RE=2 or NRE=3)")]
    UnknownMatcherType { name: String, value: i32 },
    #[error("label matcher {name}{op}{value:?}: {source}")]
    InvalidMatcher {
        name: String,
        op: &'static str,
        value: String,
        #[source]
        source: MatcherError,
    },
    #[error("chunk has unknown Thanos encoding {0} (want XOR=0, HISTOGRAM=1 or FLOAT_HISTOGRAM=2)")]
    UnknownChunkEncoding(i32),
    #[error("TSDB chunk encoding {0} has no StoreAPI equivalent (want XOR=1, histogram=2 or float histogram=3)")]
    UnsupportedTsdbEncoding(u8),
    #[error("hints have type URL {got:?}, want a URL ending in {want:?}")]
    HintsTypeMismatch { got: String, want: &'static str },
    #[error("decoding {what}: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: prost::DecodeError,
    },
}

impl From<ConvertError> for tonic::Status {
    fn from(e: ConvertError) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

pub fn match_op_from_proto(t: label_matcher::Type) -> MatchOp {
    match t {
        label_matcher::Type::Eq => MatchOp::Equal,
        label_matcher::Type::Neq => MatchOp::NotEqual,
        label_matcher::Type::Re => MatchOp::RegexMatch,
        label_matcher::Type::Nre => MatchOp::RegexNoMatch,
    }
}

pub fn match_op_to_proto(op: MatchOp) -> label_matcher::Type {
    match op {
        MatchOp::Equal => label_matcher::Type::Eq,
        MatchOp::NotEqual => label_matcher::Type::Neq,
        MatchOp::RegexMatch => label_matcher::Type::Re,
        MatchOp::RegexNoMatch => label_matcher::Type::Nre,
    }
}

/// Compiles a wire matcher; regexes get Prometheus semantics (anchored, `.` matches newline).
pub fn matcher_from_proto(m: &LabelMatcher) -> Result<Matcher, ConvertError> {
    let t = label_matcher::Type::try_from(m.r#type).map_err(|_| ConvertError::UnknownMatcherType {
        name: m.name.clone(),
        value: m.r#type,
    })?;
    let op = match_op_from_proto(t);
    Matcher::new(op, m.name.as_str(), m.value.as_str()).map_err(|source| ConvertError::InvalidMatcher {
        name: m.name.clone(),
        op: op.as_str(),
        value: m.value.clone(),
        source,
    })
}

pub fn matchers_from_proto(ms: &[LabelMatcher]) -> Result<Vec<Matcher>, ConvertError> {
    ms.iter().map(matcher_from_proto).collect()
}

pub fn matcher_to_proto(m: &Matcher) -> LabelMatcher {
    LabelMatcher {
        r#type: match_op_to_proto(m.op) as i32,
        name: m.name.clone(),
        value: m.value.clone(),
    }
}

pub fn matchers_to_proto(ms: &[Matcher]) -> Vec<LabelMatcher> {
    ms.iter().map(matcher_to_proto).collect()
}

pub fn labels_to_proto(ls: &Labels) -> Vec<Label> {
    ls.iter()
        .map(|l| Label {
            name: l.name.clone(),
            value: l.value.clone(),
        })
        .collect()
}

/// Labels as received. The peer should send them sorted and unique; they are normalised anyway
/// (sorted, later duplicates win, empty values dropped) so a sloppy peer cannot break the
/// ordering invariants of [`Labels`].
pub fn labels_from_proto(ls: Vec<Label>) -> Labels {
    let sorted_unique = ls.windows(2).all(|w| w[0].name < w[1].name) && ls.iter().all(|l| !l.value.is_empty());
    if sorted_unique {
        Labels::from_sorted_unchecked(ls.into_iter().map(|l| ModelLabel::new(l.name, l.value)).collect())
    } else {
        Labels::from_pairs(ls.into_iter().map(|l| (l.name, l.value)))
    }
}

pub fn label_set_to_proto(ls: &Labels) -> ZLabelSet {
    ZLabelSet {
        labels: labels_to_proto(ls),
    }
}

pub fn label_sets_to_proto(sets: &[Labels]) -> Vec<ZLabelSet> {
    sets.iter().map(label_set_to_proto).collect()
}

pub fn label_set_from_proto(set: ZLabelSet) -> Labels {
    labels_from_proto(set.labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matcher_round_trip_all_ops() {
        for (t, op) in [
            (0, MatchOp::Equal),
            (1, MatchOp::NotEqual),
            (2, MatchOp::RegexMatch),
            (3, MatchOp::RegexNoMatch),
        ] {
            let pm = LabelMatcher {
                r#type: t,
                name: "job".into(),
                value: "a|b".into(),
            };
            let m = matcher_from_proto(&pm).unwrap();
            assert_eq!(m.op, op);
            assert_eq!(matcher_to_proto(&m), pm);
        }
    }

    #[test]
    fn regex_is_compiled_with_prometheus_semantics() {
        let m = matcher_from_proto(&LabelMatcher {
            r#type: 2,
            name: "job".into(),
            value: "api.*".into(),
        })
        .unwrap();
        assert!(m.matches("api-server"));
        assert!(!m.matches("my-api"));
    }

    #[test]
    fn bad_regex_is_a_clear_invalid_argument() {
        let err = matcher_from_proto(&LabelMatcher {
            r#type: 2,
            name: "job".into(),
            value: "(unclosed".into(),
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("job=~\"(unclosed\""), "{msg}");
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn unknown_matcher_type_is_an_error() {
        let err = matcher_from_proto(&LabelMatcher {
            r#type: 9,
            name: "job".into(),
            value: "x".into(),
        })
        .unwrap_err();
        assert!(
            matches!(err, ConvertError::UnknownMatcherType { value: 9, .. }),
            "{err}"
        );
    }

    #[test]
    fn unsorted_labels_are_normalised() {
        let ls = labels_from_proto(vec![
            Label {
                name: "b".into(),
                value: "2".into(),
            },
            Label {
                name: "a".into(),
                value: "1".into(),
            },
            Label {
                name: "c".into(),
                value: "".into(),
            },
        ]);
        assert_eq!(ls, Labels::from_pairs([("a", "1"), ("b", "2")]));
    }

    proptest! {
        #[test]
        fn labels_round_trip(pairs in proptest::collection::btree_map("[a-z_]{1,8}", "[ -~]{1,8}", 0..8)) {
            let ls = Labels::from_pairs(pairs);
            prop_assert_eq!(labels_from_proto(labels_to_proto(&ls)), ls);
        }

        #[test]
        fn matchers_round_trip(op in 0i32..4, name in "[a-z_]{1,8}", value in "[a-z0-9|.*]{0,12}") {
            let pm = LabelMatcher { r#type: op, name, value };
            // Random values may not be valid regexes; those must fail cleanly, never panic.
            if let Ok(m) = matcher_from_proto(&pm) {
                prop_assert_eq!(matcher_to_proto(&m), pm);
            }
        }
    }
}
