//! Plans: which blocks to write (time ranges) and what series fill them (a profile).
//! The named plans follow thanosbench's profiles (`pkg/blockgen/profiles.go`).

use crate::GenerateError;

pub const SECOND: i64 = 1000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;
/// Blocks and `--max-time` align to Prometheus's 2h block boundaries.
pub const BLOCK_ALIGN: i64 = 2 * HOUR;
/// Mean lifetime of a seed-profile target before a new instance replaces it.
pub const DEFAULT_CHURN: i64 = 2 * DAY;

/// What series a plan writes.
#[derive(Clone, Debug, PartialEq)]
pub enum Profile {
    /// thanosbench's `continuous` profile: `targets` apps × `metrics_per_target` gauges
    /// `{__blockgen_target__="<n>", __name__="continuous_app_metric<i>"}`, values between
    /// 10M and 200M with a jitter redrawn every hour.
    Continuous { targets: usize, metrics_per_target: usize },
    /// What scraping the seed's demo-app produces, per target: `up`,
    /// `total_http_requests`, `instances_active_session{instance_name}`, the classic
    /// histogram `request_duration_seconds{status_code}` (`_bucket`/`_sum`/`_count`),
    /// `request_error_counts{status_code}` and the native histograms
    /// `request_duration_seconds_native` (schema -1) and `_native2` (schema 0) by
    /// `method` and `code`. Counters reset when a target restarts; every `churn` (on
    /// average) a target is replaced by a new instance, so series come and go.
    Seed { targets: usize, churn: Option<i64> },
}

impl Profile {
    pub fn continuous(targets: usize, metrics_per_target: usize) -> Self {
        Profile::Continuous {
            targets,
            metrics_per_target,
        }
    }

    pub fn seed(targets: usize) -> Self {
        Profile::Seed {
            targets,
            churn: Some(DEFAULT_CHURN),
        }
    }

    /// Series a scrape of one target yields in this profile.
    pub fn series_per_target(&self) -> usize {
        match self {
            Profile::Continuous { metrics_per_target, .. } => *metrics_per_target,
            Profile::Seed { .. } => crate::profile::SEED_SERIES_PER_TARGET,
        }
    }

    pub fn targets(&self) -> usize {
        match self {
            Profile::Continuous { targets, .. } | Profile::Seed { targets, .. } => *targets,
        }
    }
}

/// A block time range, `[min_time, max_time)` in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRange {
    pub min_time: i64,
    pub max_time: i64,
}

/// A full plan: block ranges (oldest first, adjacent), scrape interval and profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub name: String,
    pub blocks: Vec<BlockRange>,
    pub interval: i64,
    pub profile: Profile,
}

/// thanosbench's 30-day ranges, newest first.
const RANGES_30D: [i64; 9] = [
    2 * HOUR,
    2 * HOUR,
    2 * HOUR,
    8 * HOUR,
    176 * HOUR,
    176 * HOUR,
    176 * HOUR,
    176 * HOUR,
    2 * HOUR,
];
/// thanosbench's 1-week ranges, newest first.
const RANGES_1W: [i64; 9] = [
    2 * HOUR,
    2 * HOUR,
    2 * HOUR,
    8 * HOUR,
    8 * HOUR,
    48 * HOUR,
    48 * HOUR,
    48 * HOUR,
    2 * HOUR,
];

/// Names accepted by [`Plan::named`].
pub const PLAN_NAMES: [&str; 7] = [
    "continuous-30d-tiny",
    "continuous-1w-small",
    "continuous-1w-1series-10000apps",
    "seed-30d",
    "seed-1w",
    "seed",
    "realistic",
];

/// `t` rounded up to the next 2h boundary (thanosbench's `--max-time` default applied to now).
pub fn align_up(t: i64) -> i64 {
    t.div_euclid(BLOCK_ALIGN)
        .saturating_mul(BLOCK_ALIGN)
        .saturating_add(BLOCK_ALIGN)
}

