//! The config reloader: polls the content hash of Prometheus's configuration file (and of the
//! files under `--reloader.rule-dir`) and, when it differs from the last one Prometheus
//! accepted, asks Prometheus to reload (`POST /-/reload`).
//!
//! Behaviour follows Thanos's `pkg/reloader`:
//! - the first check happens at start-up and, as nothing has been applied yet, always reloads
//!   (so a configuration edited while the sidecar was down is picked up);
//! - a failed reload is retried every `--reloader.retry-interval` until it succeeds or the next
//!   watch interval begins; after that every check retries until one succeeds;
//! - with `--reloader.config-envsubst-file`, the configuration with `$(VAR)` replaced by the
//!   environment variable's value is written there (Prometheus then reads that file); an unset
//!   variable is an error;
//! - watched files that cannot be read at start-up are an error that stops the sidecar; later
//!   errors are counted as failed apply operations and the watch goes on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xxhash_rust::xxh64::Xxh64;

use crate::metrics::SidecarMetrics;
use crate::promclient::PromClient;

/// Directory levels followed under a rule directory (guards against symlink cycles).
const MAX_RULE_DIR_DEPTH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ReloaderError {
    #[error("reloader: reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reloader: writing the substituted configuration {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reloader: {}: found reference to unset environment variable {var:?}", file.display())]
    UnsetVariable { file: PathBuf, var: String },
    #[error("reloader: rule directory {} is nested deeper than {MAX_RULE_DIR_DEPTH} levels (a symlink cycle?)", dir.display())]
    TooDeep { dir: PathBuf },
}

/// What the reloader watches and how often.
#[derive(Debug, Clone)]
pub struct ReloaderConfig {
    pub config_file: Option<PathBuf>,
    pub envsubst_file: Option<PathBuf>,
    pub rule_dirs: Vec<PathBuf>,
    pub watch_interval: Duration,
    pub retry_interval: Duration,
}

#[derive(Debug)]
pub struct Reloader {
    config: ReloaderConfig,
    client: PromClient,
    metrics: SidecarMetrics,
    /// Hash of the watched content Prometheus last accepted; `None` before the first reload.
    applied: Option<u64>,
}

