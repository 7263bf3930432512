//! The demo service's six metrics and their exposition.

mod classic;
mod gofloat;
mod native;
pub mod proto;
pub mod text;

use std::collections::BTreeMap;
use std::sync::Mutex;

pub use classic::ClassicHistogram;
pub use gofloat::format_go_float;
pub use native::NativeHistogram;

/// client_golang's `DefBuckets`, which the seed's classic histogram uses.
pub const DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Bucket factor 4 gives schema -1; factor 2 gives schema 0 (the seed's two native histograms).
pub const NATIVE_SCHEMA_FACTOR_4: i32 = -1;
pub const NATIVE_SCHEMA_FACTOR_2: i32 = 0;
pub const NATIVE_MAX_BUCKETS: usize = 100;

#[derive(Debug, Default)]
struct State {
    total_http_requests: f64,
    instances_active_session: BTreeMap<String, f64>,
    request_duration_seconds: BTreeMap<String, ClassicHistogram>,
    request_error_counts: BTreeMap<String, f64>,
    /// Keyed by (method, code).
    request_duration_seconds_native: BTreeMap<(String, String), NativeHistogram>,
    request_duration_seconds_native2: BTreeMap<(String, String), NativeHistogram>,
}

/// All six metrics behind one lock: every request touches several of them together, and a
/// scrape must see them consistent with each other.
#[derive(Debug, Default)]
pub struct DemoMetrics {
    state: Mutex<State>,
}

/// One metric family ready for encoding, format-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: FamilyKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FamilyKind {
    Counter(Vec<(Vec<(&'static str, String)>, f64)>),
    Gauge(Vec<(Vec<(&'static str, String)>, f64)>),
    Classic(Vec<(Vec<(&'static str, String)>, ClassicHistogram)>),
    Native(Vec<(Vec<(&'static str, String)>, NativeHistogram)>),
}

impl DemoMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counters half-updated in a way
        // that matters for a demo; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn inc_total_requests(&self) {
        self.lock().total_http_requests += 1.0;
    }

    pub fn set_active_sessions(&self, instance_name: &str, value: f64) {
        self.lock()
            .instances_active_session
            .insert(instance_name.to_string(), value);
    }

    pub fn add_active_sessions(&self, instance_name: &str, delta: f64) -> f64 {
        let mut s = self.lock();
        let v = s
            .instances_active_session
            .entry(instance_name.to_string())
            .or_insert(0.0);
        *v += delta;
        *v
    }

    pub fn active_sessions(&self, instance_name: &str) -> Option<f64> {
        self.lock().instances_active_session.get(instance_name).copied()
    }

    /// Records one finished request: its duration in the three histograms, and an error
    /// count when the status is 400 or above.
    pub fn observe_request(&self, method: &str, status: u16, seconds: f64) {
        let code = status.to_string();
        let mut s = self.lock();
        s.request_duration_seconds
            .entry(code.clone())
            .or_insert_with(|| ClassicHistogram::new(&DEFAULT_BUCKETS))
            .observe(seconds);
        let key = (method.to_string(), code.clone());
        s.request_duration_seconds_native
            .entry(key.clone())
            .or_insert_with(|| NativeHistogram::new(NATIVE_SCHEMA_FACTOR_4, NATIVE_MAX_BUCKETS))
            .observe(seconds);
        s.request_duration_seconds_native2
            .entry(key)
            .or_insert_with(|| NativeHistogram::new(NATIVE_SCHEMA_FACTOR_2, NATIVE_MAX_BUCKETS))
            .observe(seconds);
        if status >= 400 {
            *s.request_error_counts.entry(code).or_insert(0.0) += 1.0;
        }
    }

    /// A consistent copy of every family, sorted by name like client_golang's Gather.
    pub fn gather(&self) -> Vec<Family> {
        let s = self.lock();
        let one = |name: &'static str, v: &str| vec![(name, v.to_string())];
        let two = |m: &str, c: &str| vec![("code", c.to_string()), ("method", m.to_string())];
        let mut out = vec![
            Family {
                name: "instances_active_session",
                help: "Number of active sessions per instance.",
                kind: FamilyKind::Gauge(
                    s.instances_active_session
                        .iter()
                        .map(|(k, v)| (one("instance_name", k), *v))
                        .collect(),
                ),
            },
            Family {
                name: "request_duration_seconds",
                help: "Duration of HTTP requests in seconds.",
                kind: FamilyKind::Classic(
                    s.request_duration_seconds
                        .iter()
                        .map(|(k, h)| (one("status_code", k), h.clone()))
                        .collect(),
                ),
            },
            Family {
                name: "request_duration_seconds_native",
                help: "Duration of HTTP requests in seconds, as a native histogram (bucket factor 4).",
                kind: FamilyKind::Native(
                    s.request_duration_seconds_native
                        .iter()
                        .map(|((m, c), h)| (two(m, c), h.clone()))
                        .collect(),
                ),
            },
            Family {
                name: "request_duration_seconds_native2",
                help: "Duration of HTTP requests in seconds, as a native histogram (bucket factor 2).",
                kind: FamilyKind::Native(
                    s.request_duration_seconds_native2
                        .iter()
                        .map(|((m, c), h)| (two(m, c), h.clone()))
                        .collect(),
                ),
            },
            Family {
                name: "request_error_counts",
                help: "Number of requests answered with an error status.",
                kind: FamilyKind::Counter(
                    s.request_error_counts
                        .iter()
                        .map(|(k, v)| (one("status_code", k), *v))
                        .collect(),
                ),
            },
            Family {
                name: "total_http_requests",
                help: "Total number of HTTP requests.",
                kind: FamilyKind::Counter(vec![(vec![], s.total_http_requests)]),
            },
        ];
        // client_golang omits vectors that have no children yet.
        out.retain(|f| !f.is_empty());
        out
    }
}

impl Family {
    fn is_empty(&self) -> bool {
        match &self.kind {
            FamilyKind::Counter(v) | FamilyKind::Gauge(v) => v.is_empty(),
            FamilyKind::Classic(v) => v.is_empty(),
            FamilyKind::Native(v) => v.is_empty(),
        }
    }
}
