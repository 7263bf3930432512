//! `hypnos tools block …` (owned by the TSDB work: argument parsing here, logic in hypnos-tsdb).

use clap::Args;

#[derive(Debug, Args)]
pub struct BlockArgs {}

pub fn run(_args: BlockArgs) -> anyhow::Result<()> {
    anyhow::bail!("`hypnos tools block` is not implemented yet")
}
