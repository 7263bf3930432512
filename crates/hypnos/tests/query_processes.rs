//! `hypnos query` as a process on 127.0.0.1 over in-memory StoreAPI endpoints served by the
//! test: partial response with a down endpoint, Prometheus's own client (`promtool query`)
//! against it unchanged, and a querier over queriers answering like the flat one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{ChildGuard, free_port, hypnos_bin, require_tool, wait_http_ok};
use hypnos_model::Labels;
use hypnos_query::memstore::MemStore;
use serde_json::{Value, json};

const STEP: i64 = 15_000;
const START: i64 = 1_700_000_000_000;
const END: i64 = START + 3_600_000;

/// Replica `r` of `up` and a counter, every 15 s for an hour; replica "1" misses 20 min..30 min
/// and scrapes 1 s later than replica "0".
fn replica(r: &str) -> MemStore {
    let mut s = MemStore::new(Labels::from_pairs([("cluster", "eu"), ("replica", r)]));
    let offset = if r == "0" { 0 } else { 1000 };
    let times: Vec<i64> = (START..=END)
        .step_by(STEP as usize)
        .filter(|t| r == "0" || !(START + 1_200_000..START + 1_800_000).contains(t))
        .map(|t| t + offset)
        .collect();
    for instance in ["a", "b"] {
        let up = Labels::from_pairs([("__name__", "up"), ("job", "demo"), ("instance", instance)]);
        s.add(&up, times.iter().map(|&t| (t, 1.0)).collect());
        let c = Labels::from_pairs([("__name__", "requests_total"), ("job", "demo"), ("instance", instance)]);
        s.add(&c, times.iter().map(|&t| (t, ((t - START) / 1000) as f64)).collect());
    }
    s
}

async fn serve(store: MemStore) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    store.serve(l);
    addr
}

struct Querier {
    url: String,
    grpc: String,
    _guard: ChildGuard,
}

fn start_querier(name: &str, dir: &Path, endpoints: &[String], extra: &[&str]) -> Querier {
    let http = free_port();
    let grpc = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(hypnos_bin());
    cmd.args([
        "query",
        &format!("--http-address=127.0.0.1:{http}"),
        &format!("--grpc-address={grpc}"),
        "--query.replica-label=replica",
    ]);
    for e in endpoints {
        cmd.arg(format!("--endpoint={e}"));
    }
    cmd.args(extra);
    let mut guard = ChildGuard::spawn(name, &mut cmd, dir);
    let url = format!("http://127.0.0.1:{http}");
    wait_http_ok(&format!("{url}/-/ready"), Duration::from_secs(30), &mut guard);
    Querier {
        url,
        grpc,
        _guard: guard,
    }
}

async fn get(url: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new().get(url).query(params).send().await.unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}")),
    )
}

