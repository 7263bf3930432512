//! `hypnos tools bucket ls|inspect|verify`: Thanos's bucket tools over an objstore config.
//! The command-line shell lives in the `hypnos` binary; the logic is here so it can be tested
//! without a process.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use hypnos_model::Labels;
use hypnos_objstore::Bucket;
use hypnos_tsdb::BlockMeta;

use crate::block::BucketBlock;
use crate::cache::IndexCache;
use crate::error::BlockError;
use crate::fetcher::MetaFetcher;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Bucket(#[from] hypnos_objstore::BucketError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} issue(s) found")]
    IssuesFound(usize),
}

/// A block as listed: its meta, or why it could not be read.
#[derive(Debug)]
pub enum Listed {
    Block(Box<BlockMeta>),
    Partial(ulid::Ulid),
    BadMeta(ulid::Ulid, String),
}

/// Every block directory with its meta (or its problem), in ULID order.
pub async fn list_blocks(bucket: &dyn Bucket) -> Result<Vec<Listed>, ToolError> {
    let mut out = Vec::new();
    for id in MetaFetcher::block_ids(bucket).await? {
        let key = format!("{id}/meta.json");
        match bucket.get(&key).await {
            Ok(b) => match BlockMeta::from_json(&b, std::path::Path::new(&key)) {
                Ok(m) => out.push(Listed::Block(Box::new(m))),
                Err(e) => out.push(Listed::BadMeta(id, e.to_string())),
            },
            Err(e) if e.is_not_found() => out.push(Listed::Partial(id)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

fn ext_labels(m: &BlockMeta) -> Labels {
    let t = m.thanos.clone().unwrap_or_default();
    Labels::from_pairs(t.labels)
}

fn resolution(m: &BlockMeta) -> i64 {
    m.thanos.as_ref().map_or(0, |t| t.downsample.resolution)
}

fn source(m: &BlockMeta) -> String {
    m.thanos.as_ref().map(|t| t.source.clone()).unwrap_or_default()
}

/// Milliseconds as RFC 3339 UTC (`2006-01-02T15:04:05Z`).
pub fn format_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn format_duration_ms(ms: i64) -> String {
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 || h > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{s}s");
    out
}

/// `ls`: one block per line. `output`: `""` (ULIDs), `wide`, or `json` (one meta per line).
pub async fn ls(bucket: &dyn Bucket, output: &str) -> Result<String, ToolError> {
    let mut out = String::new();
    for l in list_blocks(bucket).await? {
        let Listed::Block(m) = l else { continue };
        match output {
            "" => {
                let _ = writeln!(out, "{}", m.ulid);
            }
            "wide" => {
                let _ = writeln!(
                    out,
                    "{} -- {} - {} Diff: {}, Compaction: {}, Downsample: {}, Source: {}",
                    m.ulid,
                    format_millis(m.min_time),
                    format_millis(m.max_time),
                    format_duration_ms(m.max_time - m.min_time),
                    m.compaction.level,
                    resolution(&m),
                    source(&m)
                );
            }
            "json" => {
                let line = serde_json::to_string(&m).map_err(|e| ToolError::Invalid(e.to_string()))?;
                let _ = writeln!(out, "{line}");
            }
            other => {
                return Err(ToolError::Invalid(format!(
                    "unknown output format {other:?} (want \"\", wide, json)"
                )));
            }
        }
    }
    Ok(out)
}

/// `inspect`: a table of the blocks whose external labels match `selector` (`name=value`
/// pairs), sorted by `sort_by` columns (default FROM, UNTIL). `output`: table, tsv, csv.
pub async fn inspect(
    bucket: &dyn Bucket,
    selector: &[String],
    sort_by: &[String],
    output: &str,
) -> Result<String, ToolError> {
    let mut wanted = Vec::new();
    for s in selector {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| ToolError::Invalid(format!("selector {s:?} is not name=value")))?;
        wanted.push((k.to_string(), v.trim_matches('"').to_string()));
    }
    const HEADER: [&str; 13] = [
        "ULID",
        "FROM",
        "UNTIL",
        "RANGE",
        "UNTIL-DOWN",
        "#SERIES",
        "#SAMPLES",
        "#CHUNKS",
        "COMP-LEVEL",
        "COMP-FAILED",
        "LABELS",
        "RESOLUTION",
        "SOURCE",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for l in list_blocks(bucket).await? {
        let Listed::Block(m) = l else { continue };
        let labels = ext_labels(&m);
        if !wanted.iter().all(|(k, v)| labels.get(k) == Some(v.as_str())) {
            continue;
        }
        let res = resolution(&m);
        // Thanos: raw blocks are downsampled once they span 40h, 5m blocks once they span 10d.
        let until_down = match res {
            0 => format_duration_ms(40 * 3600 * 1000 - (m.max_time - m.min_time)),
            300_000 => format_duration_ms(240 * 3600 * 1000 - (m.max_time - m.min_time)),
            _ => "-".into(),
        };
        let until_down = if until_down.starts_with('-') {
            "-".into()
        } else {
            until_down
        };
        rows.push(vec![
            m.ulid.clone(),
            format_millis(m.min_time),
            format_millis(m.max_time),
            format_duration_ms(m.max_time - m.min_time),
            until_down,
            m.stats.num_series.to_string(),
            m.stats.num_samples.to_string(),
            m.stats.num_chunks.to_string(),
            m.compaction.level.to_string(),
            m.compaction.failed.to_string(),
            labels.to_string(),
            format_duration_ms(res),
            source(&m),
        ]);
    }
    let sort_cols: Vec<usize> = if sort_by.is_empty() {
        vec![1, 2]
    } else {
        sort_by
            .iter()
            .map(|c| {
                HEADER
                    .iter()
                    .position(|h| h.eq_ignore_ascii_case(c))
                    .ok_or_else(|| ToolError::Invalid(format!("unknown sort column {c:?}")))
            })
            .collect::<Result<_, _>>()?
    };
    rows.sort_by(|a, b| {
        sort_cols
            .iter()
            .map(|&i| a[i].cmp(&b[i]))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut out = String::new();
    let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    match output {
        "table" | "" => {
            let mut widths: Vec<usize> = header.iter().map(String::len).collect();
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.len());
                }
            }
            for r in std::iter::once(&header).chain(rows.iter()) {
                let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
        }
        "tsv" | "csv" => {
            let sep = if output == "tsv" { "\t" } else { "," };
            for r in std::iter::once(&header).chain(rows.iter()) {
                let cells: Vec<String> = r
                    .iter()
                    .map(|c| {
                        if output == "csv" && (c.contains(',') || c.contains('"')) {
                            format!("\"{}\"", c.replace('"', "\"\""))
                        } else {
                            c.clone()
                        }
                    })
                    .collect();
                let _ = writeln!(out, "{}", cells.join(sep));
            }
        }
        other => {
            return Err(ToolError::Invalid(format!(
                "unknown output format {other:?} (want table, tsv, csv)"
            )));
        }
    }
    Ok(out)
}

/// One problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub kind: &'static str,
    pub block: String,
    pub detail: String,
}

/// `verify`: checks every block (or only `ids`): meta.json readable, index readable with
/// sorted series and ordered chunks, every chunk's CRC (`index_known_issues`), and blocks of
/// the same group overlapping in time (`overlapped_blocks`). Reads the bucket by range; keeps
/// index-headers in `scratch`.
pub async fn verify(
    bucket: Arc<dyn Bucket>,
    issues: &[String],
    ids: &[String],
    scratch: &std::path::Path,
) -> Result<Vec<Issue>, ToolError> {
    for i in issues {
        if !matches!(i.as_str(), "index_known_issues" | "overlapped_blocks") {
            return Err(ToolError::Invalid(format!(
                "unknown issue {i:?} (supported: index_known_issues, overlapped_blocks)"
            )));
        }
    }
    let check_index = issues.iter().any(|i| i == "index_known_issues");
    let check_overlaps = issues.iter().any(|i| i == "overlapped_blocks");
    let mut found = Vec::new();
    let mut metas = Vec::new();
    for l in list_blocks(bucket.as_ref()).await? {
        match l {
            Listed::Block(m) => {
                if ids.is_empty() || ids.contains(&m.ulid) {
                    metas.push(*m);
                }
            }
            Listed::BadMeta(id, e) => found.push(Issue {
                kind: "index_known_issues",
                block: id.to_string(),
                detail: format!("unreadable meta.json: {e}"),
            }),
            Listed::Partial(_) => {}
        }
    }
    if check_overlaps {
        let mut groups: BTreeMap<(i64, String), Vec<&BlockMeta>> = BTreeMap::new();
        for m in &metas {
            groups
                .entry((resolution(m), ext_labels(m).to_string()))
                .or_default()
                .push(m);
        }
        for blocks in groups.values_mut() {
            blocks.sort_by_key(|m| (m.min_time, m.max_time));
            for w in blocks.windows(2) {
                if w[1].min_time < w[0].max_time {
                    found.push(Issue {
                        kind: "overlapped_blocks",
                        block: w[1].ulid.clone(),
                        detail: format!(
                            "[{}, {}) overlaps block {} [{}, {})",
                            w[1].min_time, w[1].max_time, w[0].ulid, w[0].min_time, w[0].max_time
                        ),
                    });
                }
            }
        }
    }
    if check_index {
        let cache = Arc::new(IndexCache::new(64 << 20));
        for m in metas {
            let id = m.ulid.clone();
            if let Err(e) = verify_block(bucket.clone(), m, scratch, cache.clone()).await {
                found.push(Issue {
                    kind: "index_known_issues",
                    block: id,
                    detail: e.to_string(),
                });
            }
        }
    }
    Ok(found)
}

/// Reads every series of a block in order and every chunk it references.
async fn verify_block(
    bucket: Arc<dyn Bucket>,
    meta: BlockMeta,
    scratch: &std::path::Path,
    cache: Arc<IndexCache>,
) -> Result<(), BlockError> {
    let (mint, maxt) = (meta.min_time, meta.max_time);
    let block = BucketBlock::load(bucket, meta, scratch, cache).await?;
    let corrupt = |reason: String| BlockError::Corrupt {
        file: format!("{}/index", block.id),
        offset: 0,
        reason,
    };
    let refs = block.postings_for_matchers(&[]).await?;
    let mut prev: Option<Labels> = None;
    for batch in refs.chunks(1024) {
        let series = block.series(batch, false).await?;
        let mut chunk_refs = Vec::new();
        for s in &series {
            if let Some(p) = &prev
                && p >= &s.labels
            {
                return Err(corrupt(format!("series {} is not after {p}", s.labels)));
            }
            prev = Some(s.labels.clone());
            let mut last_max = i64::MIN;
            for c in &s.chunks {
                if c.min_time > c.max_time || (last_max != i64::MIN && c.min_time <= last_max) {
                    return Err(corrupt(format!(
                        "chunks of series {} are out of order or overlap",
                        s.labels
                    )));
                }
                if c.min_time < mint || c.max_time >= maxt {
                    return Err(corrupt(format!(
                        "chunk [{}, {}] of series {} lies outside the block range [{mint}, {maxt})",
                        c.min_time, c.max_time, s.labels
                    )));
                }
                last_max = c.max_time;
                chunk_refs.push(c.chunk_ref);
            }
        }
        block.chunks(&chunk_refs).await?;
        block.release_chunks(&chunk_refs);
    }
    Ok(())
}
