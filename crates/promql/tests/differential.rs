//! Differential test against a real Prometheus (Debian's 2.42 `prometheus` and `promtool`):
//! the same OpenMetrics data goes into Prometheus's TSDB (via `promtool tsdb
//! create-blocks-from openmetrics`) and into our in-memory storage; every query of
//! tests/data/differential_queries.txt runs as instant and range query on both, and results
//! must agree within a relative tolerance of 1e-6. Fails when the binaries are missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use hypnos_model::Labels;
use hypnos_promql::{Engine, MemStorage, Value, promqltest::almost_equal};

#[path = "support/differential_data.rs"]
mod differential_data;
use differential_data::*;

struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

fn start_prometheus(dir: &Path, data: &str) -> Option<Prometheus> {
    let om = dir.join("data.om");
    std::fs::write(&om, data).unwrap();
    let tsdb = dir.join("tsdb");
    let status = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
        .arg(&om)
        .arg(&tsdb)
        .status()
        .ok()?;
    assert!(status.success(), "promtool failed");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=100y")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let p = Prometheus { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some((200, _)) = http_get(port, "/-/ready") {
            return Some(p);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("prometheus did not become ready");
}

/// A result in a form both sides can be compared in.
#[derive(Debug)]
enum Norm {
    Scalar(f64),
    String(String),
    Series(BTreeMap<String, Vec<(i64, f64)>>),
    Error(String),
}

fn parse_value(v: &serde_json::Value) -> (i64, f64) {
    let t = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
    let s = v[1].as_str().unwrap();
    let f = match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        s => s.parse().unwrap(),
    };
    (t, f)
}

fn labels_key(m: &serde_json::Map<String, serde_json::Value>) -> String {
    let l = Labels::from_pairs(m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())));
    format!("{l:?}")
}

fn prometheus_query(port: u16, path: &str) -> Norm {
    let (_, body) = http_get(port, path).expect("prometheus request");
    let j: serde_json::Value = serde_json::from_str(&body).expect("json");
    if j["status"] != "success" {
        return Norm::Error(j["errorType"].as_str().unwrap_or("").to_string());
    }
    let data = &j["data"];
    match data["resultType"].as_str().unwrap() {
        "scalar" => Norm::Scalar(parse_value(&data["result"]).1),
        "string" => Norm::String(data["result"][1].as_str().unwrap().to_string()),
        "vector" => Norm::Series(
            data["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        labels_key(s["metric"].as_object().unwrap()),
                        vec![parse_value(&s["value"])],
                    )
                })
                .collect(),
        ),
        _ => Norm::Series(
            data["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        labels_key(s["metric"].as_object().unwrap()),
                        s["values"].as_array().unwrap().iter().map(parse_value).collect(),
                    )
                })
                .collect(),
        ),
    }
}

fn ours(r: Result<hypnos_promql::QueryResult, hypnos_promql::QueryError>) -> Norm {
    match r {
        Err(e) => Norm::Error(e.error_type().as_str().to_string()),
        Ok(r) => match r.value {
            Value::Scalar { v, .. } => Norm::Scalar(v),
            Value::String { s, .. } => Norm::String(s),
            Value::Vector(v) => Norm::Series(
                v.iter()
                    .map(|s| (format!("{:?}", s.metric), vec![(s.t, s.f)]))
                    .collect(),
            ),
            Value::Matrix(m) => Norm::Series(
                m.iter()
                    .map(|s| (format!("{:?}", s.metric), s.floats.iter().map(|p| (p.t, p.v)).collect()))
                    .collect(),
            ),
        },
    }
}

fn same(a: &Norm, b: &Norm) -> bool {
    match (a, b) {
        (Norm::Scalar(x), Norm::Scalar(y)) => almost_equal(*x, *y),
        (Norm::String(x), Norm::String(y)) => x == y,
        (Norm::Error(x), Norm::Error(y)) => x == y,
        (Norm::Series(x), Norm::Series(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, pts)| {
                    y.get(k).is_some_and(|o| {
                        o.len() == pts.len() && o.iter().zip(pts).all(|(p, q)| p.0 == q.0 && almost_equal(p.1, q.1))
                    })
                })
        }
        _ => false,
    }
}

fn have(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn agrees_with_prometheus() {
    // Never a silent skip: CI installs the package, and so must a developer.
    assert!(
        have("prometheus") && have("promtool"),
        "this test runs the real Prometheus 2.42: apt-get install -y prometheus"
    );
    let data = generate();
    let dir = tempfile::tempdir().unwrap();
    let prom = start_prometheus(dir.path(), &openmetrics(&data)).expect("start prometheus");
    let mut storage = MemStorage::new();
    for (labels, samples) in &data {
        let l = Labels::from_pairs(labels.iter().map(|(k, v)| (*k, v.clone())));
        for (t, v) in samples {
            storage.add_float(&l, *t, *v);
        }
    }
    let engine = Engine::default();
    let queries =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/differential_queries.txt"))
            .unwrap();
    let queries: Vec<&str> = queries
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(queries.len() >= 150);
    // Every window starts after the first sample: extrapolation at a series' start differs
    // between 2.x and 3.x (3.x caps the extrapolation before clamping at the zero point).
    let instants = [T0 + 75 * 60_000 + 7_000, T0 + 112 * 60_000 + 7_000];
    let (start, end, step) = (T0 + 65 * 60_000 + 7_000, T0 + 118 * 60_000 + 7_000, 60_000);
    let mut failures = Vec::new();
    let mut compared = 0;
    for q in &queries {
        for &t in &instants {
            let path = format!("/api/v1/query?query={}&time={}", urlencode(q), fmt_ts(t));
            let theirs = prometheus_query(prom.port, &path);
            let mine = ours(block_on(engine.instant_query(&storage, q, t, None)));
            compared += 1;
            if !same(&theirs, &mine) {
                failures.push(format!(
                    "instant {q} @ {t}:\n  prometheus: {theirs:?}\n  ours:       {mine:?}"
                ));
            }
        }
        let path = format!(
            "/api/v1/query_range?query={}&start={}&end={}&step={}",
            urlencode(q),
            fmt_ts(start),
            fmt_ts(end),
            step / 1000
        );
        let theirs = prometheus_query(prom.port, &path);
        let mine = ours(block_on(engine.range_query(&storage, q, start, end, step, None)));
        compared += 1;
        if !same(&theirs, &mine) {
            failures.push(format!("range {q}:\n  prometheus: {theirs:?}\n  ours:       {mine:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} comparisons differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
