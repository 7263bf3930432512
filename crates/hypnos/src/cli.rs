//! The command line: Thanos's subcommand and flag names where Thanos has the component.

use anyhow::Context;
use clap::{Parser, Subcommand};
use hypnos_server::LogArgs;

use crate::tools;

#[derive(Debug, Parser)]
#[command(
    name = "hypnos",
    version,
    about = "A Rust implementation of the Prometheus long-term-storage stack that Thanos provides.",
    long_about = "A Rust implementation of the Prometheus long-term-storage stack that Thanos provides: \
                  an instrumented demo service, a sidecar that ships Prometheus blocks to object storage \
                  and serves them over the Thanos StoreAPI, a store gateway over the bucket, and a querier \
                  that fans out, deduplicates HA replicas and evaluates PromQL."
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sidecar for Prometheus: serves its data over StoreAPI and uploads its blocks to object storage.
    Sidecar(hypnos_sidecar::SidecarArgs),
    /// Store gateway: serves the blocks of an object-storage bucket over StoreAPI.
    Store(hypnos_store::StoreArgs),
    /// Querier: fans out to StoreAPI endpoints, deduplicates replicas and answers the Prometheus HTTP API.
    Query(hypnos_query::QueryArgs),
    /// The seed's instrumented web service, scraped by the demo's Prometheus servers.
    DemoApp(hypnos_demo_app::DemoAppArgs),
    /// Start the whole demo topology: demo-app, Prometheus HA pair and short-term server, sidecars,
    /// bucket, store gateway and querier.
    Demo(hypnos_demo::DemoArgs),
    /// Offline tools: TSDB blocks, block verification, PromQL test scripts.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Tools(cmd) => tools::run(cmd),
        Command::DemoApp(args) => runtime()?.block_on(async {
            hypnos_demo_app::run(args, hypnos_server::shutdown_signal())
                .await
                .context("demo-app")
        }),
        Command::Sidecar(args) => serve("sidecar", hypnos_sidecar::run(args, hypnos_server::shutdown_signal())),
        Command::Store(args) => serve("store", hypnos_store::run(args, hypnos_server::shutdown_signal())),
        Command::Query(args) => serve("query", hypnos_query::run(args, hypnos_server::shutdown_signal())),
        Command::Demo(args) => {
            let exe = std::env::current_exe().context("finding the hypnos executable")?;
            runtime()?.block_on(async {
                hypnos_demo::run(args, exe, hypnos_server::shutdown_signal())
                    .await
                    .context("demo")
            })
        }
    }
}

/// Runs a long-lived component on a fresh runtime.
fn serve<E>(component: &str, fut: impl std::future::Future<Output = Result<(), E>>) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    runtime()?.block_on(fut).with_context(|| format!("hypnos {component}"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
