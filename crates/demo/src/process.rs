//! Starting, watching and stopping the demo's processes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::{Component, DemoArgs, DemoError, Topology};

const READY_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_GRACE: Duration = Duration::from_secs(15);

struct Running {
    component: Component,
    child: Child,
    log: PathBuf,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}

/// Finds `program` on PATH (or as a path), like a shell would.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn check_ports_free(topology: &Topology) -> Result<(), DemoError> {
    for c in &topology.components {
        for addr in std::iter::once(&c.http_addr).chain(c.grpc_addr.as_ref()) {
            if std::net::TcpListener::bind(addr.as_str()).is_err() {
                return Err(DemoError::PortInUse {
                    addr: addr.clone(),
                    component: c.name.clone(),
                });
            }
        }
    }
    Ok(())
}

async fn spawn(c: &Component, log_dir: &Path) -> Result<Running, DemoError> {
    let log = log_dir.join(format!("{}.log", c.name));
    let out = std::fs::File::create(&log).map_err(io(format!("creating {}", log.display())))?;
    let err = out.try_clone().map_err(io("duplicating a log file handle"))?;
    let mut cmd = Command::new(&c.program);
    // The demo's processes must not outlive it, even when it is killed with SIGKILL and cannot
    // stop them itself: the kernel sends each one SIGTERM when the demo goes away.
    // SAFETY: the closure runs between fork and exec and only makes the prctl(2) system call,
    // which is async-signal-safe; it touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from));
    }
    let child = cmd
        .args(&c.args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
        .map_err(io(format!("starting {} ({})", c.name, c.program.display())))?;
    tracing::info!(component = %c.name, pid = child.id(), log = %log.display(), "started");
    Ok(Running {
        component: c.clone(),
        child,
        log,
    })
}

async fn wait_ready(r: &mut Running, client: &reqwest::Client) -> Result<(), DemoError> {
    let url = format!("{}{}", r.component.url(), r.component.ready_path);
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(resp) = client.get(&url).send().await
            && resp.status().is_success()
        {
            return Ok(());
        }
        if let Ok(Some(status)) = r.child.try_wait() {
            return Err(DemoError::ExitedEarly {
                component: r.component.name.clone(),
                status: status.to_string(),
                log: r.log.clone(),
            });
        }
        if Instant::now() > deadline {
            return Err(DemoError::NotReady {
                component: r.component.name.clone(),
                url,
                secs: READY_TIMEOUT.as_secs(),
                log: r.log.clone(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asks every process to stop (SIGTERM, newest first, so that consumers go before what
/// they consume), then kills whatever is still running after the grace period.
async fn stop_all(running: &mut [Running]) {
    for r in running.iter().rev() {
        if let Some(pid) = r.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    for r in running.iter_mut().rev() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, r.child.wait()).await {
            Ok(_) => tracing::info!(component = %r.component.name, "stopped"),
            Err(_) => {
                tracing::warn!(component = %r.component.name, "did not stop in time, killing it");
                let _ = r.child.kill().await;
            }
        }
    }
}

/// Runs the whole topology until `shutdown` resolves.
pub async fn run(args: DemoArgs, hypnos_exe: PathBuf, shutdown: impl Future<Output = ()>) -> Result<(), DemoError> {
    let prometheus = find_program(Path::new(&args.prometheus_binary))
        .ok_or_else(|| DemoError::PrometheusMissing(args.prometheus_binary.clone()))?;
    let mut args = args;
    args.prometheus_binary = prometheus.display().to_string();
    let topology = Topology::seed(&args, &hypnos_exe);
    check_ports_free(&topology)?;

    let log_dir = args.data_dir.join("logs");
    std::fs::create_dir_all(&log_dir).map_err(io(format!("creating {}", log_dir.display())))?;
    for d in &topology.dirs {
        std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
    }
    for (path, content) in &topology.files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
        }
        std::fs::write(path, content).map_err(io(format!("writing {}", path.display())))?;
    }

    // Polled from here on, so that a Ctrl-C or SIGTERM during the backfill or the start-up
    // stops what is already running instead of killing the demo outright.
    tokio::pin!(shutdown);
    if let Some(duration) = args.with_history {
        let end = hypnos_generate::plan::align_down(hypnos_generate::plan::now_ms());
        let targets = topology.history_targets(&args);
        tokio::select! {
            r = crate::history::backfill(duration, end, &targets) => r?,
            _ = &mut shutdown => return Ok(()),
        }
    }

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| io("building an HTTP client")(std::io::Error::other(e)))?;
    let mut running: Vec<Running> = Vec::new();
    for c in &topology.components {
        let mut r = match spawn(c, &log_dir).await {
            Ok(r) => r,
            Err(e) => {
                stop_all(&mut running).await;
                return Err(e);
            }
        };
        let outcome = tokio::select! {
            ready = wait_ready(&mut r, &client) => Some(ready),
            _ = &mut shutdown => None,
        };
        running.push(r);
        match outcome {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                stop_all(&mut running).await;
                return Err(e);
            }
            None => {
                stop_all(&mut running).await;
                return Ok(());
            }
        }
    }

    println!(
        "\nHypnos demo is up. Data, configs and logs are in {}\n",
        args.data_dir.display()
    );
    println!("{}", topology.url_table());
    let entry = topology.entry_point().unwrap_or(&topology.components[1]);
    println!(
        "Try: curl -s '{}/api/v1/query?query=instances_active_session'",
        entry.url()
    );
    println!("Press Ctrl-C to stop everything.\n");

    let mut watch = tokio::time::interval(Duration::from_secs(2));
    let mut reported = vec![false; running.len()];
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = watch.tick() => {
                for (i, r) in running.iter_mut().enumerate() {
                    if !reported[i] && let Ok(Some(status)) = r.child.try_wait() {
                        reported[i] = true;
                        tracing::error!(component = %r.component.name, %status, log = %r.log.display(),
                            "component exited; the rest of the demo keeps running");
                    }
                }
            }
        }
    }
    stop_all(&mut running).await;
    Ok(())
}
