//! `hypnos tools promqltest FILE...` (owned by the PromQL work: argument parsing here, logic in hypnos-promql).

use clap::Args;

#[derive(Debug, Args)]
pub struct PromqltestArgs {}

pub fn run(_args: PromqltestArgs) -> anyhow::Result<()> {
    anyhow::bail!("`hypnos tools promqltest` is not implemented yet")
}
