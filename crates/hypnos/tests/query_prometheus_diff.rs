//! Differential test of `hypnos query` against a real Prometheus 2.42 on the same data: the
//! data set of crates/promql/tests/differential.rs goes into Prometheus's TSDB (via `promtool
//! tsdb create-blocks-from openmetrics`) and into two in-memory StoreAPI replicas
//! (replica="0" complete, replica="1" shifted by 1 ms with an 8-minute gap). `hypnos query
//! --query.replica-label=replica` over both replicas must answer every query of
//! crates/promql/tests/data/differential_queries.txt like Prometheus does (same series, no
//! replica label, values within 1e-6 relative), as instant and as range query, through the
//! HTTP API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::{ChildGuard, Prometheus, free_port, hypnos_bin, require_tool, wait_http_ok};
use hypnos_model::Labels;
use hypnos_query::memstore::MemStore;

#[path = "../../promql/tests/support/differential_data.rs"]
mod differential_data;
use differential_data::*;

/// Relative tolerance of value comparisons (Prometheus's promqltest uses 1e-6 too).
fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    diff <= 1e-6 * a.abs().max(b.abs()) || diff < 1e-12
}

/// A result in a form both sides can be compared in.
#[derive(Debug)]
enum Norm {
    Scalar(i64, f64),
    String(String),
    Series(BTreeMap<String, Vec<(i64, f64)>>),
    Error(String),
}

fn parse_value(v: &serde_json::Value) -> (i64, f64) {
    let t = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
    let f = match v[1].as_str().unwrap() {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        s => s.parse().unwrap(),
    };
    (t, f)
}

fn labels_key(m: &serde_json::Value) -> String {
    let m = m.as_object().unwrap();
    let l = Labels::from_pairs(m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())));
    format!("{l:?}")
}

fn normalize(j: &serde_json::Value) -> Norm {
    if j["status"] != "success" {
        return Norm::Error(j["errorType"].as_str().unwrap_or("").to_string());
    }
    let data = &j["data"];
    let result = &data["result"];
    match data["resultType"].as_str().unwrap() {
        "scalar" => {
            let (t, v) = parse_value(result);
            Norm::Scalar(t, v)
        }
        "string" => Norm::String(result[1].as_str().unwrap().to_string()),
        "vector" => Norm::Series(
            result
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (labels_key(&s["metric"]), vec![parse_value(&s["value"])]))
                .collect(),
        ),
        _ => Norm::Series(
            result
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        labels_key(&s["metric"]),
                        s["values"].as_array().unwrap().iter().map(parse_value).collect(),
                    )
                })
                .collect(),
        ),
    }
}

