//! Native histograms end to end: `hypnos demo-app` (native histograms over the protobuf
//! exposition) → Prometheus 2.42 with `--enable-feature=native-histograms` → `hypnos sidecar`
//! → `hypnos query`. For the same evaluation times, the querier's JSON (minus the external
//! labels) equals Prometheus's own HTTP API answer: raw selectors as instant and range
//! queries, `histogram_count`, `histogram_sum`, `rate` and aggregations of native histograms,
//! and float queries of the same scrapes (counters, gauges, a classic histogram_quantile);
//! bucket boundaries exactly, floats within 1e-9 relative.
//!
//! `histogram_quantile` is the one deliberate difference: the querier follows Prometheus 3,
//! which interpolates within an exponential bucket on a log scale, where 2.42 interpolated
//! linearly. There the test checks that both answers lie in the same bucket of the same rate
//! histogram, at the same fraction of it (linear for 2.42, on a log scale for the querier).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    eventually, free_port, get_json, now_ms, prometheus_config, secs, start_component, start_demo_app,
    start_prometheus_at, start_querier,
};
use serde_json::Value;

const EXTERNAL: [(&str, &str); 2] = [("cluster", "hist"), ("replica", "0")];

/// Series keyed by their labels, external labels removed.
fn normalized(result: &[Value]) -> BTreeMap<String, Value> {
    result
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if let Some(metric) = s["metric"].as_object_mut() {
                for (k, _) in EXTERNAL {
                    metric.remove(k);
                }
            }
            (s["metric"].to_string(), s)
        })
        .collect()
}

fn close(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => a == b,
    }
}

/// Compares two answers: timestamps and bucket boundaries exactly, sample values, counts
/// and sums within 1e-9 relative. `Err` says where they differ.
fn compare(path: &str, a: &Value, b: &Value) -> Result<(), String> {
    let mismatch = || Err(format!("{path}: querier {a} vs Prometheus {b}"));
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.keys().ne(y.keys()) {
                return mismatch();
            }
            for (k, v) in x {
                compare(&format!("{path}.{k}"), v, &y[k])?;
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return mismatch();
            }
            let bucket = path.ends_with(".buckets");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if bucket {
                    // [boundary rule, lower, upper, count]
                    let (v, w) = (v.as_array().unwrap(), w.as_array().unwrap());
                    if v.len() != 4 || w.len() != 4 || v[..3] != w[..3] {
                        return Err(format!("{path}[{i}]: bucket {v:?} vs {w:?}"));
                    }
                    compare(&format!("{path}[{i}].count"), &v[3], &w[3])?;
                } else {
                    compare(&format!("{path}[{i}]"), v, w)?;
                }
            }
            Ok(())
        }
        (Value::String(x), Value::String(y)) if close(x, y) => Ok(()),
        (x, y) if x == y => Ok(()),
        _ => mismatch(),
    }
}

async fn answer(url: &str, path: &str, params: &[(&str, String)]) -> BTreeMap<String, Value> {
    let (code, v) = get_json(&format!("{url}{path}"), params).await;
    assert_eq!(code, 200, "{url}{path} {params:?}: {v}");
    assert_eq!(v["status"], "success", "{v}");
    assert!(v.get("warnings").is_none(), "{v}");
    normalized(v["data"]["result"].as_array().unwrap())
}

