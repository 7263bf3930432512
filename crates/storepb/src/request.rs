//! Decoding requests into what a store evaluates, with Thanos's rules for the fields every
//! StoreAPI server must honour: partial-response strategy, external-label matchers, sharding,
//! `limit` and `response_batch_size`.

use futures::StreamExt;
use hypnos_model::{Labels, Matcher};
use tonic::Status;

use crate::api::SeriesStream;
use crate::convert::{ConvertError, matchers_from_proto};
use crate::proto::thanos::{PartialResponseStrategy, Series, SeriesRequest, SeriesResponse};
use crate::shard::ShardMatcher;

/// The `InvalidArgument` message of Thanos's sidecar and proxy when only external-label
/// matchers were given.
pub const NO_MATCHERS: &str = "no matchers specified (excluding external labels)";

/// Thanos's rule: the deprecated flag or the ABORT strategy both mean "fail on any error".
pub fn aborts_on_partial_response(partial_response_disabled: bool, strategy: i32) -> bool {
    partial_response_disabled || strategy == PartialResponseStrategy::Abort as i32
}

/// Checks the matchers against a store's external labels (Thanos's `matchesExternalLabels`).
/// `None`: some matcher on an external label rejects its value, so the store has nothing to
/// return (an empty answer, not an error). `Some`: the matchers left for the store's own data,
/// those on external labels removed.
pub fn match_external_labels(matchers: Vec<Matcher>, external: &Labels) -> Option<Vec<Matcher>> {
    let mut rest = Vec::with_capacity(matchers.len());
    for m in matchers {
        match external.get(&m.name) {
            None => rest.push(m),
            Some(v) if m.matches(v) => {}
            Some(_) => return None,
        }
    }
    Some(rest)
}

/// A decoded `SeriesRequest`.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    pub min_time: i64,
    pub max_time: i64,
    pub matchers: Vec<Matcher>,
    pub skip_chunks: bool,
    pub abort_on_partial: bool,
    pub max_resolution_window: i64,
    /// `Aggr` values as on the wire (RAW=0 … COUNTER=5).
    pub aggregates: Vec<i32>,
    pub shard: ShardMatcher,
    pub without_replica_labels: Vec<String>,
    /// `None` for no limit.
    pub limit: Option<usize>,
    /// Series per response frame; 1 means plain `series` frames.
    pub batch_size: usize,
}

impl SeriesQuery {
    pub fn from_request(req: &SeriesRequest) -> Result<Self, ConvertError> {
        Ok(SeriesQuery {
            min_time: req.min_time,
            max_time: req.max_time,
            matchers: matchers_from_proto(&req.matchers)?,
            skip_chunks: req.skip_chunks,
            abort_on_partial: aborts_on_partial_response(req.partial_response_disabled, req.partial_response_strategy),
            max_resolution_window: req.max_resolution_window,
            aggregates: req.aggregates.clone(),
            shard: ShardMatcher::new(req.shard_info.as_ref()),
            without_replica_labels: req.without_replica_labels.clone(),
            limit: usize::try_from(req.limit).ok().filter(|&l| l > 0),
            batch_size: usize::try_from(req.response_batch_size).unwrap_or(1).max(1),
        })
    }

    /// Applies [`match_external_labels`]; an error when no matcher is left, as Thanos does.
    pub fn against_external_labels(&self, external: &Labels) -> Result<Option<Vec<Matcher>>, Status> {
        match match_external_labels(self.matchers.clone(), external) {
            Some(rest) if rest.is_empty() => Err(Status::invalid_argument(NO_MATCHERS)),
            other => Ok(other),
        }
    }
}