fn same(a: &Norm, b: &Norm) -> bool {
    match (a, b) {
        (Norm::Scalar(t1, x), Norm::Scalar(t2, y)) => t1 == t2 && almost_equal(*x, *y),
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

async fn get_json(client: &reqwest::Client, url: &str, params: &[(&str, String)]) -> serde_json::Value {
    let r = client.get(url).query(params).send().await.unwrap();
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url} {params:?}: {e}: {text}"))
}

/// Replica "1" lacks this window (ms after T0), so the querier must fill it from replica "0".
const GAP: std::ops::Range<i64> = 66 * 60_000..74 * 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hypnos_query_over_ha_replicas_agrees_with_prometheus() {
    require_tool("promtool");
    let data = generate();
    let dir = tempfile::tempdir().unwrap();

    // Prometheus with the data as TSDB blocks.
    let om = dir.path().join("data.om");
    std::fs::write(&om, openmetrics(&data)).unwrap();
    let prom_data = dir.path().join("prom-data");
    let status = Command::new(require_tool("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
        .arg(&om)
        .arg(&prom_data)
        .status()
        .unwrap();
    assert!(status.success(), "promtool tsdb create-blocks-from failed");

    // Two replicas of the same data behind StoreAPI.
    let mut r0 = MemStore::new(Labels::from_pairs([("replica", "0")]));
    let mut r1 = MemStore::new(Labels::from_pairs([("replica", "1")]));
    for (labels, samples) in &data {
        let l = Labels::from_pairs(labels.iter().map(|(k, v)| (*k, v.clone())));
        r0.add(&l, samples.clone());
        r1.add(
            &l,
            samples
                .iter()
                .filter(|(t, _)| !GAP.contains(&(t - T0)))
                .map(|&(t, v)| (t + 1, v))
                .collect(),
        );
    }
    let mut endpoints = Vec::new();
    for store in [r0, r1] {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        endpoints.push(format!("--endpoint={}", l.local_addr().unwrap()));
        store.serve(l);
    }

    let prom = tokio::task::block_in_place(|| {
        Prometheus::start(
            dir.path(),
            "global:\n  scrape_interval: 1h\n",
            &["--storage.tsdb.retention.time=100y"],
        )
    });

    let http = free_port();
    let mut cmd = Command::new(hypnos_bin());
    cmd.args([
        "query",
        &format!("--http-address=127.0.0.1:{http}"),
        &format!("--grpc-address=127.0.0.1:{}", free_port()),
        "--query.replica-label=replica",
    ])
    .args(&endpoints);
    let mut querier = ChildGuard::spawn("hypnos-query", &mut cmd, dir.path());
    let hypnos = format!("http://127.0.0.1:{http}");
    tokio::task::block_in_place(|| wait_http_ok(&format!("{hypnos}/-/ready"), Duration::from_secs(30), &mut querier));

    let client = reqwest::Client::new();

    // Each series once, without the replica label; dedup=false shows both replicas.
    let up = get_json(
        &client,
        &format!("{hypnos}/api/v1/query"),
        &[("query", "up".into()), ("time", fmt_ts(T0 + 70 * 60_000))],
    )
    .await;
    assert_eq!(up["data"]["result"].as_array().unwrap().len(), 6, "{up}");
    assert!(up["data"]["result"][0]["metric"].get("replica").is_none(), "{up}");
    let both = get_json(
        &client,
        &format!("{hypnos}/api/v1/query"),
        &[
            ("query", "up".into()),
            ("time", fmt_ts(T0 + 30 * 60_000)),
            ("dedup", "false".into()),
        ],
    )
    .await;
    assert_eq!(both["data"]["result"].as_array().unwrap().len(), 12, "{both}");

    let queries = include_str!("../../promql/tests/data/differential_queries.txt");
    let queries: Vec<&str> = queries
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(queries.len() >= 100, "query list too short: {}", queries.len());
    // Eval times inside and outside replica 1's gap, off every step boundary (see the list's
    // header); every window starts after the first sample, as in the engine's own differential
    // test (2.x and 3.x extrapolate differently at a series' start).
    let instants = [
        T0 + 70 * 60_000 + 7_000,
        T0 + 75 * 60_000 + 7_000,
        T0 + 112 * 60_000 + 7_000,
    ];
    let (start, end, step) = (T0 + 65 * 60_000 + 7_000, T0 + 118 * 60_000 + 7_000, 60_000);
    let mut failures = Vec::new();
    let mut compared = 0;
    for q in &queries {
        let mut requests: Vec<(&str, Vec<(&str, String)>)> = instants
            .iter()
            .map(|&t| ("/api/v1/query", vec![("query", q.to_string()), ("time", fmt_ts(t))]))
            .collect();
        requests.push((
            "/api/v1/query_range",
            vec![
                ("query", q.to_string()),
                ("start", fmt_ts(start)),
                ("end", fmt_ts(end)),
                ("step", (step / 1000).to_string()),
            ],
        ));
        for (path, params) in requests {
            let theirs = normalize(&get_json(&client, &format!("{}{path}", prom.url), &params).await);
            let mine_json = get_json(&client, &format!("{hypnos}{path}"), &params).await;
            let mine = normalize(&mine_json);
            compared += 1;
            if !same(&theirs, &mine) {
                failures.push(format!(
                    "{path} {params:?}:\n  prometheus: {theirs:?}\n  hypnos:     {mine:?}"
                ));
            }
        }
    }
    // Metadata endpoints too.
    for (path, params) in [
        ("/api/v1/labels", vec![]),
        ("/api/v1/label/job/values", vec![]),
        ("/api/v1/series", vec![("match[]", "up".to_string())]),
        (
            "/api/v1/series",
            vec![("match[]", "{__name__=~\"queue.*\"}".to_string())],
        ),
    ] {
        let theirs = get_json(&client, &format!("{}{path}", prom.url), &params).await;
        let mine = get_json(&client, &format!("{hypnos}{path}"), &params).await;
        compared += 1;
        if theirs["data"] != mine["data"] {
            failures.push(format!(
                "{path} {params:?}:\n  prometheus: {theirs}\n  hypnos:     {mine}"
            ));
        }
    }
    eprintln!("{compared} comparisons, {} differ", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {compared} comparisons differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
