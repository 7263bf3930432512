//! `tsdb analyze`: cardinality and churn of one block, in promtool's layout.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use super::Progress;
use crate::block::BlockReader;
use crate::error::{Error, Result};
use crate::gofmt::format_duration_ms;

/// Analyzes the block `block_id` under `dir` (or the newest block when `None`).
pub fn analyze(
    dir: &Path,
    block_id: Option<&str>,
    limit: usize,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<()> {
    let blocks = super::blocks_in(dir)?;
    let path = match block_id {
        Some(id) => blocks
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == id))
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("block {id} not found in {}", dir.display())))?,
        None => blocks
            .last()
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("no blocks found in {}", dir.display())))?,
    };
    let b = BlockReader::open(&path)?;
    let meta = b.meta();
    let idx = b.index();
    let mut s = String::new();
    s.push_str(&format!("Block ID: {}\n", meta.ulid));
    s.push_str(&format!(
        "Duration: {}\n",
        format_duration_ms(meta.max_time - meta.min_time)
    ));
    let all = idx.all_postings()?;
    s.push_str(&format!("Series: {}\n", all.len()));
    let names = idx.label_names();
    s.push_str(&format!("Label names: {}\n", names.len()));

    let mut postings_count = 0usize;
    let mut entries = 0usize;
    let mut pair_counts: Vec<(usize, String)> = Vec::new();
    let mut name_value_len: Vec<(usize, String)> = Vec::new();
    let mut cardinality: Vec<(usize, String)> = Vec::new();
    for name in &names {
        let values = idx.label_values(name);
        postings_count += values.len();
        cardinality.push((values.len(), name.to_string()));
        name_value_len.push((values.iter().map(|v| v.len()).sum(), name.to_string()));
        for v in &values {
            let n = idx.postings(name, v)?.len();
            entries += n;
            pair_counts.push((n, format!("{name}={v}")));
        }
    }
    s.push_str(&format!("Postings (unique label pairs): {postings_count}\n"));
    s.push_str(&format!("Postings entries (total label pairs): {entries}\n"));

    // Churn: series that do not span the whole block.
    let mut churn_pairs: HashMap<String, usize> = HashMap::new();
    let mut churn_names: HashMap<String, usize> = HashMap::new();
    let total = all.len() as u64;
    for (i, r) in all.iter().enumerate() {
        let (labels, chunks) = idx.series(*r)?;
        let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
            continue;
        };
        if first.min_time > meta.min_time || last.max_time < meta.max_time - 1 {
            for l in &labels {
                *churn_pairs.entry(format!("{}={}", l.name, l.value)).or_default() += 1;
                *churn_names.entry(l.name.clone()).or_default() += 1;
            }
        }
        if i % 10_000 == 0 {
            progress(i as u64, total);
        }
    }
    let top = |title: &str, mut v: Vec<(usize, String)>, s: &mut String| {
        v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        s.push_str(&format!("\n{title}\n"));
        for (n, k) in v.into_iter().take(limit) {
            s.push_str(&format!("{n} {k}\n"));
        }
    };
    top(
        "Label pairs most involved in churning:",
        churn_pairs.into_iter().map(|(k, n)| (n, k)).collect(),
        &mut s,
    );
    top(
        "Label names most involved in churning:",
        churn_names.into_iter().map(|(k, n)| (n, k)).collect(),
        &mut s,
    );
    top("Most common label pairs:", pair_counts, &mut s);
    top(
        "Label names with highest cumulative label value length:",
        name_value_len,
        &mut s,
    );
    top("Highest cardinality labels:", cardinality, &mut s);
    let mut metric_names: BTreeMap<String, usize> = BTreeMap::new();
    for v in idx.label_values(hypnos_model::METRIC_NAME) {
        metric_names.insert(v.to_string(), idx.postings(hypnos_model::METRIC_NAME, v)?.len());
    }
    top(
        "Highest cardinality metric names:",
        metric_names.into_iter().map(|(k, n)| (n, k)).collect(),
        &mut s,
    );
    out.write_all(s.as_bytes()).map_err(|e| Error::io("<output>", e))
}
