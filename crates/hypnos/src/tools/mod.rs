//! `hypnos tools …`: offline utilities, shaped like promtool's and Thanos's tools.

pub mod block;
pub mod bucket;
pub mod generate;
pub mod promqltest;
pub mod tsdb;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Work with Prometheus TSDB data directories and blocks (like `promtool tsdb`).
    Tsdb(tsdb::TsdbArgs),
    /// Check blocks for corruption.
    Block(block::BlockArgs),
    /// Bucket tools: list, inspect and verify the blocks of an object-storage bucket (like `thanos tools bucket`).
    Bucket(bucket::BucketArgs),
    /// Generate realistic TSDB history (thanosbench-style plans and the seed's metrics) into data dirs or a bucket.
    Generate(generate::GenerateArgs),
    /// Run PromQL test scripts in the upstream promqltest language.
    Promqltest(promqltest::PromqltestArgs),
}

pub fn run(cmd: ToolsCommand) -> anyhow::Result<()> {
    match cmd {
        ToolsCommand::Tsdb(a) => tsdb::run(a),
        ToolsCommand::Block(a) => block::run(a),
        ToolsCommand::Bucket(a) => bucket::run(a),
        ToolsCommand::Generate(a) => generate::run(a),
        ToolsCommand::Promqltest(a) => promqltest::run(a),
    }
}