/// Turns a sorted stream of series into response frames: at most `limit` series, grouped into
/// `batch` frames of `batch_size` when it is above 1 (v0.41+ clients ask for 64), plain
/// `series` frames otherwise. An error item is passed on and ends the stream.
pub fn frame_series<S>(series: S, batch_size: usize, limit: Option<usize>) -> SeriesStream
where
    S: futures::Stream<Item = Result<Series, Status>> + Send + 'static,
{
    let limited = series.take(limit.unwrap_or(usize::MAX));
    if batch_size <= 1 {
        return limited.map(|r| r.map(SeriesResponse::series)).boxed();
    }
    limited
        .ready_chunks(batch_size)
        .flat_map(|items| {
            let mut frames = Vec::new();
            let mut batch = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Ok(s) => batch.push(s),
                    Err(e) => {
                        // Series before the error still go out, then the error.
                        if !batch.is_empty() {
                            frames.push(Ok(SeriesResponse::batch(std::mem::take(&mut batch))));
                        }
                        frames.push(Err(e));
                        break;
                    }
                }
            }
            if !batch.is_empty() {
                frames.push(Ok(SeriesResponse::batch(batch)));
            }
            futures::stream::iter(frames)
        })
        .scan(false, |failed, item| {
            // Nothing after an error.
            if *failed {
                return futures::future::ready(None);
            }
            *failed = item.is_err();
            futures::future::ready(Some(item))
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{SeriesFrame, frames};
    use crate::convert::labels_to_proto;
    use crate::proto::thanos::{LabelMatcher, label_matcher};
    use hypnos_model::MatchOp;

    fn m(op: MatchOp, n: &str, v: &str) -> Matcher {
        Matcher::new(op, n, v).unwrap()
    }

    #[test]
    fn external_labels() {
        let ext = Labels::from_pairs([("cluster", "eu"), ("replica", "0")]);
        let kept = match_external_labels(
            vec![m(MatchOp::Equal, "cluster", "eu"), m(MatchOp::Equal, "job", "x")],
            &ext,
        )
        .unwrap();
        assert_eq!(kept, [m(MatchOp::Equal, "job", "x")]);
        assert!(match_external_labels(vec![m(MatchOp::RegexMatch, "cluster", "us.*")], &ext).is_none());
        // A negative matcher on an absent external label is for the data.
        let kept = match_external_labels(vec![m(MatchOp::NotEqual, "env", "dev")], &ext).unwrap();
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn request_fields() {
        let req = SeriesRequest {
            min_time: 1,
            max_time: 2,
            matchers: vec![LabelMatcher {
                r#type: label_matcher::Type::Eq as i32,
                name: "cluster".into(),
                value: "eu".into(),
            }],
            partial_response_disabled: true,
            limit: 0,
            response_batch_size: 0,
            ..Default::default()
        };
        let q = SeriesQuery::from_request(&req).unwrap();
        assert!(q.abort_on_partial);
        assert_eq!(q.limit, None);
        assert_eq!(q.batch_size, 1);
        assert!(!q.shard.is_sharded());
        let err = q
            .against_external_labels(&Labels::from_pairs([("cluster", "eu")]))
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(err.message(), NO_MATCHERS);
        assert!(
            q.against_external_labels(&Labels::from_pairs([("cluster", "us")]))
                .unwrap()
                .is_none()
        );
        assert!(aborts_on_partial_response(false, PartialResponseStrategy::Abort as i32));
        assert!(!aborts_on_partial_response(false, PartialResponseStrategy::Warn as i32));
    }

    fn series(n: usize) -> Vec<Result<Series, Status>> {
        (0..n)
            .map(|i| {
                Ok(Series {
                    labels: labels_to_proto(&Labels::from_pairs([("i", format!("{i:03}"))])),
                    chunks: vec![],
                })
            })
            .collect()
    }

    async fn collect(s: SeriesStream) -> (Vec<SeriesResponse>, Option<Status>) {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(item) = s.next().await {
            match item {
                Ok(r) => out.push(r),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn batching_and_limit() {
        let (frames_out, err) = collect(frame_series(futures::stream::iter(series(5)), 1, None)).await;
        assert!(err.is_none());
        assert_eq!(frames_out.len(), 5);

        let (batched, _) = collect(frame_series(futures::stream::iter(series(5)), 2, None)).await;
        let sizes: Vec<usize> = batched.iter().map(|r| frames(r.clone()).len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 5);
        assert!(sizes.iter().all(|&n| n <= 2));
        assert!(
            batched
                .iter()
                .all(|r| matches!(r.result, Some(crate::proto::thanos::series_response::Result::Batch(_))))
        );

        let (limited, _) = collect(frame_series(futures::stream::iter(series(5)), 64, Some(3))).await;
        let all: Vec<SeriesFrame> = limited.into_iter().flat_map(frames).collect();
        assert_eq!(all.len(), 3);

        let mut with_err = series(2);
        with_err.push(Err(Status::internal("boom")));
        with_err.extend(series(2));
        let (before, err) = collect(frame_series(futures::stream::iter(with_err), 64, None)).await;
        assert_eq!(err.unwrap().message(), "boom");
        assert_eq!(before.into_iter().flat_map(frames).count(), 2);
    }
}