fn read(path: &Path) -> Result<Vec<u8>, ReloaderError> {
    std::fs::read(path).map_err(|source| ReloaderError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Adds a file to the hash, its name included (a renamed rule file is a change).
fn hash_file(h: &mut Xxh64, path: &Path, content: &[u8]) {
    h.update(b"\xff");
    h.update(path.as_os_str().as_encoded_bytes());
    h.update(b"\xff");
    h.update(content);
}

/// Hashes every file under `dir` in path order, following symlinks.
fn hash_dir(h: &mut Xxh64, dir: &Path, depth: usize) -> Result<(), ReloaderError> {
    if depth > MAX_RULE_DIR_DEPTH {
        return Err(ReloaderError::TooDeep { dir: dir.to_path_buf() });
    }
    let read_err = |source| ReloaderError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    entries.sort();
    for path in entries {
        let meta = std::fs::metadata(&path).map_err(|source| ReloaderError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            hash_dir(h, &path, depth + 1)?;
        } else {
            let content = read(&path)?;
            hash_file(h, &path, &content);
        }
    }
    Ok(())
}

/// Replaces every `$(NAME)` (NAME of ASCII letters, digits and `_`) by the environment
/// variable's value, as Thanos's reloader does.
pub fn expand_env(input: &str, lookup: impl Fn(&str) -> Option<String>, file: &Path) -> Result<String, ReloaderError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len > 0 && after.as_bytes().get(name_len) == Some(&b')') {
            let name = &after[..name_len];
            let value = lookup(name).ok_or_else(|| ReloaderError::UnsetVariable {
                file: file.to_path_buf(),
                var: name.to_string(),
            })?;
            out.push_str(&value);
            rest = &after[name_len + 1..];
        } else {
            out.push_str("$(");
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Writes `content` to `path` through a temporary file and a rename, unless it is already
/// there, so that Prometheus never reads a half-written file.
fn write_if_changed(path: &Path, content: &[u8]) -> Result<(), ReloaderError> {
    if std::fs::read(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    let write_err = |source| ReloaderError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, content).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
}

impl Reloader {
    /// Checks that everything watched is readable now, as Thanos refuses to start otherwise.
    pub fn new(config: ReloaderConfig, client: PromClient, metrics: SidecarMetrics) -> Result<Self, ReloaderError> {
        let reloader = Reloader {
            config,
            client,
            metrics,
            applied: None,
        };
        reloader.watched_hash()?;
        Ok(reloader)
    }

    /// Hash of the configuration file and the rule directories; writes the substituted
    /// configuration first when asked to.
    fn watched_hash(&self) -> Result<u64, ReloaderError> {
        let mut h = Xxh64::new(0);
        if let Some(file) = &self.config.config_file {
            let content = read(file)?;
            hash_file(&mut h, file, &content);
            if let Some(out) = &self.config.envsubst_file {
                let text = String::from_utf8_lossy(&content);
                let expanded = expand_env(&text, |name| std::env::var(name).ok(), file)?;
                write_if_changed(out, expanded.as_bytes())?;
            }
        }
        for dir in &self.config.rule_dirs {
            hash_dir(&mut h, dir, 0)?;
        }
        Ok(h.digest())
    }

    /// Watches until the task is dropped; the first check runs at once.
    pub async fn run(mut self) {
        if self.config.watch_interval.is_zero() {
            tracing::info!("--reloader.watch-interval=0: not watching");
            return;
        }
        tracing::info!(
            config = ?self.config.config_file,
            rule_dirs = ?self.config.rule_dirs,
            interval = ?self.config.watch_interval,
            "watching Prometheus configuration"
        );
        let mut tick = tokio::time::interval(self.config.watch_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            tick.tick().await;
            // Thanos counts apply operations of the watch loop, not the initial one.
            if !first {
                self.metrics.config_apply_operations.inc();
            }
            first = false;
            if let Err(e) = self.apply().await {
                self.metrics.config_apply_operation_failures.inc();
                tracing::error!(error = %e, "reloader: apply");
            }
        }
    }

    /// Reloads Prometheus when the watched content differs from the last accepted one,
    /// retrying until the next watch interval is due.
    async fn apply(&mut self) -> Result<(), ReloaderError> {
        let mut hash = self.watched_hash()?;
        if self.applied == Some(hash) {
            return Ok(());
        }
        let give_up = Instant::now() + self.config.watch_interval;
        loop {
            // Prometheus reads the files when it reloads: remember what it will read now, not
            // what an earlier attempt saw (an edit between retries is then not reloaded twice).
            hash = self.watched_hash()?;
            self.metrics.reloads.inc();
            match self.client.reload().await {
                Ok(()) => {
                    self.applied = Some(hash);
                    self.metrics.last_reload_successful.set(1);
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    self.metrics.last_reload_success_timestamp.set(now);
                    tracing::info!(config = ?self.config.config_file, "Reload triggered");
                    return Ok(());
                }
                Err(e) => {
                    self.metrics.reload_failures.inc();
                    self.metrics.last_reload_successful.set(0);
                    tracing::error!(
                        error = %e,
                        "Failed to trigger reload (does Prometheus run with --web.enable-lifecycle?). Retrying."
                    );
                }
            }
            if Instant::now() + self.config.retry_interval >= give_up {
                return Ok(());
            }
            tokio::time::sleep(self.config.retry_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOSTNAME" => Some("prom-0".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn env_expansion() {
        let f = Path::new("p.yml");
        assert_eq!(
            expand_env("replica: '$(HOSTNAME)' x$(EMPTY)y", env, f).unwrap(),
            "replica: 'prom-0' xy"
        );
        // Not references: `$x`, `${x}`, `$(` without a name or closing parenthesis.
        for s in ["$HOSTNAME ${HOSTNAME}", "$(", "$()", "$(HOST NAME)", "a $(HOSTNAME"] {
            assert_eq!(expand_env(s, env, f).unwrap(), s);
        }
        let err = expand_env("a: $(NOPE)", env, f).unwrap_err().to_string();
        assert!(err.contains("\"NOPE\"") && err.contains("p.yml"), "{err}");
    }

    #[test]
    fn rule_dir_hash_sees_content_names_and_nesting() {
        let dir = tempfile::tempdir().unwrap();
        let hash = || {
            let mut h = Xxh64::new(0);
            hash_dir(&mut h, dir.path(), 0).unwrap();
            h.digest()
        };
        std::fs::write(dir.path().join("a.yml"), "groups: []").unwrap();
        let h1 = hash();
        assert_eq!(hash(), h1);
        std::fs::write(dir.path().join("a.yml"), "groups: [x]").unwrap();
        let h2 = hash();
        assert_ne!(h2, h1);
        std::fs::rename(dir.path().join("a.yml"), dir.path().join("b.yml")).unwrap();
        assert_ne!(hash(), h2);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let h3 = hash();
        std::fs::write(dir.path().join("sub/c.yml"), "groups: []").unwrap();
        assert_ne!(hash(), h3);
        let mut h = Xxh64::new(0);
        assert!(hash_dir(&mut h, &dir.path().join("missing"), 0).is_err());
    }
}
