//! The browser-test toolchain (Node.js, Debian's chromium and `ui/tests/e2e.mjs` with its
//! playwright-core), shared by the UI's own browser test and the querier's end-to-end test.
//! Finding it never skips: what is missing comes back as the command that installs it.

use std::path::{Path, PathBuf};

/// What `ui/tests/e2e.mjs` needs to run.
#[derive(Clone, Debug)]
pub struct BrowserTools {
    pub node: PathBuf,
    pub chromium: PathBuf,
    /// `ui/tests/e2e.mjs`.
    pub script: PathBuf,
    /// The repository root, the script's working directory.
    pub repo_root: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

impl BrowserTools {
    /// Finds node on PATH, chromium at `$CHROMIUM` or `/usr/bin/chromium`, and the e2e script
    /// with `ui/node_modules`; the error names the install step for whatever is missing.
    pub fn find() -> Result<BrowserTools, String> {
        let node = on_path("node").ok_or("`node` is not on PATH: apt-get install -y nodejs npm")?;
        let chromium = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
        if !chromium.is_file() {
            return Err(format!(
                "{} missing: apt-get install -y chromium (or set CHROMIUM)",
                chromium.display()
            ));
        }
        let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let ui = repo_root.join("ui");
        if !ui.join("node_modules/playwright-core/package.json").is_file() {
            return Err(format!(
                "playwright-core is not installed: cd {} && npm ci",
                ui.display()
            ));
        }
        Ok(BrowserTools {
            node,
            chromium,
            script: ui.join("tests/e2e.mjs"),
            repo_root,
        })
    }
}

/// An empty `<target>/ui-screenshots/<name>/`, given a test's `CARGO_TARGET_TMPDIR`.
pub fn screenshot_dir(target_tmpdir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let target = target_tmpdir.parent().unwrap_or(target_tmpdir);
    let dir = target.join("ui-screenshots").join(name);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
