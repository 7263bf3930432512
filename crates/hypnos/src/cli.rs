//! The command line: Thanos's subcommand and flag names where Thanos has the component.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
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
    Sidecar(ComponentArgs),
    /// Store gateway: serves the blocks of an object-storage bucket over StoreAPI.
    Store(ComponentArgs),
    /// Querier: fans out to StoreAPI endpoints, deduplicates replicas and answers the Prometheus HTTP API.
    Query(ComponentArgs),
    /// The seed's instrumented web service, scraped by the demo's Prometheus servers.
    DemoApp(hypnos_demo_app::DemoAppArgs),
    /// Start the whole demo topology: demo-app, Prometheus HA pair and short-term server, sidecars,
    /// bucket, store gateway and querier.
    Demo(hypnos_demo::DemoArgs),
    /// Offline tools: TSDB blocks, block verification, PromQL test scripts.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
}

/// Flags shared by the network components until each gets its own full set.
#[derive(Debug, Args)]
pub struct ComponentArgs {
    /// Listen host:port for HTTP endpoints.
    #[arg(long = "http-address", default_value = "0.0.0.0:10902")]
    pub http_address: SocketAddr,
    /// Listen host:port for the gRPC StoreAPI.
    #[arg(long = "grpc-address", default_value = "0.0.0.0:10901")]
    pub grpc_address: SocketAddr,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Tools(cmd) => tools::run(cmd),
        Command::DemoApp(args) => runtime()?.block_on(async {
            hypnos_demo_app::run(args, hypnos_server::shutdown_signal())
                .await
                .context("demo-app")
        }),
        Command::Sidecar(_) => not_yet("sidecar", 7),
        Command::Store(_) => not_yet("store", 5),
        Command::Query(_) => not_yet("query", 6),
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

fn not_yet(component: &str, issue: u32) -> anyhow::Result<()> {
    anyhow::bail!("`hypnos {component}` is not implemented yet (tracked in issue #{issue})")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
