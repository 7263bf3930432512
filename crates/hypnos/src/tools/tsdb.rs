//! `hypnos tools tsdb …`, shaped like `promtool tsdb …` (argument parsing here, logic in hypnos-tsdb).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Args)]
pub struct TsdbArgs {
    #[command(subcommand)]
    command: TsdbCommand,
}

#[derive(Debug, Subcommand)]
enum TsdbCommand {
    /// Create blocks of data for new recording rules or from other formats (like promtool).
    #[command(name = "create-blocks-from", subcommand)]
    CreateBlocksFrom(CreateFrom),
    /// Dump samples from a TSDB data directory or block.
    Dump(DumpArgs),
    /// List blocks of a TSDB data directory.
    List(ListArgs),
    /// Analyze churn, label pair cardinality and compaction efficiency of a block.
    Analyze(AnalyzeArgs),
}

#[derive(Debug, Subcommand)]
enum CreateFrom {
    /// Import samples from an OpenMetrics input and produce TSDB blocks.
    Openmetrics(OpenMetricsArgs),
}

#[derive(Debug, Args)]
struct OpenMetricsArgs {
    /// OpenMetrics file to read samples from.
    input: PathBuf,
    /// Output directory for generated blocks.
    #[arg(default_value = "data/")]
    output: PathBuf,
    /// Print human readable values.
    #[arg(short = 'r', long)]
    human_readable: bool,
    /// Do not print created blocks.
    #[arg(short, long)]
    quiet: bool,
    /// Maximum duration created blocks may span (rounded to 2h·3^n like promtool).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2h")]
    max_block_duration: Duration,
}

#[derive(Debug, Args)]
struct DumpArgs {
    /// Database path (a data directory or one block).
    #[arg(default_value = "data/")]
    db_path: PathBuf,
    /// Minimum timestamp to dump (ms).
    #[arg(long, default_value_t = i64::MIN, allow_hyphen_values = true)]
    min_time: i64,
    /// Maximum timestamp to dump (ms).
    #[arg(long, default_value_t = i64::MAX, allow_hyphen_values = true)]
    max_time: i64,
    /// Series selector; repeatable (series matching any selector are dumped).
    #[arg(long = "match")]
    matches: Vec<String>,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Database path.
    #[arg(default_value = "data/")]
    db_path: PathBuf,
    /// Print human readable values.
    #[arg(short = 'r', long)]
    human_readable: bool,
}

#[derive(Debug, Args)]
struct AnalyzeArgs {
    /// Database path.
    #[arg(default_value = "data/")]
    db_path: PathBuf,
    /// Block to analyze (default is the last block).
    block_id: Option<String>,
    /// How many items to show in each list.
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

/// A progress bar on stderr that only draws when stderr is a terminal.
pub(crate) fn progress_bar(what: &str) -> ProgressBar {
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_message(what.to_string());
    pb
}

pub fn run(args: TsdbArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    match args.command {
        TsdbCommand::CreateBlocksFrom(CreateFrom::Openmetrics(a)) => {
            let pb = progress_bar("creating blocks");
            let mut report = |done: u64, total: u64| {
                pb.set_length(total);
                pb.set_position(done);
            };
            let ms = i64::try_from(a.max_block_duration.as_millis()).context("--max-block-duration too large")?;
            let metas =
                hypnos_tsdb::tools::create::create_blocks_from_openmetrics(&a.input, &a.output, ms, &mut report)
                    .with_context(|| format!("creating blocks from {}", a.input.display()))?;
            pb.finish_and_clear();
            if !a.quiet {
                let mut rows = Vec::new();
                for m in metas {
                    let size = hypnos_tsdb::tools::list::block_size(&a.output.join(&m.ulid))?;
                    rows.push((m, size));
                }
                let table = hypnos_tsdb::tools::list::list_table(&rows, a.human_readable);
                stdout.lock().write_all(table.as_bytes())?;
            }
            Ok(())
        }
        TsdbCommand::Dump(a) => {
            let mut selectors = Vec::new();
            for m in &a.matches {
                selectors.push(hypnos_tsdb::tools::dump::parse_selector(m)?);
            }
            let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
            let pb = progress_bar("dumping");
            let mut report = |done: u64, total: u64| {
                pb.set_length(total);
                pb.set_position(done);
            };
            hypnos_tsdb::tools::dump::dump(&a.db_path, a.min_time, a.max_time, &selectors, &mut out, &mut report)
                .with_context(|| format!("dumping {}", a.db_path.display()))?;
            pb.finish_and_clear();
            out.flush()?;
            Ok(())
        }
        TsdbCommand::List(a) => {
            hypnos_tsdb::tools::list::list(&a.db_path, a.human_readable, &mut stdout.lock())?;
            Ok(())
        }
        TsdbCommand::Analyze(a) => {
            let pb = progress_bar("analyzing");
            let mut report = |done: u64, total: u64| {
                pb.set_length(total);
                pb.set_position(done);
            };
            hypnos_tsdb::tools::analyze::analyze(
                &a.db_path,
                a.block_id.as_deref(),
                a.limit,
                &mut stdout.lock(),
                &mut report,
            )?;
            pb.finish_and_clear();
            Ok(())
        }
    }
}
