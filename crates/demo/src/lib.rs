//! `hypnos demo`: the seed's topology (SYSTEM.md) on one machine. It writes the Prometheus
//! configurations it uses under `--data-dir`, starts every process, waits until each is
//! ready, prints a table of URLs, and stops them all together on Ctrl-C.
//!
//! Every piece is a real process: Prometheus from PATH, and the Hypnos components as
//! subcommands of the running `hypnos` binary, so the demo exercises exactly what a user
//! would deploy.

mod args;
mod config;
pub mod history;
mod process;
mod topology;

pub use args::DemoArgs;
pub use topology::{Component, Topology};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "`{0}` was not found on PATH. Hypnos runs real Prometheus servers in the demo: install them with \
         `sudo apt-get install -y prometheus` (Debian/Ubuntu), or point --prometheus.binary at a prometheus binary"
    )]
    PrometheusMissing(String),
    #[error(
        "{addr} ({component}) is already in use. If Debian's prometheus package started its own service there, \
         stop it with `sudo systemctl disable --now prometheus`; or choose other ports with --port-offset"
    )]
    PortInUse { addr: String, component: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{component} did not become ready at {url} within {secs}s; its log is {log}")]
    NotReady {
        component: String,
        url: String,
        secs: u64,
        log: PathBuf,
    },
    #[error("generating history: {0}")]
    History(String),
    #[error("{component} exited during start-up ({status}); its log is {log}")]
    ExitedEarly {
        component: String,
        status: String,
        log: PathBuf,
    },
}

pub use process::run;
