//! `hypnos demo --with-history`: generated days of the seed's metrics, written before the
//! processes start so that the querier has something to look at right away.
//!
//! Where history goes mirrors a real deployment: the most recent week sits in the HA pair's
//! data directories (Prometheus keeps 10 days there, and sidecar-0 ships them to the
//! bucket), plus the short-term server's; anything older goes straight into the bucket, as
//! if an earlier sidecar had shipped it, and reaches the querier through the store gateway.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hypnos_generate::plan::{BlockRange, DAY, HOUR, SECOND};
use hypnos_generate::{Options, Output, Plan, Profile, Progress, generate};

use crate::DemoError;

/// History newer than this is written into the Prometheus data directories; older history
/// into the bucket. Below the HA pair's 10-day retention, so Prometheus does not delete it
/// at start-up.
pub const LOCAL_HISTORY: i64 = 7 * DAY;
/// Block length of the bucket part (a compactor's 2-day level).
const BUCKET_BLOCK: i64 = 48 * HOUR;
/// Demo-app instances the history has per cluster.
const TARGETS: usize = 3;

/// Where each piece of a `--with-history` backfill goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryLayout {
    /// Blocks for each Prometheus data directory (oldest first), ending at `end`.
    pub local: Vec<BlockRange>,
    /// Blocks for the bucket (oldest first), ending where `local` starts.
    pub bucket: Vec<BlockRange>,
}

/// Splits `duration` (ms) of history ending at `end` into the local and bucket parts.
/// `end` should be a 2h boundary at or before now: Prometheus's head starts after it.
pub fn layout(duration: i64, end: i64) -> HistoryLayout {
    let duration = duration.max(0);
    let local_len = duration.min(LOCAL_HISTORY);
    // The local part has the blocks a Prometheus that compacted for a week would have:
    // thanosbench's one-week shape, cut short for less history.
    let week = Plan::named("seed-1w", end).map(|p| p.blocks).unwrap_or_default();
    let local = clip(week, end - local_len);
    let bucket_end = end - local_len;
    let bucket_len = duration - local_len;
    let bucket_blocks = (0..(bucket_len + BUCKET_BLOCK - 1) / BUCKET_BLOCK).map(|i| BlockRange {
        min_time: bucket_end - (i + 1) * BUCKET_BLOCK,
        max_time: bucket_end - i * BUCKET_BLOCK,
    });
    let bucket = clip(bucket_blocks.rev().collect(), bucket_end - bucket_len);
    HistoryLayout { local, bucket }
}

/// The blocks (oldest first) that end after `start`, the oldest one shortened to begin there.
fn clip(blocks: Vec<BlockRange>, start: i64) -> Vec<BlockRange> {
    blocks
        .into_iter()
        .filter(|b| b.max_time > start)
        .map(|b| BlockRange {
            min_time: b.min_time.max(start),
            max_time: b.max_time,
        })
        .collect()
}

/// What the backfill writes into: the demo's directories and bucket.
pub struct HistoryTargets {
    /// The HA pair's data directories (replica 0, replica 1).
    pub ha_pair: [PathBuf; 2],
    /// The short-term Prometheus's data directory.
    pub short_term: PathBuf,
    /// The demo's objstore configuration file.
    pub objstore_config: PathBuf,
}

/// True when `dir` already holds a TSDB block (a directory with a meta.json).
fn has_blocks(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .any(|e| e.path().join("meta.json").is_file())
        })
        .unwrap_or(false)
}

fn plan(name: &str, blocks: Vec<BlockRange>) -> Plan {
    Plan {
        name: name.into(),
        blocks,
        interval: 15 * SECOND,
        profile: Profile::seed(TARGETS),
    }
}