/// `t` rounded down to a 2h boundary.
pub fn align_down(t: i64) -> i64 {
    t.div_euclid(BLOCK_ALIGN).saturating_mul(BLOCK_ALIGN)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ranges_ending_at(max_time: i64, newest_first: &[i64]) -> Vec<BlockRange> {
    let mut out = Vec::with_capacity(newest_first.len());
    let mut end = max_time;
    for &r in newest_first {
        out.push(BlockRange {
            min_time: end - r,
            max_time: end,
        });
        end -= r;
    }
    out.reverse();
    out
}

impl Plan {
    /// A named plan whose newest block ends at `max_time`.
    pub fn named(name: &str, max_time: i64) -> Result<Plan, GenerateError> {
        let (ranges, profile): (&[i64], Profile) = match name {
            "continuous-30d-tiny" => (&RANGES_30D, Profile::continuous(1, 5)),
            "continuous-1w-small" => (&RANGES_1W, Profile::continuous(100, 100)),
            "continuous-1w-1series-10000apps" => (&RANGES_1W, Profile::continuous(10_000, 1)),
            "seed-30d" | "seed" | "realistic" => (&RANGES_30D, Profile::seed(3)),
            "seed-1w" => (&RANGES_1W, Profile::seed(3)),
            other => {
                return Err(GenerateError::Plan(format!(
                    "unknown plan {other:?}; known plans: {}",
                    PLAN_NAMES.join(", ")
                )));
            }
        };
        let plan = Plan {
            name: name.to_string(),
            blocks: ranges_ending_at(max_time, ranges),
            interval: 15 * SECOND,
            profile,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// `duration` of history ending at `max_time` in blocks of `block_duration` (the
    /// oldest one shorter when the duration is not a multiple).
    pub fn custom(
        profile: Profile,
        duration: i64,
        block_duration: i64,
        interval: i64,
        max_time: i64,
    ) -> Result<Plan, GenerateError> {
        if duration <= 0 || block_duration <= 0 {
            return Err(GenerateError::Plan(format!(
                "duration ({duration} ms) and block duration ({block_duration} ms) must be positive"
            )));
        }
        let full = duration / block_duration;
        if full > 100_000 {
            return Err(GenerateError::Plan(format!(
                "{full} blocks of {block_duration} ms is too many; use a longer --block-duration"
            )));
        }
        let mut ranges = vec![block_duration; full as usize];
        if duration % block_duration != 0 {
            ranges.push(duration % block_duration);
        }
        let plan = Plan {
            name: "custom".into(),
            blocks: ranges_ending_at(max_time, &ranges),
            interval,
            profile,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Replaces the block ranges with `duration` ending at the current newest block's end.
    pub fn with_duration(self, duration: i64, block_duration: i64) -> Result<Plan, GenerateError> {
        let max = self.max_time();
        let name = self.name.clone();
        let mut p = Plan::custom(self.profile, duration, block_duration, self.interval, max)?;
        p.name = name;
        Ok(p)
    }

    pub fn min_time(&self) -> i64 {
        self.blocks.first().map_or(0, |b| b.min_time)
    }

    pub fn max_time(&self) -> i64 {
        self.blocks.last().map_or(0, |b| b.max_time)
    }

    /// Checks the plan is something we can write.
    pub fn validate(&self) -> Result<(), GenerateError> {
        if self.interval < 1 {
            return Err(GenerateError::Plan(format!(
                "scrape interval must be at least 1 ms, got {}",
                self.interval
            )));
        }
        if self.blocks.is_empty() {
            return Err(GenerateError::Plan("plan has no blocks".into()));
        }
        for w in self.blocks.windows(2) {
            if w[0].max_time > w[1].min_time {
                return Err(GenerateError::Plan(
                    "plan blocks overlap or are not oldest first".into(),
                ));
            }
        }
        for b in &self.blocks {
            if b.min_time >= b.max_time {
                return Err(GenerateError::Plan(format!(
                    "empty block range [{}, {})",
                    b.min_time, b.max_time
                )));
            }
        }
        let targets = self.profile.targets();
        let per = self.profile.series_per_target();
        if targets == 0 || per == 0 {
            return Err(GenerateError::Plan(
                "the profile has no series (targets and series must be > 0)".into(),
            ));
        }
        if targets.saturating_mul(per) > 50_000_000 {
            return Err(GenerateError::Plan(format!(
                "{targets} targets × {per} series is more than 50M series"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_day_tiny_matches_thanosbench() {
        let max = align_up(1_626_739_200_000 - 1);
        let p = Plan::named("continuous-30d-tiny", max).unwrap();
        assert_eq!(p.blocks.len(), 9);
        assert_eq!(p.max_time() - p.min_time(), 30 * DAY);
        let newest: Vec<i64> = p
            .blocks
            .iter()
            .rev()
            .map(|b| (b.max_time - b.min_time) / HOUR)
            .collect();
        assert_eq!(newest, vec![2, 2, 2, 8, 176, 176, 176, 176, 2]);
        assert_eq!(p.profile, Profile::continuous(1, 5));
        assert!(p.blocks.windows(2).all(|w| w[0].max_time == w[1].min_time));
    }

    #[test]
    fn one_week_small() {
        let p = Plan::named("continuous-1w-small", 0).unwrap();
        assert_eq!(p.max_time() - p.min_time(), 7 * DAY);
        assert_eq!(p.profile.targets() * p.profile.series_per_target(), 10_000);
    }

    #[test]
    fn custom_with_remainder_and_errors() {
        let p = Plan::custom(Profile::seed(2), 5 * HOUR, 2 * HOUR, 15 * SECOND, 10 * HOUR).unwrap();
        let lens: Vec<i64> = p.blocks.iter().map(|b| b.max_time - b.min_time).collect();
        assert_eq!(lens, vec![HOUR, 2 * HOUR, 2 * HOUR]);
        assert_eq!(p.min_time(), 5 * HOUR);
        assert!(Plan::custom(Profile::seed(2), 0, 2 * HOUR, 15 * SECOND, 0).is_err());
        assert!(Plan::named("nope", 0).is_err());
        assert_eq!(align_up(BLOCK_ALIGN), 2 * BLOCK_ALIGN);
        assert_eq!(align_up(1), BLOCK_ALIGN);
    }
}
