//! The sidecar's config reloader and heartbeat against a real Prometheus 2.42, with Thanos's
//! behaviour: one reload when the reloader starts (nothing has been applied yet), one per
//! change of the watched file, none without a change; a rejected configuration is counted as a
//! failed reload and retried until Prometheus accepts one; an unreadable watched file stops the
//! sidecar at start-up. While Prometheus restarts the sidecar keeps running, answers StoreAPI
//! calls with a clear Unavailable error, reports not ready and `thanos_sidecar_prometheus_up 0`,
//! and is healthy again once Prometheus is back. `--reloader.rule-dir` and
//! `--reloader.config-envsubst-file` work as in Thanos.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    ChildGuard, Component, eventually, free_port, get_json, get_text, hypnos_bin, now_ms, prometheus_config,
    start_component, start_prometheus_at,
};
use hypnos_storepb::client::GrpcStore;
use hypnos_storepb::thanos::{LabelMatcher, SeriesRequest, label_matcher, series_response};

const EXTERNAL: [(&str, &str); 2] = [("cluster", "reload"), ("replica", "0")];

/// The value of an unlabelled sample `name` in a text exposition.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Replaces the file in one step, as configuration managers do, so that the reloader never
/// sees it half written.
fn write_atomic(path: &Path, content: impl AsRef<[u8]>) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

async fn metrics_of(http: &str) -> String {
    let (code, text) = get_text(&format!("{http}/metrics")).await.unwrap();
    assert_eq!(code, 200, "{text}");
    text
}

/// Prometheus's own view of its last reload: (successful, success timestamp in seconds).
async fn prom_reload_state(prom: &str) -> (f64, f64) {
    let text = metrics_of(prom).await;
    (
        metric(&text, "prometheus_config_last_reload_successful").unwrap(),
        metric(&text, "prometheus_config_last_reload_success_timestamp_seconds").unwrap(),
    )
}

async fn loaded_config(prom: &str) -> String {
    let (_, v) = get_json(&format!("{prom}/api/v1/status/config"), &[]).await;
    v["data"]["yaml"].as_str().unwrap().to_string()
}

