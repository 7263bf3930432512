//! Expands a [`Profile`] into targets (scrape endpoints with their phase, restarts and
//! lifetime) and series specifications (labels, owning target, lifetime and value kind).

use hypnos_model::Labels;

use crate::plan::{HOUR, Plan, Profile};
use crate::rng::{Rng, hash, hash_str};

/// Status codes the seed's handler picks from, each with probability 1/4.
pub const CODES: [&str; 4] = ["200", "400", "502", "504"];
/// HTTP methods of the requests (the populator POSTs, users GET).
pub const METHODS: [&str; 2] = ["GET", "POST"];
/// Share of POST requests.
pub const POST_SHARE: f64 = 0.2;
/// client_golang's default buckets, used by `request_duration_seconds`.
pub const DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Sessions the seed's populator starts with.
pub const SESSION_INSTANCES: [(&str, f64); 3] = [("development", 5.0), ("staging", 10.0), ("production", 15.0)];
/// up, total_http_requests, 3 session gauges, 4×(12 buckets + sum + count), 3 error
/// counters, 2 native histograms × 2 methods × 4 codes.
pub const SEED_SERIES_PER_TARGET: usize = 1 + 1 + 3 + 4 * 14 + 3 + 16;

/// One scrape endpoint (one process lifetime for the seed profile).
#[derive(Clone, Debug)]
pub struct Target {
    /// Scrapes happen at `k * interval + phase`.
    pub phase: i64,
    /// Steps `k` at which the process restarted: counters start again from zero.
    pub restarts: Vec<i64>,
    /// Seeds the target's traffic.
    pub seed: u64,
    /// Requests per second on average.
    pub rate: f64,
}

/// How a series' values evolve.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// thanosbench's gauge: a base value in `[min, max]` plus a jitter redrawn every `change` ms.
    Gauge {
        min: f64,
        max: f64,
        jitter: f64,
        change: i64,
    },
    /// A small integer gauge moving by a few units about every 50 s (active sessions).
    Walk { start: f64 },
    /// `up`: always 1.
    Up,
    /// A counter of requests whose status code index is in the bit mask.
    Requests { codes: u8 },
    /// `_bucket{le}` of the classic histogram for one status code.
    Bucket { code: u8, le: f64 },
    /// `_sum` of the classic histogram for one status code.
    Sum { code: u8 },
    /// `_count` of the classic histogram for one status code.
    Count { code: u8 },
    /// A native histogram of request durations for one method and code.
    Native { method: u8, code: u8, schema: i32 },
}

impl Kind {
    pub fn is_histogram(&self) -> bool {
        matches!(self, Kind::Native { .. })
    }
}

/// One series of the plan.
#[derive(Clone, Debug)]
pub struct SeriesSpec {
    pub labels: Labels,
    pub target: u32,
    /// Samples are scraped at base times in `[birth, death)`; a staleness marker follows at
    /// the first scrape at or after `death` unless `death` is `i64::MAX`.
    pub birth: i64,
    pub death: i64,
    pub kind: Kind,
    pub seed: u64,
}

/// Targets and series (sorted by labels) of a plan.
#[derive(Clone, Debug)]
pub struct Expanded {
    pub targets: Vec<Target>,
    pub series: Vec<SeriesSpec>,
}

