//! Helpers shared by the integration tests: free ports, child processes that are killed when
//! the test ends, and waiting for HTTP endpoints. Tests fail loudly when a tool they need
//! (prometheus, promtool) is missing; they never skip.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `hypnos` binary built for these tests.
pub fn hypnos_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hypnos"))
}

/// A port nobody listens on right now, below the kernel's ephemeral range (32768-60999 by
/// default). A port found by binding port 0 is an ephemeral one, which an outgoing
/// connection of any other test may take between this check and the child's own bind
/// ("address already in use"); ports below the range are only ever taken by a bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Test binaries run at once: each starts its walk through the range somewhere else.
    let start = std::process::id().wrapping_mul(2_654_435_761) % COUNT;
    for _ in 0..COUNT {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(FIRST + (start + k.wrapping_mul(7_919)) % COUNT).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Path of a required external tool; panics with the install command when it is missing.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is not on PATH; install it with `apt-get install -y prometheus` (see .ci/run)");
}

/// A child process killed (and reaped) on drop, with its output in a log file.
pub struct ChildGuard {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl ChildGuard {
    pub fn spawn(name: &str, cmd: &mut Command, log_dir: &Path) -> ChildGuard {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        // A process group of its own, so that dropping the guard also stops whatever the
        // child started (`hypnos demo`'s processes) when a test fails half way.
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        ChildGuard {
            name: name.to_string(),
            child,
            log,
        }
    }

    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `url` until it answers 200 or `timeout` passes.
pub fn wait_http_ok(url: &str, timeout: Duration, guard: &mut ChildGuard) {
    let deadline = Instant::now() + timeout;
    loop {
        if reqwest::blocking_get(url) == Ok(true) {
            return;
        }
        if let Ok(Some(status)) = guard.child.try_wait() {
            panic!("{} exited early with {status}:\n{}", guard.name, guard.log_tail());
        }
        if Instant::now() > deadline {
            panic!(
                "{url} not ready after {timeout:?}; {} log:\n{}",
                guard.name,
                guard.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Minimal blocking GET over std's TcpStream (usable from sync and async tests alike):
/// whether `url` (`http://host:port/path`) answers with a 2xx status.
mod reqwest {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub fn blocking_get(url: &str) -> Result<bool, ()> {
        let rest = url.strip_prefix("http://").ok_or(())?;
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let mut conn = TcpStream::connect(host).map_err(|_| ())?;
        conn.set_read_timeout(Some(Duration::from_secs(2))).map_err(|_| ())?;
        write!(conn, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|_| ())?;
        let mut head = [0u8; 12];
        conn.read_exact(&mut head).map_err(|_| ())?;
        Ok(head.starts_with(b"HTTP/1.") && head[9] == b'2')
    }
}

/// A Prometheus 2.42 server on a free 127.0.0.1 port with the given config.
pub struct Prometheus {
    pub guard: ChildGuard,
    pub url: String,
}

impl Prometheus {
    pub fn start(dir: &Path, config_yaml: &str, extra_args: &[&str]) -> Prometheus {
        let bin = require_tool("prometheus");
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, config_yaml).unwrap();
        let data = dir.join("prom-data");
        std::fs::create_dir_all(&data).unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra_args);
        let mut guard = ChildGuard::spawn("prometheus", &mut cmd, dir);
        let url = format!("http://127.0.0.1:{port}");
        wait_http_ok(&format!("{url}/-/ready"), Duration::from_secs(30), &mut guard);
        Prometheus { guard, url }
    }

    /// Runs an instant query and returns the `data.result` array.
    pub async fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let resp: serde_json::Value = ::reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", q)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(resp["status"], "success", "query {q}: {resp}");
        resp["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

/// Retries `check` every 300 ms until it returns `Ok` or `timeout` passes (then panics with
/// the last error).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what} (after {timeout:?}): {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Milliseconds as the seconds string the HTTP APIs take (`1700000000.123`).
pub fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// GET with query parameters: the status code and the body as JSON (panics on a non-JSON body).
pub async fn get_json(url: &str, params: &[(&str, String)]) -> (u16, serde_json::Value) {
    let r = ::reqwest::Client::new()
        .get(url)
        .query(params)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
    (code, v)
}

/// GET returning the body text, or the error as text (for endpoints that may be down).
pub async fn get_text(url: &str) -> Result<(u16, String), String> {
    let r = ::reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let code = r.status().as_u16();
    Ok((code, r.text().await.map_err(|e| e.to_string())?))
}

/// `hypnos demo-app` on a free port, with short delays.
pub fn start_demo_app(dir: &Path, extra: &[&str]) -> (ChildGuard, String) {
    let port = free_port();
    let mut guard = ChildGuard::spawn(
        "demo-app",
        Command::new(hypnos_bin())
            .args([
                "demo-app",
                &format!("--listen-address=127.0.0.1:{port}"),
                "--min-delay=1ms",
                "--max-delay=10ms",
            ])
            .args(extra),
        dir,
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{url}/-/healthy"), Duration::from_secs(20), &mut guard);
    (guard, url)
}

/// A Prometheus on a given port with its config and data in `dir` (`prometheus.yml`,
/// `prom-data`), so that it can be restarted in place. Waits for `/-/ready`.
pub fn start_prometheus_at(dir: &Path, port: u16, name: &str, extra_args: &[&str]) -> ChildGuard {
    let mut cmd = Command::new(require_tool("prometheus"));
    cmd.arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra_args);
    let mut guard = ChildGuard::spawn(name, &mut cmd, dir);
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/-/ready"),
        Duration::from_secs(30),
        &mut guard,
    );
    guard
}

/// A Prometheus scrape config: global settings with external labels, one job per
/// `(job, target)`.
pub fn prometheus_config(scrape_interval: &str, external: &[(&str, &str)], jobs: &[(&str, &str)]) -> String {
    let mut s = format!("global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {scrape_interval}\n");
    if !external.is_empty() {
        s.push_str("  external_labels:\n");
        for (k, v) in external {
            s.push_str(&format!("    {k}: \"{v}\"\n"));
        }
    }
    s.push_str("scrape_configs:\n");
    for (job, target) in jobs {
        s.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
        ));
    }
    s
}

/// A running Hypnos component with a gRPC (StoreAPI) and an HTTP address.
pub struct Component {
    pub guard: ChildGuard,
    pub grpc: String,
    pub http: String,
}

/// Starts `hypnos <subcommand> <args> --grpc-address=… --http-address=…` on free ports and
/// waits for `/-/ready` (up to `ready_timeout`).
pub fn start_component(
    name: &str,
    dir: &Path,
    subcommand: &str,
    args: &[String],
    ready_timeout: Duration,
) -> Component {
    let grpc = format!("127.0.0.1:{}", free_port());
    let http = format!("http://127.0.0.1:{}", free_port());
    let mut cmd = Command::new(hypnos_bin());
    cmd.arg(subcommand)
        .args(args)
        .arg(format!("--grpc-address={grpc}"))
        .arg(format!("--http-address={}", http.trim_start_matches("http://")));
    let mut guard = ChildGuard::spawn(name, &mut cmd, dir);
    wait_http_ok(&format!("{http}/-/ready"), ready_timeout, &mut guard);
    Component { guard, grpc, http }
}

/// `hypnos query` over `endpoints` with `--query.replica-label=replica`.
pub fn start_querier(name: &str, dir: &Path, endpoints: &[&str], extra: &[&str]) -> Component {
    let mut args: Vec<String> = vec![
        "--query.replica-label=replica".into(),
        "--endpoint.info-interval=1s".into(),
    ];
    args.extend(endpoints.iter().map(|e| format!("--endpoint={e}")));
    args.extend(extra.iter().map(|s| s.to_string()));
    start_component(name, dir, "query", &args, Duration::from_secs(30))
}

/// The `data.result` of a querier or Prometheus query answer, checking `status: success`.
pub fn result_of(v: &serde_json::Value) -> Vec<serde_json::Value> {
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Sends SIGTERM and waits (up to 30 s) for the process to exit.
pub fn terminate(guard: &mut ChildGuard) {
    let pid = nix::unistd::Pid::from_raw(guard.child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if guard.child.try_wait().unwrap().is_some() {
            return;
        }
        if Instant::now() > deadline {
            let _ = guard.child.kill();
            let _ = guard.child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
