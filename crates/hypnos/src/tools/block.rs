//! `hypnos tools block …` (argument parsing here, logic in hypnos-tsdb).

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct BlockArgs {
    #[command(subcommand)]
    command: BlockCommand,
}

#[derive(Debug, Subcommand)]
enum BlockCommand {
    /// Verify blocks: checksums, ordering, chunk references, overlapping chunks, stats.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// A block directory, or a directory of blocks.
    dir: PathBuf,
}

pub fn run(args: BlockArgs) -> anyhow::Result<()> {
    match args.command {
        BlockCommand::Verify(a) => {
            let blocks = hypnos_tsdb::tools::blocks_in(&a.dir)?;
            if blocks.is_empty() {
                anyhow::bail!("no blocks found in {}", a.dir.display());
            }
            let mut bad = 0;
            for b in blocks {
                let pb = super::tsdb::progress_bar("verifying");
                let mut report = |done: u64, total: u64| {
                    pb.set_length(total);
                    pb.set_position(done);
                };
                let rep = hypnos_tsdb::tools::verify::verify_block(&b, &mut report)?;
                pb.finish_and_clear();
                if rep.problems.is_empty() {
                    println!(
                        "{}: ok ({} series, {} chunks, {} samples)",
                        rep.block, rep.series, rep.chunks, rep.samples
                    );
                } else {
                    bad += 1;
                    println!("{}: {} problem(s)", rep.block, rep.problems.len());
                    for p in &rep.problems {
                        println!("  {p}");
                    }
                }
            }
            if bad > 0 {
                anyhow::bail!("{bad} block(s) failed verification");
            }
            Ok(())
        }
    }
}
