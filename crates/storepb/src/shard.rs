//! Which series belong to a query shard (`SeriesRequest.shard_info`), with Thanos's rule
//! (`pkg/store/storepb/shard_info.go`): xxhash64 over `name 0xff value 0xff` of the sharding
//! labels, and the series belongs to the shard when `hash % total_shards == shard_index`.

use std::collections::HashSet;

use hypnos_model::Labels;

use crate::proto::thanos::ShardInfo;

/// A compiled [`ShardInfo`]; matches everything when the request is not sharded.
#[derive(Debug, Clone, Default)]
pub struct ShardMatcher {
    shard: Option<Shard>,
}

#[derive(Debug, Clone)]
struct Shard {
    labels: HashSet<String>,
    by: bool,
    total: u64,
    index: u64,
}

impl ShardMatcher {
    /// A request without shard info, or with `total_shards < 1`, is not sharded.
    pub fn new(info: Option<&ShardInfo>) -> Self {
        let shard = info.filter(|i| i.total_shards >= 1).map(|i| Shard {
            labels: i.labels.iter().cloned().collect(),
            by: i.by,
            total: i.total_shards.unsigned_abs(),
            // A negative index matches no shard, as the unsigned conversion in Go does in practice.
            index: u64::try_from(i.shard_index).unwrap_or(u64::MAX),
        });
        ShardMatcher { shard }
    }

    pub fn is_sharded(&self) -> bool {
        self.shard.is_some()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        let Some(s) = &self.shard else { return true };
        let mut buf = Vec::with_capacity(128);
        for l in labels {
            // `by`: only the listed labels count; `without`: only the unlisted ones.
            if s.labels.contains(&l.name) == s.by {
                buf.extend_from_slice(l.name.as_bytes());
                buf.push(0xff);
                buf.extend_from_slice(l.value.as_bytes());
                buf.push(0xff);
            }
        }
        xxhash_rust::xxh64::xxh64(&buf, 0) % s.total == s.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(index: i64, total: i64, by: bool, labels: &[&str]) -> ShardInfo {
        ShardInfo {
            shard_index: index,
            total_shards: total,
            by,
            labels: labels.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn unsharded_matches_all() {
        let l = Labels::from_pairs([("a", "1")]);
        assert!(ShardMatcher::new(None).matches(&l));
        assert!(ShardMatcher::new(Some(&info(0, 0, true, &[]))).matches(&l));
    }

    #[test]
    fn every_series_lands_in_exactly_one_shard() {
        for i in 0..50 {
            let l = Labels::from_pairs([("__name__", "up"), ("instance", &*format!("host{i}")), ("job", "x")]);
            for (by, names) in [(true, vec!["instance"]), (false, vec!["job"])] {
                let hits = (0..3)
                    .filter(|&s| ShardMatcher::new(Some(&info(s, 3, by, &names))).matches(&l))
                    .count();
                assert_eq!(hits, 1);
            }
        }
    }

    #[test]
    fn by_hashes_only_the_listed_labels() {
        let a = Labels::from_pairs([("instance", "h1"), ("job", "x")]);
        let b = Labels::from_pairs([("instance", "h1"), ("job", "y")]);
        for s in 0..4 {
            let m = ShardMatcher::new(Some(&info(s, 4, true, &["instance"])));
            assert_eq!(m.matches(&a), m.matches(&b));
        }
        // The hash is xxhash64("instance\xffh1\xff").
        let h = xxhash_rust::xxh64::xxh64(b"instance\xffh1\xff", 0);
        let m = ShardMatcher::new(Some(&info((h % 4) as i64, 4, true, &["instance"])));
        assert!(m.matches(&a));
    }
}
