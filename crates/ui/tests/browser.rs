//! The embedded UI in headless Chromium against real data: `hypnos demo-app` (in-process) scraped
//! by a real Prometheus 2.42, with the UI router served in front of Prometheus's HTTP API (the same
//! API the querier speaks). Drives ui/tests/e2e.mjs (playwright-core + Debian's chromium): runs
//! `rate(total_http_requests[1m])`, checks table rows, a drawn graph, a parse error with its
//! position, a native histogram's buckets and metric-name completion; screenshots go to
//! `<target>/ui-screenshots/prometheus/`.
//!
//! Needs `prometheus`, `node`, `/usr/bin/chromium` (or $CHROMIUM) and `ui/node_modules` (`cd ui &&
//! npm ci`); fails loudly, never skips, when one is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hypnos_ui::testing::BrowserTools;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn browser_tools() -> BrowserTools {
    BrowserTools::find().unwrap_or_else(|e| panic!("{e}"))
}

fn screenshot_dir(name: &str) -> PathBuf {
    hypnos_ui::testing::screenshot_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), name).unwrap()
}

/// A child process killed on drop.
struct Guard(Child, PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Guard {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

fn spawn_logged(name: &str, cmd: &mut Command, dir: &Path) -> Guard {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    Guard(child, log)
}

async fn wait_ok(url: &str, guard: &mut Guard) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = guard.0.try_wait() {
            panic!("exited with {status} before {url} answered:\n{}", guard.log());
        }
        assert!(Instant::now() < deadline, "{url} not ready:\n{}", guard.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Forwards everything that is not the UI (the API) to the upstream server, unchanged.
async fn proxy(upstream: String, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let body = to_bytes(body, 16 << 20).await.unwrap_or_default();
    let mut out = reqwest::Client::new().request(parts.method.clone(), format!("{upstream}{path}"));
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        out = out.header(header::CONTENT_TYPE, ct);
    }
    match out.body(body).send().await {
        Ok(r) => {
            let status = r.status();
            let ct = r.headers().get(header::CONTENT_TYPE).cloned();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut resp = Response::builder().status(status);
            if let Some(ct) = ct {
                resp = resp.header(header::CONTENT_TYPE, ct);
            }
            resp.body(Body::from(bytes)).unwrap()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

fn run_e2e(tools: &BrowserTools, config: &serde_json::Value, dir: &Path) {
    let output = Command::new(&tools.node)
        .arg(&tools.script)
        .env("E2E_CONFIG", config.to_string())
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "browser test failed:\n{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_in_chromium_against_prometheus() {
    let tools = browser_tools();
    let prometheus =
        on_path("prometheus").unwrap_or_else(|| panic!("`prometheus` is not on PATH: apt-get install -y prometheus"));
    let dir = tempfile::tempdir().unwrap();

    // The seed's demo service, loading itself so the counters move.
    let app_port = free_port();
    let args = hypnos_demo_app::DemoAppArgs {
        listen_address: SocketAddr::from(([127, 0, 0, 1], app_port)),
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
        self_load: 20.0,
        ..Default::default()
    };
    let (stop_app, app_stopped) = tokio::sync::oneshot::channel::<()>();
    let app = tokio::spawn(hypnos_demo_app::run(args, async {
        let _ = app_stopped.await;
    }));

    let prom_port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: demo-app\n    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let mut prom = spawn_logged(
        "prometheus",
        Command::new(prometheus)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--enable-feature=native-histograms"),
        dir.path(),
    );
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    wait_ok(&format!("{prom_url}/-/ready"), &mut prom).await;

    // The embedded UI in front of Prometheus's API.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ui_addr = listener.local_addr().unwrap();
    let upstream = prom_url.clone();
    let router = hypnos_ui::router().fallback(move |req: Request| proxy(upstream.clone(), req));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let shots = screenshot_dir("prometheus");
    let config = serde_json::json!({
        "base": format!("http://{ui_addr}"),
        "screenshots": shots,
        "chromium": tools.chromium,
        "query": "rate(total_http_requests[1m])",
        "rowLabel": "instance",
        "histogram": "request_duration_seconds_native",
        "completion": "total_http",
    });
    let e2e = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || run_e2e(&tools, &config, &dir)
    });
    let outcome = e2e.await;

    server.abort();
    let _ = stop_app.send(());
    let _ = app.await;
    drop(prom);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    for name in [
        "01-table",
        "03-graph",
        "05-parse-error",
        "06-histogram",
        "07-completion",
    ] {
        let png = shots.join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&png).map(|m| m.len() > 1000).unwrap_or(false),
            "{} missing",
            png.display()
        );
    }
}
