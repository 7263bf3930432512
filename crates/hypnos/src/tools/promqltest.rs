//! `hypnos tools promqltest FILE...` (owned by the PromQL work: argument parsing here, logic in hypnos-promql).

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct PromqltestArgs {
    /// Test scripts in the upstream promqltest language.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: PromqltestArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let (_, failed) = hypnos_promql::promqltest::run_files(&args.files, &mut out)?;
    if failed > 0 {
        anyhow::bail!("{failed} promqltest case(s) failed");
    }
    Ok(())
}
