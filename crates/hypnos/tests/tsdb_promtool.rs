//! Interop of `hypnos tools tsdb` with the real promtool and Prometheus 2.42: blocks
//! either one writes dump identically with either dumper, and Prometheus answers queries
//! over our blocks. These tests fail (never skip) when promtool or prometheus is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn hypnos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hypnos"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed? `apt-get install -y prometheus`)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A small deterministic PRNG so the data is the same on every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// OpenMetrics text with counters (with resets), gauges (NaN, ±Inf, tiny and huge
/// values), a classic histogram, gaps and jittered millisecond timestamps, spanning
/// about five hours from a start that is not aligned to 2h.
pub fn generate_openmetrics(series_per_family: usize, hours: u64) -> String {
    let mut r = Lcg(42);
    let start_ms: u64 = 1_699_999_123_000;
    let steps = hours * 3600 / 15;
    let ts = |r: &mut Lcg, i: u64| {
        let ms = start_ms + i * 15_000 + r.below(1000);
        format!("{}.{:03}", ms / 1000, ms % 1000)
    };
    let mut s = String::new();
    s.push_str("# HELP requests_total Requests.\n# TYPE requests counter\n");
    for k in 0..series_per_family {
        let mut v = 0u64;
        for i in 0..steps {
            if k % 3 == 1 && (200..260).contains(&i) {
                continue; // a gap
            }
            v += r.below(10);
            if r.below(400) == 0 {
                v = 0; // a counter reset
            }
            let t = ts(&mut r, i);
            writeln!(s, "requests_total{{instance=\"host-{k}\",job=\"api\"}} {v} {t}").ok();
        }
    }
    s.push_str("# TYPE temperature gauge\n");
    for k in 0..series_per_family {
        for i in 0..steps {
            if k % 4 == 2 && i % 97 < 20 {
                continue;
            }
            let v = match r.below(50) {
                0 => "NaN".to_string(),
                1 => "+Inf".to_string(),
                2 => "-Inf".to_string(),
                3 => format!("{}e-7", r.below(1000)),
                4 => format!("{}e20", r.below(1000)),
                _ => format!("{}.{}", r.below(100) as i64 - 50, r.below(1000)),
            };
            let t = ts(&mut r, i);
            writeln!(s, "temperature{{room=\"r{k}\",site=\"a \\\"quoted\\\" site\"}} {v} {t}").ok();
        }
    }
    s.push_str("# TYPE latency_seconds histogram\n");
    let les = ["0.005", "0.01", "0.1", "1", "10", "+Inf"];
    for k in 0..series_per_family.div_ceil(2) {
        let mut counts = [0u64; 6];
        let mut sum = 0.0f64;
        for i in 0..steps {
            let n = r.below(20);
            for _ in 0..n {
                let b = r.below(6) as usize;
                for c in counts.iter_mut().skip(b) {
                    *c += 1;
                }
                sum += [0.003, 0.007, 0.05, 0.5, 5.0, 20.0][b];
            }
            let t = ts(&mut r, i);
            for (j, le) in les.iter().enumerate() {
                writeln!(
                    s,
                    "latency_seconds_bucket{{handler=\"/h{k}\",le=\"{le}\"}} {} {t}",
                    counts[j]
                )
                .ok();
            }
            writeln!(s, "latency_seconds_sum{{handler=\"/h{k}\"}} {sum} {t}").ok();
            writeln!(s, "latency_seconds_count{{handler=\"/h{k}\"}} {} {t}", counts[5]).ok();
        }
    }
    s.push_str("# EOF\n");
    s
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).expect("read dir") {
        let e = e.expect("entry");
        let md = e.metadata().expect("metadata");
        total += if md.is_dir() { dir_size(&e.path()) } else { md.len() };
    }
    total
}