fn secs(t: i64) -> String {
    format!("{}", t / 1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_endpoint_warns_with_partial_response_and_fails_without() {
    let dir = tempfile::tempdir().unwrap();
    let live = serve(replica("0")).await;
    let down = format!("127.0.0.1:{}", free_port());
    let q = tokio::task::block_in_place(|| start_querier("query", dir.path(), &[live.clone(), down.clone()], &[]));
    let t = secs(START + 600_000);
    let (code, v) = get(&format!("{}/api/v1/query", q.url), &[("query", "up"), ("time", &t)]).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 2, "{v}");
    let w = v["warnings"].as_array().expect("warnings");
    assert!(w.iter().any(|w| w.as_str().unwrap().contains(&down)), "{v}");

    let (code, v) = get(
        &format!("{}/api/v1/query", q.url),
        &[("query", "up"), ("time", &t), ("partial_response", "false")],
    )
    .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["errorType"].as_str()),
        (Some("error"), Some("execution"))
    );
    assert!(v["error"].as_str().unwrap().contains(&down), "{v}");

    // The same through the flag.
    let strict = tokio::task::block_in_place(|| {
        start_querier(
            "query-strict",
            dir.path(),
            &[live.clone(), down.clone()],
            &["--query.partial-response=false"],
        )
    });
    let (code, v) = get(
        &format!("{}/api/v1/query", strict.url),
        &[("query", "up"), ("time", &t)],
    )
    .await;
    assert_eq!(code, 422, "{v}");
    let (code, v) = get(
        &format!("{}/api/v1/query", strict.url),
        &[("query", "up"), ("time", &t), ("partial_response", "true")],
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert!(v["warnings"].is_array(), "{v}");

    // The stores page shows the down endpoint with its error.
    let (_, v) = get(&format!("{}/api/v1/stores", q.url), &[]).await;
    let text = v.to_string();
    assert!(text.contains(&down) && text.contains(&live), "{v}");
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new(require_tool("promtool")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_queries_work_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let eps = vec![serve(replica("0")).await, serve(replica("1")).await];
    let q = tokio::task::block_in_place(|| start_querier("query", dir.path(), &eps, &[]));
    let url = q.url.clone();
    let t = secs(START + 1_500_000);
    tokio::task::block_in_place(|| {
        let out = promtool(&["query", "instant", "--time", &t, &url, "up"]);
        assert_eq!(
            out.trim(),
            format!(
                "up{{cluster=\"eu\", instance=\"a\", job=\"demo\"}} => 1 @[{t}]\nup{{cluster=\"eu\", instance=\"b\", job=\"demo\"}} => 1 @[{t}]"
            ),
        );
        let out = promtool(&["query", "instant", "-o", "json", "--time", &t, &url, "sum(up)"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["value"][1], "2", "{out}");
        let out = promtool(&[
            "query",
            "range",
            "--start",
            &secs(START + 1_140_000),
            "--end",
            &secs(START + 1_260_000),
            "--step",
            "1m",
            &url,
            "sum(up)",
        ]);
        assert!(out.contains("{} =>\n2 @["), "{out}");
        assert_eq!(out.matches(" @[").count(), 3, "{out}");
        // promtool's default window is now ± 9999 h; the data is older, so give one.
        let (from, to) = (secs(START), secs(END));
        let out = promtool(&[
            "query",
            "series",
            "--match",
            "requests_total",
            "--start",
            &from,
            "--end",
            &to,
            &url,
        ]);
        assert_eq!(
            out.trim(),
            "{__name__=\"requests_total\", cluster=\"eu\", instance=\"a\", job=\"demo\"}\n{__name__=\"requests_total\", cluster=\"eu\", instance=\"b\", job=\"demo\"}"
        );
        let out = promtool(&["query", "labels", "--start", &from, "--end", &to, &url, "__name__"]);
        assert_eq!(out.trim(), "requests_total\nup");
        let out = promtool(&["query", "labels", "--start", &from, "--end", &to, &url, "instance"]);
        assert_eq!(out.trim(), "a\nb");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn querier_over_queriers_answers_like_the_flat_one() {
    let dir = tempfile::tempdir().unwrap();
    let r0 = serve(replica("0")).await;
    let r1 = serve(replica("1")).await;
    let (flat, top, _lower) = tokio::task::block_in_place(|| {
        let flat = start_querier("flat", dir.path(), &[r0.clone(), r1.clone()], &[]);
        // One lower querier per replica, and a top querier over both.
        let lower0 = start_querier("lower0", dir.path(), std::slice::from_ref(&r0), &[]);
        let lower1 = start_querier("lower1", dir.path(), std::slice::from_ref(&r1), &[]);
        let top = start_querier("top", dir.path(), &[lower0.grpc.clone(), lower1.grpc.clone()], &[]);
        (flat, top, (lower0, lower1))
    });
    let t_gap = secs(START + 1_500_000);
    let (s, e) = (secs(START + 600_000), secs(START + 3_000_000));
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/api/v1/query", vec![("query", "up"), ("time", &t_gap)]),
        (
            "/api/v1/query",
            vec![("query", "rate(requests_total[5m])"), ("time", &t_gap)],
        ),
        (
            "/api/v1/query",
            vec![("query", "up"), ("time", &t_gap), ("dedup", "false")],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "sum by (instance) (up)"),
                ("start", &s),
                ("end", &e),
                ("step", "30"),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "increase(requests_total[2m])"),
                ("start", &s),
                ("end", &e),
                ("step", "45"),
            ],
        ),
        ("/api/v1/series", vec![("match[]", "up")]),
        ("/api/v1/labels", vec![]),
        ("/api/v1/label/instance/values", vec![]),
    ];
    for (path, params) in &cases {
        let (c1, v1) = get(&format!("{}{path}", flat.url), params).await;
        let (c2, v2) = get(&format!("{}{path}", top.url), params).await;
        assert_eq!(c1, 200, "{path} {params:?}: {v1}");
        assert_eq!((c1, v1), (c2, v2), "{path} {params:?}");
    }
    // The gap of replica 1 is filled: a value at every step across it.
    let (_, v) = get(
        &format!("{}/api/v1/query_range", top.url),
        &[("query", "sum(up)"), ("start", &s), ("end", &e), ("step", "15")],
    )
    .await;
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 161, "{v}");
    assert!(values.iter().all(|p| p[1] == json!("2")), "{v}");
    // The top querier's stores page lists the two lower queriers as `query` components.
    let (_, v) = get(&format!("{}/api/v1/stores", top.url), &[]).await;
    assert_eq!(v["data"]["query"].as_array().map(Vec::len), Some(2), "{v}");
}