fn start_sidecar(dir: &Path, prom: &str, config: &Path) -> Component {
    start_component(
        "sidecar",
        dir,
        "sidecar",
        &[
            format!("--prometheus.url={prom}"),
            format!("--tsdb.path={}", dir.join("prom-data").display()),
            format!("--reloader.config-file={}", config.display()),
            "--reloader.watch-interval=500ms".into(),
            "--reloader.retry-interval=200ms".into(),
            "--prometheus.get_config_interval=500ms".into(),
        ],
        Duration::from_secs(30),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloader_reloads_at_start_on_change_and_retries_rejected_configs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prom = format!("http://127.0.0.1:{port}");
    let config_path = dir.path().join("prometheus.yml");
    let self_job = [("prometheus", format!("127.0.0.1:{port}"))];
    let jobs = |extra: bool| -> Vec<(&str, &str)> {
        let mut j: Vec<(&str, &str)> = self_job.iter().map(|(a, b)| (*a, b.as_str())).collect();
        if extra {
            j.push(("added-by-test", "127.0.0.1:1"));
        }
        j
    };
    write_atomic(&config_path, prometheus_config("1s", &EXTERNAL, &jobs(false))).unwrap();
    let _prom_guard = tokio::task::block_in_place(|| {
        start_prometheus_at(dir.path(), port, "prometheus", &["--web.enable-lifecycle"])
    });
    let (ok, loaded_at_start) = prom_reload_state(&prom).await;
    assert_eq!(ok, 1.0);

    // Start-up: the reloader's first check reloads Prometheus once, like Thanos's.
    let sidecar = tokio::task::block_in_place(|| start_sidecar(dir.path(), &prom, &config_path));
    eventually("the start-up reload", Duration::from_secs(20), || async {
        let m = metrics_of(&sidecar.http).await;
        let (_, ts) = prom_reload_state(&prom).await;
        match (
            metric(&m, "thanos_sidecar_reloader_reloads_total"),
            metric(&m, "thanos_sidecar_reloader_last_reload_successful"),
        ) {
            (Some(1.0), Some(1.0)) if ts > loaded_at_start => Ok(()),
            other => Err(format!(
                "{other:?}, Prometheus reloaded at {ts} (start {loaded_at_start})"
            )),
        }
    })
    .await;
    let (_, after_start) = prom_reload_state(&prom).await;

    // No change, no reload: several watch intervals pass quietly.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let m = metrics_of(&sidecar.http).await;
    assert_eq!(metric(&m, "thanos_sidecar_reloader_reloads_total"), Some(1.0), "{m}");
    assert!(
        metric(&m, "thanos_sidecar_reloader_config_apply_operations_total").unwrap() >= 2.0,
        "{m}"
    );
    assert_eq!(prom_reload_state(&prom).await.1, after_start);
    assert!(!loaded_config(&prom).await.contains("added-by-test"));

    // A change (new job, new scrape interval) reaches Prometheus.
    write_atomic(&config_path, prometheus_config("2s", &EXTERNAL, &jobs(true))).unwrap();
    eventually(
        "Prometheus loaded the changed config",
        Duration::from_secs(20),
        || async {
            let yaml = loaded_config(&prom).await;
            if yaml.contains("job_name: added-by-test") && yaml.contains("scrape_interval: 2s") {
                Ok(())
            } else {
                Err(yaml)
            }
        },
    )
    .await;
    // Prometheus applies scrape targets asynchronously (its discovery updates are throttled).
    eventually("the new job is a target", Duration::from_secs(20), || async {
        let (_, v) = get_json(&format!("{prom}/api/v1/targets"), &[]).await;
        let targets = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
        if targets.iter().any(|t| t["labels"]["job"] == "added-by-test") {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    let m = metrics_of(&sidecar.http).await;
    assert_eq!(metric(&m, "thanos_sidecar_reloader_reloads_total"), Some(2.0), "{m}");
    assert_eq!(
        metric(&m, "thanos_sidecar_reloader_reloads_failed_total"),
        Some(0.0),
        "{m}"
    );
    let success_ts = metric(&m, "thanos_sidecar_reloader_last_reload_success_timestamp_seconds").unwrap();
    assert!((success_ts - now_ms() as f64 / 1000.0).abs() < 60.0, "{m}");

    // A configuration Prometheus rejects: the reload fails (Prometheus keeps the old one), the
    // sidecar counts and retries it.
    write_atomic(&config_path, "global:\n  scrape_interval: not-a-duration\n").unwrap();
    eventually(
        "the failed reload is counted and retried",
        Duration::from_secs(20),
        || async {
            let m = metrics_of(&sidecar.http).await;
            match (
                metric(&m, "thanos_sidecar_reloader_reloads_failed_total"),
                metric(&m, "thanos_sidecar_reloader_last_reload_successful"),
            ) {
                (Some(f), Some(0.0)) if f >= 2.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(prom_reload_state(&prom).await.0, 0.0, "Prometheus saw the bad config");
    assert!(loaded_config(&prom).await.contains("job_name: added-by-test"));
    let log = std::fs::read_to_string(&sidecar.guard.log).unwrap();
    assert!(
        log.contains("--web.enable-lifecycle"),
        "the error log gives advice:\n{log}"
    );

    // Fixed: the next check reloads, and the retries stop.
    write_atomic(&config_path, prometheus_config("3s", &EXTERNAL, &jobs(false))).unwrap();
    eventually(
        "Prometheus loaded the fixed config",
        Duration::from_secs(20),
        || async {
            let yaml = loaded_config(&prom).await;
            let m = metrics_of(&sidecar.http).await;
            if yaml.contains("scrape_interval: 3s")
                && metric(&m, "thanos_sidecar_reloader_last_reload_successful") == Some(1.0)
            {
                Ok(())
            } else {
                Err(yaml)
            }
        },
    )
    .await;
    assert_eq!(prom_reload_state(&prom).await.0, 1.0);
    let m = metrics_of(&sidecar.http).await;
    let (total, failed) = (
        metric(&m, "thanos_sidecar_reloader_reloads_total").unwrap(),
        metric(&m, "thanos_sidecar_reloader_reloads_failed_total").unwrap(),
    );
    // Start-up, change and fix succeeded, the rest failed. (A retry of the rejected file that
    // runs just after the fix is written makes Prometheus load the fix: one more success.)
    assert!(total - failed >= 3.0, "{m}");
    assert!(total - failed <= 4.0, "{m}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let m = metrics_of(&sidecar.http).await;
    assert_eq!(metric(&m, "thanos_sidecar_reloader_reloads_total"), Some(total), "{m}");
}

#[test]
fn sidecar_refuses_to_start_with_an_unreadable_reloader_config() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-prometheus.yml");
    let mut cmd = std::process::Command::new(hypnos_bin());
    cmd.args([
        "sidecar",
        // Nobody listens here: the file check comes before waiting for Prometheus.
        &format!("--prometheus.url=http://127.0.0.1:{}", free_port()),
        &format!("--reloader.config-file={}", missing.display()),
        &format!("--grpc-address=127.0.0.1:{}", free_port()),
        &format!("--http-address=127.0.0.1:{}", free_port()),
    ]);
    let mut sidecar = ChildGuard::spawn("sidecar", &mut cmd, dir.path());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = sidecar.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running:\n{}",
            sidecar.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let log = std::fs::read_to_string(&sidecar.log).unwrap();
    assert!(log.contains(&missing.display().to_string()), "{log}");
}

fn eq(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: label_matcher::Type::Eq as i32,
        name: name.into(),
        value: value.into(),
    }
}

/// Number of `up` series the sidecar returns for the last ten minutes.
async fn up_series(store: &GrpcStore) -> Result<usize, tonic::Status> {
    let t = now_ms();
    let req = SeriesRequest {
        min_time: t - 600_000,
        max_time: t,
        matchers: vec![eq("__name__", "up")],
        ..Default::default()
    };
    let mut stream = store.store_client().series(req).await?.into_inner();
    let mut n = 0;
    while let Some(frame) = stream.message().await? {
        match frame.result {
            Some(series_response::Result::Series(_)) => n += 1,
            Some(series_response::Result::Batch(b)) => n += b.series.len(),
            _ => {}
        }
    }
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_reports_a_restarting_prometheus_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prom = format!("http://127.0.0.1:{port}");
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(
        &config_path,
        prometheus_config("1s", &EXTERNAL, &[("prometheus", &format!("127.0.0.1:{port}"))]),
    )
    .unwrap();
    // Without --web.enable-lifecycle: the start-up reload is refused (403) and stays pending.
    let prom_guard = tokio::task::block_in_place(|| start_prometheus_at(dir.path(), port, "prometheus", &[]));
    let mut sidecar = tokio::task::block_in_place(|| start_sidecar(dir.path(), &prom, &config_path));
    let store = GrpcStore::connect(&sidecar.grpc).await.unwrap();
    eventually("up is served", Duration::from_secs(20), || async {
        match up_series(&store).await {
            Ok(n) if n > 0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eventually("the refused reload is counted", Duration::from_secs(20), || async {
        let m = metrics_of(&sidecar.http).await;
        match metric(&m, "thanos_sidecar_reloader_reloads_failed_total") {
            Some(f) if f >= 1.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let m = metrics_of(&sidecar.http).await;
    assert_eq!(metric(&m, "thanos_sidecar_prometheus_up"), Some(1.0), "{m}");

    // Prometheus stops: the sidecar stays up, not ready, and says why calls fail.
    drop(prom_guard);
    eventually("the sidecar notices", Duration::from_secs(20), || async {
        let (ready, _) = get_text(&format!("{}/-/ready", sidecar.http)).await?;
        let m = metrics_of(&sidecar.http).await;
        match (ready, metric(&m, "thanos_sidecar_prometheus_up")) {
            (503, Some(0.0)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (healthy, _) = get_text(&format!("{}/-/healthy", sidecar.http)).await.unwrap();
    assert_eq!(healthy, 200);
    let err = up_series(&store).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(
        err.message().contains(&prom),
        "the error names Prometheus: {}",
        err.message()
    );
    store
        .info_client()
        .info(hypnos_storepb::info::InfoRequest {})
        .await
        .expect("Info still answers from what the sidecar knows");

    // Back, now with the lifecycle API: ready again, data again, and the pending reload done.
    let _prom_guard = tokio::task::block_in_place(|| {
        start_prometheus_at(dir.path(), port, "prometheus-restarted", &["--web.enable-lifecycle"])
    });
    eventually("the sidecar recovers", Duration::from_secs(30), || async {
        let (ready, _) = get_text(&format!("{}/-/ready", sidecar.http)).await?;
        let m = metrics_of(&sidecar.http).await;
        let n = up_series(&store).await.map_err(|e| e.to_string())?;
        match (
            ready,
            metric(&m, "thanos_sidecar_prometheus_up"),
            metric(&m, "thanos_sidecar_reloader_last_reload_successful"),
            n,
        ) {
            (200, Some(1.0), Some(1.0), n) if n > 0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        sidecar.guard.child.try_wait().unwrap().is_none(),
        "the sidecar never exited"
    );
}

/// `--reloader.rule-dir` and `--reloader.config-envsubst-file`, as Thanos: the sidecar writes
/// the configuration with `$(VAR)` substituted (Prometheus runs on that output), a new rule file
/// reloads Prometheus, and a reference to an unset variable is a failed apply that changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloader_substitutes_env_and_watches_rule_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prom = format!("http://127.0.0.1:{port}");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let rule = |name: &str, record: &str| {
        format!(
            "groups:\n  - name: {name}\n    interval: 1s\n    rules:\n      - record: {record}\n        expr: sum(up)\n"
        )
    };
    write_atomic(&rules.join("a.yml"), rule("first", "job:up:sum")).unwrap();
    let template = dir.path().join("prometheus.yml.tmpl");
    let output = dir.path().join("prometheus.yml");
    let config = |interval: &str, replica_ref: &str| {
        format!(
            "global:\n  scrape_interval: {interval}\n  external_labels:\n    cluster: envsubst\n    replica: '$({replica_ref})'\n\
             rule_files:\n  - {}/*.yml\n\
             scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            rules.display()
        )
    };
    write_atomic(&template, config("1s", "HYPNOS_TEST_REPLICA")).unwrap();

    // The sidecar first: it writes the substituted configuration Prometheus starts from.
    let http = free_port();
    let mut cmd = std::process::Command::new(hypnos_bin());
    cmd.env("HYPNOS_TEST_REPLICA", "replica-7").args([
        "sidecar",
        &format!("--prometheus.url={prom}"),
        &format!("--tsdb.path={}", dir.path().join("prom-data").display()),
        &format!("--reloader.config-file={}", template.display()),
        &format!("--reloader.config-envsubst-file={}", output.display()),
        &format!("--reloader.rule-dir={}", rules.display()),
        "--reloader.watch-interval=500ms",
        "--reloader.retry-interval=200ms",
        &format!("--grpc-address=127.0.0.1:{}", free_port()),
        &format!("--http-address=127.0.0.1:{http}"),
    ]);
    let mut sidecar = ChildGuard::spawn("sidecar", &mut cmd, dir.path());
    let sidecar_http = format!("http://127.0.0.1:{http}");
    eventually("the substituted configuration", Duration::from_secs(20), || async {
        match std::fs::read_to_string(&output) {
            Ok(s) if s.contains("replica: 'replica-7'") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let _prometheus = tokio::task::block_in_place(|| {
        let p = start_prometheus_at(dir.path(), port, "prometheus", &["--web.enable-lifecycle"]);
        common::wait_http_ok(
            &format!("{sidecar_http}/-/ready"),
            Duration::from_secs(30),
            &mut sidecar,
        );
        p
    });
    let (_, v) = get_json(&format!("{prom}/api/v1/status/config"), &[]).await;
    assert!(
        v["data"]["yaml"].as_str().unwrap().contains("replica: replica-7"),
        "{v}"
    );

    let rule_names = || async {
        let (_, v) = get_json(&format!("{prom}/api/v1/rules"), &[]).await;
        let mut names: Vec<String> = v["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(rule_names().await, vec!["job:up:sum"]);

    // A new rule file: Prometheus reloads and evaluates it.
    write_atomic(&rules.join("b.yml"), rule("second", "job:up:sum2")).unwrap();
    eventually("the new rule is loaded", Duration::from_secs(20), || async {
        let names = rule_names().await;
        if names == ["job:up:sum", "job:up:sum2"] {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    })
    .await;

    // A template change reaches Prometheus through the substituted output.
    write_atomic(&template, config("2s", "HYPNOS_TEST_REPLICA")).unwrap();
    eventually("the changed template is loaded", Duration::from_secs(20), || async {
        let yaml = loaded_config(&prom).await;
        if yaml.contains("scrape_interval: 2s") && yaml.contains("replica: replica-7") {
            Ok(())
        } else {
            Err(yaml)
        }
    })
    .await;
    let m = metrics_of(&sidecar_http).await;
    assert_eq!(metric(&m, "thanos_sidecar_reloader_reloads_total"), Some(3.0), "{m}");

    // An unset variable: the apply fails, the output and Prometheus keep the last good config.
    let before = std::fs::read_to_string(&output).unwrap();
    write_atomic(&template, config("3s", "HYPNOS_TEST_UNSET")).unwrap();
    eventually("the failed apply is counted", Duration::from_secs(20), || async {
        let m = metrics_of(&sidecar_http).await;
        match metric(&m, "thanos_sidecar_reloader_config_apply_operations_failed_total") {
            Some(f) if f >= 1.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(std::fs::read_to_string(&output).unwrap(), before);
    assert!(loaded_config(&prom).await.contains("scrape_interval: 2s"));
    let m = metrics_of(&sidecar_http).await;
    assert_eq!(metric(&m, "thanos_sidecar_reloader_reloads_total"), Some(3.0), "{m}");
    let log = std::fs::read_to_string(&sidecar.log).unwrap();
    assert!(
        log.contains("HYPNOS_TEST_UNSET"),
        "the error names the variable:\n{log}"
    );
}