pub fn expand(plan: &Plan, seed: u64) -> Expanded {
    let mut out = match &plan.profile {
        Profile::Continuous {
            targets,
            metrics_per_target,
        } => continuous(*targets, *metrics_per_target, seed),
        Profile::Seed { targets, churn } => seed_profile(plan, *targets, *churn, seed),
    };
    out.series.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

fn continuous(targets: usize, metrics: usize, seed: u64) -> Expanded {
    let mut ts = Vec::with_capacity(targets);
    let mut series = Vec::with_capacity(targets * metrics);
    for n in 0..targets {
        ts.push(Target {
            phase: 0,
            restarts: Vec::new(),
            seed: hash(&[seed, n as u64]),
            rate: 0.0,
        });
        let target_value = (targets - n).to_string();
        for m in 0..metrics {
            let labels = Labels::from_pairs([
                ("__blockgen_target__", target_value.clone()),
                ("__name__", format!("continuous_app_metric{m}")),
            ]);
            series.push(SeriesSpec {
                seed: hash(&[seed, labels.stable_hash()]),
                labels,
                target: n as u32,
                birth: i64::MIN,
                death: i64::MAX,
                kind: Kind::Gauge {
                    min: 10_000_000.0,
                    max: 200_000_000.0,
                    jitter: 30_000_000.0,
                    change: HOUR,
                },
            });
        }
    }
    Expanded { targets: ts, series }
}

/// A pod-like instance name for generation `gen` of slot `slot`.
fn instance_name(seed: u64, slot: usize, generation: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = hash(&[seed, slot as u64, generation as u64, 0x1d]);
    let mut suffix = String::with_capacity(5);
    for _ in 0..5 {
        suffix.push(char::from(ALPHABET[(h % ALPHABET.len() as u64) as usize]));
        h /= ALPHABET.len() as u64;
    }
    format!("demo-app-{slot}-{suffix}:8080")
}

fn seed_profile(plan: &Plan, slots: usize, churn: Option<i64>, seed: u64) -> Expanded {
    let (start, end) = (plan.min_time(), plan.max_time());
    let interval = plan.interval;
    let mut targets = Vec::new();
    let mut series = Vec::new();
    for slot in 0..slots {
        let mut rng = Rng::new(hash(&[seed, slot as u64, hash_str("slot")]));
        // Lifetimes: the first instance predates the plan, later ones replace it.
        let mut lifetimes = Vec::new();
        let mut birth = i64::MIN;
        loop {
            let next = match churn {
                Some(mean) if mean > 0 => {
                    let from = if birth == i64::MIN { start } else { birth };
                    let gap = rng.exponential(mean as f64).max(interval as f64 * 4.0);
                    from.saturating_add(gap as i64)
                }
                _ => i64::MAX,
            };
            if next >= end {
                lifetimes.push((birth, i64::MAX));
                break;
            }
            lifetimes.push((birth, next));
            birth = next;
            if lifetimes.len() > 10_000 {
                lifetimes.push((birth, i64::MAX));
                break;
            }
        }
        for (generation, &(birth, death)) in lifetimes.iter().enumerate() {
            let tseed = hash(&[seed, slot as u64, generation as u64]);
            let mut trng = Rng::new(tseed);
            // Leave room for a few ms of replica jitter before the next scrape.
            let phase_room = (interval - 20).max(1) as u64;
            let phase = trng.below(phase_room) as i64;
            let from = birth.max(start);
            let to = death.min(end);
            let mut restarts = Vec::new();
            let mut t = from;
            loop {
                t = t.saturating_add(trng.exponential(3.0 * 24.0 * HOUR as f64) as i64);
                if t >= to {
                    break;
                }
                restarts.push((t - phase).div_euclid(interval));
            }
            let rate = 0.5 + 2.5 * trng.float();
            let target = targets.len() as u32;
            targets.push(Target {
                phase,
                restarts,
                seed: tseed,
                rate,
            });
            let instance = instance_name(seed, slot, generation);
            let base = |name: &str| -> Vec<(String, String)> {
                vec![
                    ("__name__".into(), name.to_string()),
                    ("instance".into(), instance.clone()),
                    ("job".into(), "demo-app".into()),
                ]
            };
            let mut push = |mut pairs: Vec<(String, String)>, extra: &[(&str, String)], kind: Kind| {
                for (n, v) in extra {
                    pairs.push((n.to_string(), v.clone()));
                }
                let labels = Labels::from_pairs(pairs);
                series.push(SeriesSpec {
                    seed: hash(&[seed, labels.stable_hash()]),
                    labels,
                    target,
                    birth,
                    death,
                    kind,
                });
            };
            push(base("up"), &[], Kind::Up);
            push(base("total_http_requests"), &[], Kind::Requests { codes: 0b1111 });
            for (name, start) in SESSION_INSTANCES {
                push(
                    base("instances_active_session"),
                    &[("instance_name", name.to_string())],
                    Kind::Walk { start },
                );
            }
            for (ci, code) in CODES.iter().enumerate() {
                let code_label = ("status_code", code.to_string());
                for le in DEFAULT_BUCKETS.iter().copied().chain([f64::INFINITY]) {
                    push(
                        base("request_duration_seconds_bucket"),
                        &[code_label.clone(), ("le", format_le(le))],
                        Kind::Bucket { code: ci as u8, le },
                    );
                }
                push(
                    base("request_duration_seconds_sum"),
                    std::slice::from_ref(&code_label),
                    Kind::Sum { code: ci as u8 },
                );
                push(
                    base("request_duration_seconds_count"),
                    std::slice::from_ref(&code_label),
                    Kind::Count { code: ci as u8 },
                );
                if ci > 0 {
                    push(
                        base("request_error_counts"),
                        std::slice::from_ref(&code_label),
                        Kind::Requests { codes: 1 << ci },
                    );
                }
                for (mi, method) in METHODS.iter().enumerate() {
                    for (name, schema) in [
                        ("request_duration_seconds_native", -1),
                        ("request_duration_seconds_native2", 0),
                    ] {
                        push(
                            base(name),
                            &[("code", code.to_string()), ("method", method.to_string())],
                            Kind::Native {
                                method: mi as u8,
                                code: ci as u8,
                                schema,
                            },
                        );
                    }
                }
            }
        }
    }
    Expanded { targets, series }
}

/// `le` values as client_golang writes them.
pub fn format_le(le: f64) -> String {
    if le.is_infinite() {
        "+Inf".to_string()
    } else {
        format!("{le}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DAY, Plan};

    #[test]
    fn seed_profile_has_the_seed_metrics_and_churn() {
        let plan = Plan::named("seed-30d", 30 * DAY).unwrap();
        let e = expand(&plan, 1);
        let first_target: Vec<&SeriesSpec> = e.series.iter().filter(|s| s.target == 0).collect();
        assert_eq!(first_target.len(), SEED_SERIES_PER_TARGET);
        let names: std::collections::BTreeSet<&str> = e.series.iter().filter_map(|s| s.labels.metric_name()).collect();
        for n in [
            "total_http_requests",
            "instances_active_session",
            "request_duration_seconds_bucket",
            "request_duration_seconds_sum",
            "request_duration_seconds_count",
            "request_error_counts",
            "request_duration_seconds_native",
            "request_duration_seconds_native2",
            "up",
        ] {
            assert!(names.contains(n), "{n} missing");
        }
        // With a 2-day mean churn over 30 days, instances get replaced.
        assert!(e.targets.len() > 3);
        assert!(e.series.windows(2).all(|w| w[0].labels < w[1].labels));
        assert_eq!(format_le(0.005), "0.005");
        assert_eq!(format_le(1.0), "1");
        assert_eq!(format_le(f64::INFINITY), "+Inf");
    }

    #[test]
    fn continuous_labels_like_thanosbench() {
        let plan = Plan::named("continuous-30d-tiny", 30 * DAY).unwrap();
        let e = expand(&plan, 1);
        assert_eq!(e.series.len(), 5);
        assert_eq!(
            e.series[0].labels.to_string(),
            r#"continuous_app_metric0{__blockgen_target__="1"}"#
        );
    }
}
