//! `hypnos tools bucket ls|inspect|verify`: Thanos's bucket tools over an objstore config
//! (`--objstore.config-file` / `--objstore.config`). The logic is in `hypnos_store::tools`.

use anyhow::Context;
use clap::{Args, Subcommand};
use hypnos_store::ObjstoreArgs;
use hypnos_store::tools;

#[derive(Debug, Args)]
pub struct BucketArgs {
    #[command(flatten)]
    pub objstore: ObjstoreArgs,
    #[command(subcommand)]
    pub command: BucketCommand,
}

#[derive(Debug, Subcommand)]
pub enum BucketCommand {
    /// List all blocks in the bucket.
    Ls {
        /// Output format: "" (ULIDs), wide or json.
        #[arg(short = 'o', long = "output", default_value = "")]
        output: String,
    },
    /// Inspect all blocks in the bucket in a table.
    Inspect {
        /// Selects blocks by external labels, `name=value`; repeatable.
        #[arg(short = 'l', long = "selector")]
        selector: Vec<String>,
        /// Sort by columns (e.g. FROM, UNTIL, #SERIES); repeatable.
        #[arg(long = "sort-by")]
        sort_by: Vec<String>,
        /// Output format: table, tsv or csv.
        #[arg(long = "output", default_value = "table")]
        output: String,
    },
    /// Verify all blocks in the bucket against known issues; exits 1 when any is found.
    Verify {
        /// Issues to verify: index_known_issues, overlapped_blocks; repeatable.
        #[arg(short = 'i', long = "issues", default_values_t = ["index_known_issues".to_string(), "overlapped_blocks".to_string()])]
        issues: Vec<String>,
        /// Only verify these block IDs; repeatable.
        #[arg(long = "id")]
        ids: Vec<String>,
    },
}

pub fn run(args: BucketArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let bucket = args.objstore.open_existing()?;
        match args.command {
            BucketCommand::Ls { output } => print!("{}", tools::ls(bucket.as_ref(), &output).await?),
            BucketCommand::Inspect {
                selector,
                sort_by,
                output,
            } => print!(
                "{}",
                tools::inspect(bucket.as_ref(), &selector, &sort_by, &output).await?
            ),
            BucketCommand::Verify { issues, ids } => {
                let scratch = std::env::temp_dir().join(format!("hypnos-bucket-verify-{}", std::process::id()));
                let found = tools::verify(bucket, &issues, &ids, &scratch).await;
                let _ = std::fs::remove_dir_all(&scratch);
                let found = found?;
                for i in &found {
                    println!("issue={} block={} {}", i.kind, i.block, i.detail);
                }
                if !found.is_empty() {
                    anyhow::bail!("verify: {} issue(s) found", found.len());
                }
                println!("verify: no issues found");
            }
        }
        Ok(())
    })
}
