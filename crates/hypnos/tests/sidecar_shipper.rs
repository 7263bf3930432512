//! The sidecar's shipper with a real Prometheus 2.42 and blocks written by `promtool tsdb
//! create-blocks-from openmetrics`: blocks reach a FILESYSTEM bucket with the `thanos` section
//! in meta.json; a sidecar killed mid-upload leaves no visible (meta.json) partial block, and the
//! next start completes the upload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ChildGuard, Prometheus, free_port, hypnos_bin, require_tool, wait_http_ok};
use hypnos_tsdb::BlockMeta;

const EXTERNAL: &str = "global:\n  scrape_interval: 1s\n  external_labels:\n    cluster: ship\n    replica: \"0\"\n";

/// Two series over three hours at 15 s: promtool cuts them into 2 h-aligned blocks.
fn make_blocks(dir: &Path, out: &Path) -> Vec<PathBuf> {
    let start = 1_700_000_000i64;
    let mut om = String::from("# HELP demo_total A counter.\n# TYPE demo_total counter\n");
    for i in 0..720 {
        let t = start + i * 15;
        om.push_str(&format!("demo_total{{code=\"200\"}} {} {t}\n", i * 2));
        om.push_str(&format!("demo_total{{code=\"500\"}} {} {t}\n", i));
    }
    om.push_str("# EOF\n");
    let input = dir.join("input.om");
    std::fs::write(&input, om).unwrap();
    std::fs::create_dir_all(out).unwrap();
    let status = Command::new(require_tool("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let blocks = hypnos_tsdb::block_dirs(out).unwrap();
    assert!(blocks.len() >= 2, "promtool made {} blocks", blocks.len());
    blocks
}

fn sidecar_cmd(prom_url: &str, tsdb: &Path, objstore: &Path, http_port: u16) -> Command {
    let mut cmd = Command::new(hypnos_bin());
    cmd.args([
        "sidecar",
        &format!("--prometheus.url={prom_url}"),
        &format!("--tsdb.path={}", tsdb.display()),
        &format!("--objstore.config-file={}", objstore.display()),
        &format!("--grpc-address=127.0.0.1:{}", free_port()),
        &format!("--http-address=127.0.0.1:{http_port}"),
        "--shipper.sync-interval=300ms",
    ]);
    cmd
}

fn wait_exit(guard: &mut ChildGuard, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = guard.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{} still running:\n{}",
            guard.name,
            guard.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Relative paths of every file under `dir`.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

#[test]
fn sidecar_ships_blocks_and_survives_a_crash_mid_upload() {
    let dir = tempfile::tempdir().unwrap();
    let prom = Prometheus::start(
        dir.path(),
        EXTERNAL,
        &[
            "--storage.tsdb.min-block-duration=2h",
            "--storage.tsdb.max-block-duration=2h",
        ],
    );
    let tsdb = dir.path().join("tsdb");
    let blocks = make_blocks(dir.path(), &tsdb);
    let bucket = dir.path().join("bucket");
    let objstore = dir.path().join("objstore.yml");
    std::fs::write(
        &objstore,
        format!("type: FILESYSTEM\nconfig:\n  directory: {}\n", bucket.display()),
    )
    .unwrap();

    // 1. Crash after two objects (the first block's chunk segment and index): nothing visible.
    let http_port = free_port();
    let mut cmd = sidecar_cmd(&prom.url, &tsdb, &objstore, http_port);
    cmd.env("HYPNOS_SIDECAR_FAULT_ABORT_AFTER_UPLOADS", "2");
    let mut crashed = ChildGuard::spawn("sidecar-crash", &mut cmd, dir.path());
    let status = wait_exit(&mut crashed, Duration::from_secs(60));
    assert!(!status.success(), "the fault must kill the process");
    let after_crash = files_under(&bucket);
    assert!(
        after_crash
            .iter()
            .any(|f| f.ends_with("index") || f.contains("chunks/")),
        "some objects were uploaded before the crash: {after_crash:?}"
    );
    assert!(
        !after_crash.iter().any(|f| f.ends_with("meta.json")),
        "no meta.json may be visible after a crash mid-upload: {after_crash:?}"
    );
    let state = tsdb.join("thanos.shipper.json");
    if state.exists() {
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        assert!(s["uploaded"].as_array().is_none_or(|a| a.is_empty()), "{s}");
    }

    // 2. Restart: every block is shipped completely.
    let mut sidecar = ChildGuard::spawn(
        "sidecar",
        &mut sidecar_cmd(&prom.url, &tsdb, &objstore, http_port),
        dir.path(),
    );
    wait_http_ok(
        &format!("http://127.0.0.1:{http_port}/-/ready"),
        Duration::from_secs(30),
        &mut sidecar,
    );
    let ulids: Vec<String> = blocks
        .iter()
        .map(|b| b.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|s| {
                let up: Vec<String> = s["uploaded"]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default();
                ulids.iter().all(|u| up.contains(u))
            });
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "blocks not shipped:\n{}", sidecar.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    let state_text = std::fs::read_to_string(&state).unwrap();
    assert!(
        state_text.starts_with("{\n\t\"version\": 1,\n\t\"uploaded\": ["),
        "{state_text}"
    );

    for (local, ulid) in blocks.iter().zip(&ulids) {
        let remote = bucket.join(ulid);
        let local_meta = BlockMeta::read(local).unwrap();
        let meta = BlockMeta::read(&remote).unwrap();
        assert_eq!(meta.ulid, *ulid);
        assert_eq!(
            (meta.min_time, meta.max_time),
            (local_meta.min_time, local_meta.max_time)
        );
        assert_eq!(meta.stats, local_meta.stats);
        assert_eq!(meta.compaction, local_meta.compaction);
        let thanos = meta.thanos.expect("thanos section");
        assert_eq!(thanos.source, "sidecar");
        assert_eq!(thanos.downsample.resolution, 0);
        assert_eq!(
            thanos.labels.into_iter().collect::<Vec<_>>(),
            vec![
                ("cluster".to_string(), "ship".to_string()),
                ("replica".to_string(), "0".to_string())
            ]
        );
        assert!(thanos.upload_time.is_some());
        // `files` lists exactly the uploaded objects (meta.json without a size), and every
        // data file is the local one byte for byte.
        let listed: Vec<String> = thanos.files.iter().map(|f| f.rel_path.clone()).collect();
        let mut expected = files_under(&remote);
        expected.retain(|f| !f.contains('#')); // in-flight temp files of the local store
        assert_eq!(listed, expected);
        for f in &thanos.files {
            if f.rel_path == "meta.json" {
                assert_eq!(f.size_bytes, 0);
                continue;
            }
            let data = std::fs::read(remote.join(&f.rel_path)).unwrap();
            assert_eq!(data.len() as i64, f.size_bytes, "{}", f.rel_path);
            assert_eq!(data, std::fs::read(local.join(&f.rel_path)).unwrap(), "{}", f.rel_path);
        }
        assert_eq!(
            thanos.segment_files,
            listed
                .iter()
                .filter_map(|f| f.strip_prefix("chunks/").map(str::to_string))
                .collect::<Vec<_>>()
        );
    }
    // Staging links are gone; the local blocks are untouched.
    assert!(files_under(&tsdb.join("thanos/upload")).is_empty());
    assert!(BlockMeta::read(&blocks[0]).unwrap().thanos.is_none());

    let metrics = ureq_get(&format!("http://127.0.0.1:{http_port}/metrics"));
    assert!(
        metrics.contains(&format!("thanos_shipper_uploads_total {}", blocks.len())),
        "{metrics}"
    );
    assert!(
        metrics.contains("thanos_shipper_last_successful_upload_time"),
        "{metrics}"
    );
    assert!(sidecar.child.try_wait().unwrap().is_none());
}

/// A blocking GET without an async runtime.
fn ureq_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    write!(conn, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut s = String::new();
    conn.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn sidecar_refuses_to_start_without_external_labels() {
    let dir = tempfile::tempdir().unwrap();
    let prom = Prometheus::start(dir.path(), "global:\n  scrape_interval: 1s\n", &[]);
    let mut cmd = Command::new(hypnos_bin());
    cmd.args([
        "sidecar",
        &format!("--prometheus.url={}", prom.url),
        &format!("--tsdb.path={}", dir.path().join("prom-data").display()),
        &format!("--grpc-address=127.0.0.1:{}", free_port()),
        &format!("--http-address=127.0.0.1:{}", free_port()),
    ]);
    let mut sidecar = ChildGuard::spawn("sidecar", &mut cmd, dir.path());
    let status = wait_exit(&mut sidecar, Duration::from_secs(30));
    assert!(!status.success());
    let log = std::fs::read_to_string(&sidecar.log).unwrap();
    assert!(
        log.contains("no external labels configured on Prometheus server, uniquely identifying external labels must be configured"),
        "{log}"
    );
}

#[test]
fn sidecar_refuses_to_upload_from_a_compacting_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    // Prometheus's defaults: 2h min, larger max block duration, so it compacts.
    let prom = Prometheus::start(dir.path(), EXTERNAL, &[]);
    let objstore = dir.path().join("objstore.yml");
    std::fs::write(
        &objstore,
        format!(
            "type: FILESYSTEM\nconfig:\n  directory: {}\n",
            dir.path().join("bucket").display()
        ),
    )
    .unwrap();
    let mut sidecar = ChildGuard::spawn(
        "sidecar",
        &mut sidecar_cmd(&prom.url, &dir.path().join("prom-data"), &objstore, free_port()),
        dir.path(),
    );
    let status = wait_exit(&mut sidecar, Duration::from_secs(30));
    assert!(!status.success());
    let log = std::fs::read_to_string(&sidecar.log).unwrap();
    assert!(log.contains("--storage.tsdb.min-block-duration"), "{log}");
}
