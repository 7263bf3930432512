//! Helpers shared by the integration tests: free ports, child processes that are killed when
//! the test ends, and waiting for HTTP endpoints. Tests fail loudly when a tool they need
//! (prometheus, promtool) is missing; they never skip.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `hypnos` binary built for these tests.
pub fn hypnos_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hypnos"))
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
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
        let child = cmd
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