/// Prints a line every 10 % so a long backfill shows it is moving.
fn progress_printer(what: &'static str) -> impl Fn(Progress) + Send + Sync + 'static {
    let last = std::sync::atomic::AtomicU64::new(u64::MAX);
    move |p: Progress| {
        let pct = (p.samples_done * 100)
            .checked_div(p.samples_total)
            .unwrap_or(100)
            .min(100);
        let decile = pct / 10;
        if last.swap(decile, std::sync::atomic::Ordering::Relaxed) != decile {
            eprintln!("  {what}: {pct:3}% ({} of {} blocks)", p.blocks_done, p.blocks_total);
        }
    }
}

/// Runs the generator off the async threads; it logs its own summary line.
async fn run_generate(plan: Plan, output: Output, opts: Options) -> Result<(), DemoError> {
    tokio::task::spawn_blocking(move || generate(&plan, &output, &opts))
        .await
        .map_err(|e| DemoError::History(format!("generator task: {e}")))?
        .map(|_summary| ())
        .map_err(|e| DemoError::History(e.to_string()))
}

/// Writes `duration` of history ending at `end` (a 2h boundary at or before now). Skips,
/// with a message, when the data directories already hold blocks from an earlier run:
/// writing again would overlap them.
pub async fn backfill(duration: Duration, end: i64, targets: &HistoryTargets) -> Result<(), DemoError> {
    let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    if duration_ms < 2 * HOUR {
        return Err(DemoError::History(format!(
            "--with-history={} is shorter than one 2h block",
            humantime::format_duration(duration)
        )));
    }
    let dirs = [&targets.ha_pair[0], &targets.ha_pair[1], &targets.short_term];
    if let Some(d) = dirs.iter().find(|d| has_blocks(d)) {
        println!(
            "History: {} already holds blocks from an earlier run; not generating again \
             (delete --data-dir to start over).",
            d.display()
        );
        return Ok(());
    }
    let layout = layout(duration_ms, end);
    println!(
        "Backfilling {} of history (seed metrics of {TARGETS} demo-app instances per cluster, 15s interval)...",
        humantime::format_duration(duration)
    );

    let ha = Options::default()
        .with_seed(1)
        .with_replicas(2)
        .with_label("cluster", "ap-south1")
        .with_progress(progress_printer("HA pair (prom1, prom10)"));
    let out = Output::Dirs(targets.ha_pair.to_vec());
    run_generate(plan("history-ha-pair", layout.local.clone()), out, ha).await?;

    // Its own seed: different series values and block ULIDs from the HA pair's.
    let short = Options::default()
        .with_seed(2)
        .with_label("cluster", "ap-south2")
        .with_label("replica", "0")
        .with_progress(progress_printer("short-term (prom2)"));
    let out = Output::Dirs(vec![targets.short_term.clone()]);
    run_generate(plan("history-short-term", layout.local), out, short).await?;

    if !layout.bucket.is_empty() {
        let bucket = hypnos_objstore::load_bucket(Some(&targets.objstore_config), None)
            .map_err(|e| DemoError::History(format!("{}: {e}", targets.objstore_config.display())))?;
        let older = Options::default()
            .with_seed(3)
            .with_replicas(2)
            .with_label("cluster", "ap-south1")
            .with_progress(progress_printer("older history (bucket)"));
        run_generate(plan("history-bucket", layout.bucket), Output::Bucket(bucket), older).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(r: &[BlockRange]) -> i64 {
        r.iter().map(|b| b.max_time - b.min_time).sum()
    }

    fn adjacent(r: &[BlockRange]) -> bool {
        r.windows(2).all(|w| w[0].max_time == w[1].min_time)
    }

    #[test]
    fn a_day_stays_local_in_the_weekly_shape() {
        let end = 100 * DAY;
        let l = layout(DAY, end);
        assert!(l.bucket.is_empty());
        assert_eq!(total(&l.local), DAY);
        assert!(adjacent(&l.local));
        assert_eq!(l.local.last().map(|b| b.max_time), Some(end));
        // Newest first 2h, 2h, 2h, 8h, 8h, and the 2h left of a 48h block.
        let lens: Vec<i64> = l.local.iter().map(|b| (b.max_time - b.min_time) / HOUR).collect();
        assert_eq!(lens, vec![2, 8, 8, 2, 2, 2]);
    }

    #[test]
    fn a_week_fills_the_local_shape_exactly() {
        let l = layout(LOCAL_HISTORY, 100 * DAY);
        assert_eq!(l.local.len(), 9);
        assert!(l.bucket.is_empty());
    }

    #[test]
    fn older_history_goes_to_the_bucket_without_overlap() {
        let end = 100 * DAY;
        let l = layout(30 * DAY, end);
        assert_eq!(total(&l.local), LOCAL_HISTORY);
        assert_eq!(total(&l.bucket), 23 * DAY);
        assert!(adjacent(&l.bucket));
        assert_eq!(l.bucket.last().map(|b| b.max_time), l.local.first().map(|b| b.min_time));
        assert_eq!(l.bucket.first().map(|b| b.min_time), Some(end - 30 * DAY));
        assert!(l.bucket.iter().all(|b| b.max_time - b.min_time <= BUCKET_BLOCK));
    }
}