struct Fixture {
    _tmp: tempfile::TempDir,
    ours: PathBuf,
    theirs: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("input.om");
    std::fs::write(&input, generate_openmetrics(12, 5)).expect("write input");
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    run(hypnos()
        .args(["tools", "tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&input)
        .arg(&ours));
    run(Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&theirs));
    // promtool 2.42's dump opens the directory as a database and wants a wal directory.
    std::fs::create_dir_all(ours.join("wal")).expect("mkdir");
    std::fs::create_dir_all(theirs.join("wal")).expect("mkdir");
    Fixture {
        _tmp: tmp,
        ours,
        theirs,
    }
}

fn promtool_dump(dir: &Path, extra: &[&str]) -> String {
    run(Command::new("promtool").args(["tsdb", "dump"]).args(extra).arg(dir))
}

fn hypnos_dump(dir: &Path, extra: &[&str]) -> String {
    run(hypnos().args(["tools", "tsdb", "dump"]).args(extra).arg(dir))
}

fn assert_same(a: &str, b: &str, what: &str) {
    if a != b {
        let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
        let first = al
            .iter()
            .zip(&bl)
            .position(|(x, y)| x != y)
            .unwrap_or(al.len().min(bl.len()));
        panic!(
            "{what}: outputs differ ({} vs {} lines); first difference at line {}:\n  {:?}\n  {:?}",
            al.len(),
            bl.len(),
            first + 1,
            al.get(first),
            bl.get(first)
        );
    }
}

#[test]
fn tsdb_blocks_interoperate_with_promtool() {
    let f = fixture();
    let reference = promtool_dump(&f.theirs, &[]);
    assert!(reference.lines().count() > 10_000, "promtool dumped too little");
    assert!(reference.contains(" NaN ") && reference.contains(" +Inf ") && reference.contains("e+22 "));

    // promtool reads our blocks exactly like its own.
    assert_same(
        &promtool_dump(&f.ours, &[]),
        &reference,
        "promtool dump of our blocks vs of promtool's blocks",
    );
    // Our dump of promtool's blocks matches promtool's.
    assert_same(
        &hypnos_dump(&f.theirs, &[]),
        &reference,
        "our dump of promtool's blocks vs promtool's dump",
    );
    // And of our own blocks.
    assert_same(
        &hypnos_dump(&f.ours, &[]),
        &reference,
        "our dump of our blocks vs promtool's dump",
    );

    // Time-range restricted dumps agree too.
    let range = ["--min-time=1700003000000", "--max-time=1700009000000"];
    assert_same(
        &hypnos_dump(&f.theirs, &range),
        &promtool_dump(&f.theirs, &range),
        "ranged dump",
    );

    // Same block boundaries, and on-disk size within 5% of promtool's.
    let list = |d: &Path| {
        let mut v: Vec<(i64, i64, u64, u64)> = hypnos_tsdb::block_dirs(d)
            .expect("blocks")
            .iter()
            .map(|p| {
                let m = hypnos_tsdb::BlockMeta::read(p).expect("meta");
                (m.min_time, m.max_time, m.stats.num_samples, m.stats.num_series)
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(list(&f.ours), list(&f.theirs), "block ranges and stats");
    let (ours, theirs) = (dir_size(&f.ours) as f64, dir_size(&f.theirs) as f64);
    eprintln!(
        "on-disk size: ours {ours} bytes, promtool {theirs} bytes ({:+.2}%)",
        (ours / theirs - 1.0) * 100.0
    );
    if (ours - theirs).abs() / theirs >= 0.05 {
        let l = |d: &Path| run(hypnos().args(["tools", "tsdb", "list"]).arg(d));
        panic!(
            "our blocks take {ours} bytes, promtool's {theirs}:\nours:\n{}\npromtool's:\n{}",
            l(&f.ours),
            l(&f.theirs)
        );
    }

    // Both pass our verifier.
    run(hypnos().args(["tools", "block", "verify"]).arg(&f.ours));
    run(hypnos().args(["tools", "block", "verify"]).arg(&f.theirs));
    // list and analyze run on both.
    let l = run(hypnos().args(["tools", "tsdb", "list"]).arg(&f.theirs));
    assert!(l.starts_with("BLOCK ULID"), "{l}");
    let a = run(hypnos().args(["tools", "tsdb", "analyze"]).arg(&f.ours));
    assert!(a.contains("Highest cardinality metric names:"), "{a}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain HTTP/1.0 GET (no chunked encoding to undo); returns status and body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((status, body.to_string()))
}

fn get_json(port: u16, path: &str) -> serde_json::Value {
    let (_, body) = http_get(port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

#[test]
fn tsdb_prometheus_queries_our_blocks() {
    let f = fixture();
    let port = free_port();
    let data = f.ours.clone();
    std::fs::remove_dir_all(data.join("wal")).ok();
    let child = Command::new("prometheus")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=100000d")
        .arg(format!("--config.file={}", write_empty_config(&data).display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start prometheus (apt-get install -y prometheus)");
    let _guard = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http_get(port, "/-/ready").is_ok_and(|(status, _)| status == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Raw samples of one series over one hour, compared with our own dump of it.
    let t = 1_700_010_000i64;
    let q = format!("/api/v1/query?query=requests_total%7Binstance%3D%22host-1%22%7D%5B1h%5D&time={t}");
    let v = get_json(port, &q);
    assert_eq!(v["status"], "success", "{v}");
    let values = v["data"]["result"][0]["values"]
        .as_array()
        .expect("matrix values")
        .clone();
    assert!(values.len() > 100, "{v}");
    let dump = hypnos_dump(
        &f.ours,
        &[
            "--match=requests_total{instance=\"host-1\"}",
            &format!("--min-time={}", (t - 3600) * 1000 + 1),
            &format!("--max-time={}", t * 1000),
        ],
    );
    let want: Vec<(String, String)> = dump
        .lines()
        .map(|l| {
            let mut it = l.rsplitn(3, ' ');
            let ts = it.next().expect("ts").parse::<i64>().expect("ts");
            let val = it.next().expect("value").to_string();
            (format!("{}.{:03}", ts / 1000, ts % 1000), val)
        })
        .collect();
    let got: Vec<(String, String)> = values
        .iter()
        .map(|p| {
            let ts = p[0].as_f64().expect("ts");
            let ms = (ts * 1000.0).round() as i64;
            (
                format!("{}.{:03}", ms / 1000, ms % 1000),
                p[1].as_str().expect("value").to_string(),
            )
        })
        .collect();
    assert_eq!(got, want);
    // And an aggregate over every series of a family.
    let v = get_json(port, &format!("/api/v1/query?query=count(temperature)&time={t}"));
    assert_eq!(v["data"]["result"][0]["value"][1], "12", "{v}");
}

fn write_empty_config(dir: &Path) -> PathBuf {
    let p = dir.parent().expect("parent").join("prometheus.yml");
    std::fs::write(&p, "global:\n  scrape_interval: 1h\n").expect("write config");
    p
}
