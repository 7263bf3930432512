//! The querier's web UI end to end, in headless Chromium: `hypnos demo-app` scraped by an HA pair
//! of real Prometheus 2.42 servers (external labels `cluster`, `replica`), each behind a
//! `hypnos sidecar`, both behind `hypnos query --query.replica-label=replica`. ui/tests/e2e.mjs
//! (playwright-core driving Debian's chromium) opens `http://<querier>/`, runs
//! `rate(total_http_requests[1m])`, checks the table rows, toggles deduplication off and sees the
//! `replica` label appear, draws the graph, shows a parse error, a native histogram and metric
//! name completion, and finds both sidecars healthy on the stores page. Then one sidecar is
//! stopped and the page must say so: a DOWN row with its error on the stores page.
//! Screenshots go to `<target>/ui-screenshots/querier/`.
//!
//! Needs `prometheus`, `node`, `/usr/bin/chromium` (or $CHROMIUM) and `ui/node_modules`
//! (`cd ui && npm ci`); fails loudly, never skips, when one is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ChildGuard, Prometheus, free_port, hypnos_bin, require_tool, wait_http_ok};
use hypnos_ui::testing::BrowserTools;

/// node, chromium and the e2e script, or a panic naming the install step.
fn browser_tools() -> BrowserTools {
    BrowserTools::find().unwrap_or_else(|e| panic!("{e}"))
}

/// Status code of a plain GET, or None when nothing answers.
fn reqwest_status(url: &str) -> Option<u16> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async { reqwest::get(url).await.ok().map(|r| r.status().as_u16()) })
}

fn screenshot_dir(name: &str) -> PathBuf {
    hypnos_ui::testing::screenshot_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), name).unwrap()
}

#[test]
fn querier_ui_in_chromium() {
    let BrowserTools {
        node,
        chromium,
        script,
        repo_root: _,
    } = browser_tools();
    require_tool("prometheus");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();

    let app_port = free_port();
    let mut app = ChildGuard::spawn(
        "demo-app",
        Command::new(hypnos_bin()).args([
            "demo-app",
            &format!("--listen-address=127.0.0.1:{app_port}"),
            "--min-delay=1ms",
            "--max-delay=10ms",
            "--self-load=20",
        ]),
        root,
    );
    wait_http_ok(
        &format!("http://127.0.0.1:{app_port}/-/healthy"),
        Duration::from_secs(30),
        &mut app,
    );

    // The HA pair: same targets, external labels differ only in `replica`.
    let mut proms = Vec::new();
    for replica in ["0", "1"] {
        let pdir = root.join(format!("prom{replica}"));
        std::fs::create_dir_all(&pdir).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    cluster: eu1\n    replica: \"{replica}\"\nscrape_configs:\n  - job_name: demo-app\n    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n"
        );
        proms.push((
            pdir.clone(),
            Prometheus::start(&pdir, &config, &["--enable-feature=native-histograms"]),
        ));
    }

    let mut sidecars = Vec::new();
    for (i, (pdir, prom)) in proms.iter().enumerate() {
        let (http, grpc) = (free_port(), free_port());
        let mut guard = ChildGuard::spawn(
            &format!("sidecar-{i}"),
            Command::new(hypnos_bin()).args([
                "sidecar",
                &format!("--prometheus.url={}", prom.url),
                &format!("--tsdb.path={}", pdir.join("prom-data").display()),
                &format!("--http-address=127.0.0.1:{http}"),
                &format!("--grpc-address=127.0.0.1:{grpc}"),
            ]),
            root,
        );
        wait_http_ok(
            &format!("http://127.0.0.1:{http}/-/ready"),
            Duration::from_secs(60),
            &mut guard,
        );
        sidecars.push((guard, format!("127.0.0.1:{grpc}")));
    }

    let query_http = free_port();
    let mut query_cmd = Command::new(hypnos_bin());
    query_cmd.args([
        "query".to_string(),
        format!("--http-address=127.0.0.1:{query_http}"),
        format!("--grpc-address=127.0.0.1:{}", free_port()),
        "--query.replica-label=replica".to_string(),
        "--endpoint.info-interval=1s".to_string(),
    ]);
    for (_, grpc) in &sidecars {
        query_cmd.arg(format!("--endpoint={grpc}"));
    }
    let mut query = ChildGuard::spawn("query", &mut query_cmd, root);
    let base = format!("http://127.0.0.1:{query_http}");
    wait_http_ok(&format!("{base}/-/ready"), Duration::from_secs(60), &mut query);
    assert!(
        matches!(reqwest_status(&format!("{base}/")), Some(200)),
        "`hypnos query` does not serve the UI at /: merge hypnos_ui::router() into its HTTP router"
    );

    let shots = screenshot_dir("querier");
    let down = sidecars[1].1.clone();
    let config = serde_json::json!({
        "base": base,
        "screenshots": shots,
        "chromium": chromium,
        "query": "rate(total_http_requests[1m])",
        "rowLabel": "instance",
        "replicaLabel": "replica",
        "histogram": "request_duration_seconds_native",
        "completion": "total_http",
        "stores": { "minHealthy": 2, "kinds": ["sidecar"] },
        "downStore": down,
    });
    let mut e2e = Command::new(node)
        .arg(script)
        .env("E2E_CONFIG", config.to_string())
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The script pauses once everything healthy was checked; stop a sidecar and let it go on.
    let mut stdin = Some(e2e.stdin.take().unwrap());
    let stdout = BufReader::new(e2e.stdout.take().unwrap());
    let mut transcript = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        println!("{line}");
        transcript.push_str(&line);
        transcript.push('\n');
        if line.starts_with("WAITING down-store") {
            let (mut guard, _) = sidecars.remove(1);
            let _ = guard.child.kill();
            let _ = guard.child.wait();
            if let Some(mut input) = stdin.take() {
                writeln!(input, "go").unwrap();
            }
        }
    }
    let output = e2e.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser test failed:\n{transcript}\n{stderr}\nquery log:\n{}",
        query.log_tail()
    );
    for name in [
        "01-table",
        "02-dedup-off",
        "03-graph",
        "08-stores",
        "09-query-warning",
        "10-store-down",
    ] {
        let png = shots.join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&png).map(|m| m.len() > 1000).unwrap_or(false),
            "{} missing",
            png.display()
        );
    }
}