/// The (lower, upper) bounds of the bucket of `h` (a JSON native histogram) containing `x`.
fn bucket_of(h: &Value, x: f64) -> (f64, f64) {
    for b in h["buckets"].as_array().unwrap() {
        let lower: f64 = b[1].as_str().unwrap().parse().unwrap();
        let upper: f64 = b[2].as_str().unwrap().parse().unwrap();
        if lower <= x && x <= upper {
            return (lower, upper);
        }
    }
    panic!("{x} in no bucket of {h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn querier_answers_native_histogram_queries_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (_app, app) = tokio::task::block_in_place(|| start_demo_app(dir.path(), &["--self-load=30"]));
    let port = free_port();
    let prom = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        prometheus_config("1s", &EXTERNAL, &[("demo-app", app.trim_start_matches("http://"))]),
    )
    .unwrap();
    let (_prometheus, sidecar) = tokio::task::block_in_place(|| {
        let p = start_prometheus_at(dir.path(), port, "prometheus", &["--enable-feature=native-histograms"]);
        let s = start_component(
            "sidecar",
            dir.path(),
            "sidecar",
            &[
                format!("--prometheus.url={prom}"),
                format!("--tsdb.path={}", dir.path().join("prom-data").display()),
            ],
            Duration::from_secs(30),
        );
        (p, s)
    });
    let querier = tokio::task::block_in_place(|| start_querier("query", dir.path(), &[&sidecar.grpc], &[]));

    // Twenty seconds of scrapes, so that rates have plenty of samples.
    let last_sample = eventually(
        "twenty scrapes of native histograms",
        Duration::from_secs(60),
        || async {
            let v = answer(
                &prom,
                "/api/v1/query",
                &[("query", "request_duration_seconds_native[30s]".into())],
            )
            .await;
            let points = v
                .values()
                .next()
                .map_or(0, |s| s["histograms"].as_array().unwrap().len());
            if points >= 20 {
                let last = v.values().next().unwrap()["histograms"]
                    .as_array()
                    .unwrap()
                    .last()
                    .unwrap()[0]
                    .as_f64()
                    .unwrap();
                Ok((last * 1000.0).round() as i64)
            } else {
                Err(format!("{points} histograms so far"))
            }
        },
    )
    .await;
    // Half a scrape after a sample: no sample sits on a window boundary, where Prometheus
    // 2.42 (closed range selectors) and 3 (left-open) would differ.
    let t = last_sample + 500;
    while now_ms() <= t + 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let instant = |q: &str| vec![("query", q.to_string()), ("time", secs(t))];
    let range = |q: &str| {
        vec![
            ("query", q.to_string()),
            ("start", secs(t - 15_000)),
            ("end", secs(t)),
            ("step", "1".into()),
        ]
    };
    let exprs = [
        "request_duration_seconds_native",
        "request_duration_seconds_native2",
        "histogram_count(request_duration_seconds_native)",
        "histogram_sum(request_duration_seconds_native2)",
        "rate(request_duration_seconds_native[1m])",
        "rate(request_duration_seconds_native2[5s])",
        "histogram_count(rate(request_duration_seconds_native[1m]))",
        "histogram_sum(rate(request_duration_seconds_native[1m]))",
        "sum by (method) (rate(request_duration_seconds_native2[1m]))",
        "histogram_count(sum(increase(request_duration_seconds_native[10s])))",
        // The floats of the same scrapes, classic histogram included.
        "rate(total_http_requests[1m])",
        "sum by (status_code) (rate(request_error_counts[30s]))",
        "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[1m])))",
        "instances_active_session",
    ];
    let mut cases: Vec<(&str, Vec<(&str, String)>)> =
        vec![("/api/v1/query", instant("request_duration_seconds_native[10s]"))];
    for e in exprs {
        cases.push(("/api/v1/query", instant(e)));
        cases.push(("/api/v1/query_range", range(e)));
    }
    let mut compared = 0;
    for (path, params) in &cases {
        let want = answer(&prom, path, params).await;
        let got = answer(&querier.http, path, params).await;
        assert!(!want.is_empty(), "Prometheus has data for {params:?}");
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{path} {params:?}"
        );
        for (k, w) in &want {
            compare(k, &got[k], w).unwrap_or_else(|e| panic!("{path} {params:?}: {e}"));
            compared += 1;
        }
    }
    eprintln!("{} queries, {compared} series compared", cases.len());

    // histogram_quantile: the same bucket of the same rate histogram.
    let rates = answer(
        &prom,
        "/api/v1/query",
        &instant("rate(request_duration_seconds_native[1m])"),
    )
    .await;
    let q = "histogram_quantile(0.9, rate(request_duration_seconds_native[1m]))";
    let want = answer(&prom, "/api/v1/query", &instant(q)).await;
    let got = answer(&querier.http, "/api/v1/query", &instant(q)).await;
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (k, w) in &want {
        let g: f64 = got[k]["value"][1].as_str().unwrap().parse().unwrap();
        let w: f64 = w["value"][1].as_str().unwrap().parse().unwrap();
        // The rate's series keeps the metric name; the quantile's drops it.
        let rate = rates
            .values()
            .find(|r| {
                let mut m = r["metric"].clone();
                m.as_object_mut().unwrap().remove("__name__");
                serde_json::from_str::<Value>(k).unwrap() == m
            })
            .unwrap_or_else(|| panic!("no rate for {k}"));
        let bucket = bucket_of(&rate["histogram"][1], w);
        assert!(
            bucket.0 <= g && g <= bucket.1,
            "{k}: querier {g} outside Prometheus's bucket {bucket:?} of {w}"
        );
        // Prometheus 2.42's linear interpolation gives the rank's fraction within the bucket;
        // Prometheus 3 puts the same fraction on a log scale.
        let (l, u) = bucket;
        if l > 0.0 && u.is_finite() {
            let fraction = (w - l) / (u - l);
            let log_scale = l * (u / l).powf(fraction);
            assert!(
                (g - log_scale).abs() <= 1e-9 * g.abs(),
                "{k}: querier {g}, log-scale interpolation of Prometheus's rank {log_scale}"
            );
        }
        eprintln!("{k}: histogram_quantile querier {g}, Prometheus 2.42 {w}, bucket {bucket:?}");
    }
}
