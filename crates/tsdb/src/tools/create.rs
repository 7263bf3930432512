//! `create-blocks-from openmetrics`: promtool's backfill. Samples are split into windows
//! of the block duration aligned to the Unix epoch; each window becomes one block whose
//! chunks are cut with a chunk range of twice the block duration, as promtool's block
//! writer does.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use hypnos_model::SampleValue;

use super::Progress;
use crate::block::{BlockWriter, BlockWriterOptions, DEFAULT_BLOCK_DURATION};
use crate::error::{Error, Result};
use crate::meta::BlockMeta;
use crate::openmetrics::OmParser;

/// promtool's `getCompatibleBlockDuration`: 2h, or the largest of 2h·3^k (k < 10) not
/// above the requested maximum.
pub fn compatible_block_duration(max_block_duration: i64) -> i64 {
    let mut bd = DEFAULT_BLOCK_DURATION;
    if max_block_duration > DEFAULT_BLOCK_DURATION {
        let ranges: Vec<i64> = (0..10).map(|k| DEFAULT_BLOCK_DURATION * 3i64.pow(k)).collect();
        let mut idx = ranges.len() - 1;
        for (i, &v) in ranges.iter().enumerate() {
            if v > max_block_duration {
                idx = i.saturating_sub(1);
                break;
            }
        }
        bd = ranges[idx];
    }
    bd
}

/// Reads OpenMetrics text from `input` and writes blocks into `output_dir`.
pub fn create_blocks_from_openmetrics(
    input: &Path,
    output_dir: &Path,
    max_block_duration: i64,
    progress: Progress<'_>,
) -> Result<Vec<BlockMeta>> {
    let text = fs::read_to_string(input).map_err(|e| Error::io(input, e))?;
    fs::create_dir_all(output_dir).map_err(|e| Error::io(output_dir, e))?;
    let bd = compatible_block_duration(max_block_duration);
    let mut windows: BTreeMap<i64, BlockWriter> = BTreeMap::new();
    let total = text.bytes().filter(|&b| b == b'\n').count() as u64;
    let file = input.display().to_string();
    for (n, s) in OmParser::new(file.clone(), &text).enumerate() {
        let s = s?;
        let Some(t) = s.timestamp else {
            return Err(Error::Parse {
                file,
                line: s.line,
                reason: format!(
                    "expected timestamp for series {}, got none",
                    crate::gofmt::labels_string(&s.labels)
                ),
            });
        };
        // Go's integer division truncates toward zero; promtool aligns with it.
        let mut w = bd * (t / bd);
        if t < w {
            w -= bd;
        }
        let writer = windows.entry(w).or_insert_with(|| {
            BlockWriter::new(BlockWriterOptions {
                chunk_range: 2 * bd,
                ..Default::default()
            })
        });
        writer
            .append(&s.labels, t, &SampleValue::Float(s.value))
            .map_err(|e| match e {
                Error::OutOfOrder { series, t, last } => Error::Parse {
                    file: file.clone(),
                    line: s.line,
                    reason: format!("out-of-order sample for {series}: {t} is not after {last}"),
                },
                e => e,
            })?;
        if n % 100_000 == 0 {
            progress(n as u64, total);
        }
    }
    let mut metas = Vec::new();
    let count = windows.len() as u64;
    for (i, (_, w)) in windows.into_iter().enumerate() {
        if let Some(m) = w.flush(output_dir)? {
            metas.push(m);
        }
        progress(i as u64 + 1, count);
    }
    Ok(metas)
}
