//! `hypnos tools tsdb …` (owned by the TSDB work: argument parsing here, logic in hypnos-tsdb).

use clap::Args;

#[derive(Debug, Args)]
pub struct TsdbArgs {}

pub fn run(_args: TsdbArgs) -> anyhow::Result<()> {
    anyhow::bail!("`hypnos tools tsdb` is not implemented yet")
}
