//! The data set of the differential tests against Prometheus 2.42: counters with a reset,
//! `up` flapping, a classic histogram, gauges and tie-free queues, with jittered timestamps.
//! Shared by crates/promql/tests/differential.rs (engine over MemStorage) and
//! crates/hypnos/tests/query_prometheus_diff.rs (the querier over two StoreAPI replicas), so
//! the query list's assumptions about the data (jitter, eval times off step boundaries) hold
//! for both. Included with `#[path]`; not every includer uses every item.
#![allow(dead_code)]

/// First sample time (ms). Not a multiple of any step, so that with sample jitter of
/// 1–4 s no sample or subquery step falls exactly on a window boundary.
pub const T0: i64 = 1_700_000_000_000;
pub const INTERVAL: i64 = 15_000;
pub const SAMPLES: i64 = 480; // two hours

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn float(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
}

/// Series as (labels, samples) with jittered timestamps.
/// A series: label pairs (name first) and (timestamp ms, value) samples.
pub type TestSeries = (Vec<(&'static str, String)>, Vec<(i64, f64)>);

pub fn generate() -> Vec<TestSeries> {
    let mut rng = Rng(42);
    let mut out = Vec::new();
    let times = |rng: &mut Rng| -> Vec<i64> {
        (0..SAMPLES)
            .map(|k| T0 + k * INTERVAL + 1000 + (rng.next() % 3000) as i64)
            .collect()
    };
    for job in ["api", "web"] {
        for instance in ["0", "1", "2"] {
            for method in ["get", "post"] {
                let ts = times(&mut rng);
                let mut v = 0.0;
                let reset_at = if job == "web" && instance == "2" && method == "post" {
                    300
                } else {
                    usize::MAX
                };
                let samples = ts
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| {
                        if i == reset_at {
                            v = 0.0;
                        }
                        v += (rng.next() % 20) as f64 + rng.float();
                        (t, v)
                    })
                    .collect();
                out.push((
                    vec![
                        ("__name__", "http_requests_total".to_string()),
                        ("job", job.to_string()),
                        ("instance", instance.to_string()),
                        ("method", method.to_string()),
                    ],
                    samples,
                ));
            }
            let ts = times(&mut rng);
            let up = if job == "web" && instance == "1" { 0.0 } else { 1.0 };
            out.push((
                vec![
                    ("__name__", "up".to_string()),
                    ("job", job.to_string()),
                    ("instance", instance.to_string()),
                ],
                ts.iter()
                    .enumerate()
                    .map(|(i, &t)| (t, if i > 280 && i < 330 { 1.0 - up } else { up }))
                    .collect(),
            ));
        }
        // A classic histogram.
        let ts = times(&mut rng);
        let bounds = ["0.1", "0.5", "1", "5", "+Inf"];
        let mut counts = [0.0f64; 5];
        let mut sum = 0.0;
        let mut per_bound: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 5];
        let mut count_s = Vec::new();
        let mut sum_s = Vec::new();
        for &t in &ts {
            for _ in 0..(rng.next() % 10) {
                let obs = rng.float() * 6.0;
                sum += obs;
                for (b, c) in bounds.iter().zip(counts.iter_mut()) {
                    let ub: f64 = if *b == "+Inf" {
                        f64::INFINITY
                    } else {
                        b.parse().unwrap()
                    };
                    if obs <= ub {
                        *c += 1.0;
                    }
                }
            }
            for (k, c) in counts.iter().enumerate() {
                per_bound[k].push((t, *c));
            }
            count_s.push((t, counts[4]));
            sum_s.push((t, sum));
        }
        for (k, b) in bounds.iter().enumerate() {
            out.push((
                vec![
                    ("__name__", "request_duration_seconds_bucket".to_string()),
                    ("job", job.to_string()),
                    ("le", b.to_string()),
                ],
                per_bound[k].clone(),
            ));
        }
        out.push((
            vec![
                ("__name__", "request_duration_seconds_count".to_string()),
                ("job", job.to_string()),
            ],
            count_s,
        ));
        out.push((
            vec![
                ("__name__", "request_duration_seconds_sum".to_string()),
                ("job", job.to_string()),
            ],
            sum_s,
        ));
    }
    for instance in ["0", "1", "2"] {
        for zone in ["a", "b"] {
            let ts = times(&mut rng);
            let phase = rng.float() * 6.0;
            out.push((
                vec![
                    ("__name__", "node_temperature_celsius".to_string()),
                    ("instance", instance.to_string()),
                    ("zone", zone.to_string()),
                ],
                ts.iter()
                    .enumerate()
                    .map(|(i, &t)| (t, 20.0 + 5.0 * (i as f64 / 20.0 + phase).sin() + rng.float()))
                    .collect(),
            ));
        }
    }
    // Distinct fractions per queue keep topk/bottomk free of ties.
    for (k, q) in ["q1", "q2", "q3", "q4"].into_iter().enumerate() {
        let ts = times(&mut rng);
        out.push((
            vec![("__name__", "queue_depth".to_string()), ("queue", q.to_string())],
            ts.iter()
                .map(|&t| (t, (rng.next() % 21) as f64 + k as f64 * 0.125))
                .collect(),
        ));
    }
    out
}

pub fn fmt_ts(t: i64) -> String {
    format!("{}.{:03}", t.div_euclid(1000), t.rem_euclid(1000))
}

pub fn openmetrics(data: &[TestSeries]) -> String {
    let mut s = String::new();
    for (labels, samples) in data {
        let name = &labels[0].1;
        let rest: Vec<String> = labels[1..].iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        for (t, v) in samples {
            s.push_str(&format!("{name}{{{}}} {v} {}\n", rest.join(","), fmt_ts(*t)));
        }
    }
    s.push_str("# EOF\n");
    s
}
