//! `block verify`: checks everything a reader relies on, reporting every problem found
//! with the file and offset: checksums, ordering of symbols, series, postings and chunks,
//! chunk references, overlapping chunks, chunks outside the block range, sample counts
//! and stats in meta.json.

use std::path::Path;

use super::Progress;
use crate::block::BlockReader;
use crate::chunkenc::SampleIterator;
use crate::error::Result;
use crate::index::IndexReader;

/// Problems found in one block; empty means the block is sound.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub block: String,
    pub series: u64,
    pub chunks: u64,
    pub samples: u64,
    pub problems: Vec<String>,
}

pub fn verify_block(dir: &Path, progress: Progress<'_>) -> Result<VerifyReport> {
    let mut rep = VerifyReport {
        block: dir.display().to_string(),
        ..Default::default()
    };
    let b = match BlockReader::open(dir) {
        Ok(b) => b,
        Err(e) => {
            rep.problems.push(e.to_string());
            return Ok(rep);
        }
    };
    let idx: &IndexReader = b.index();
    let meta = b.meta().clone();
    let all = match idx.all_postings() {
        Ok(a) => a,
        Err(e) => {
            rep.problems.push(e.to_string());
            return Ok(rep);
        }
    };
    // Every postings list must parse and reference existing series.
    for (name, value, _) in idx.postings_offsets() {
        match idx.postings(name, value) {
            Ok(p) => {
                let missing = crate::index::postings::without(&p, &all);
                if !missing.is_empty() {
                    rep.problems.push(format!(
                        "{}: postings of {name}={value:?} reference {} series missing from all-postings",
                        idx.file_name(),
                        missing.len()
                    ));
                }
            }
            Err(e) => rep.problems.push(e.to_string()),
        }
    }
    let mut prev: Option<hypnos_model::Labels> = None;
    let total = all.len() as u64;
    for (i, r) in all.iter().enumerate() {
        if i % 1000 == 0 {
            progress(i as u64, total);
        }
        let (labels, chunks) = match idx.series(*r) {
            Ok(x) => x,
            Err(e) => {
                rep.problems.push(e.to_string());
                continue;
            }
        };
        rep.series += 1;
        if let Some(p) = &prev
            && labels <= *p
        {
            rep.problems.push(format!(
                "{}: series {labels} (ref {r}) out of order after {p}",
                idx.file_name()
            ));
        }
        for w in chunks.windows(2) {
            if w[1].min_time <= w[0].max_time {
                rep.problems.push(format!(
                    "series {labels}: overlapping chunks [{}, {}] and [{}, {}]",
                    w[0].min_time, w[0].max_time, w[1].min_time, w[1].max_time
                ));
            }
            if w[1].chunk_ref <= w[0].chunk_ref {
                rep.problems
                    .push(format!("series {labels}: chunk references not increasing"));
            }
        }
        for c in &chunks {
            rep.chunks += 1;
            if c.min_time > c.max_time {
                rep.problems.push(format!(
                    "series {labels}: chunk with min time {} > max time {}",
                    c.min_time, c.max_time
                ));
            }
            if c.min_time < meta.min_time || c.max_time >= meta.max_time {
                rep.problems.push(format!(
                    "series {labels}: chunk [{}, {}] outside the block range [{}, {})",
                    c.min_time, c.max_time, meta.min_time, meta.max_time
                ));
            }
            let raw = match b.chunks().chunk(c.chunk_ref) {
                Ok(x) => x,
                Err(e) => {
                    rep.problems.push(format!("series {labels}: {e}"));
                    continue;
                }
            };
            let mut it = match SampleIterator::new(raw.encoding, raw.data) {
                Ok(it) => it,
                Err(e) => {
                    rep.problems
                        .push(format!("series {labels}: chunk {:#x}: {e}", c.chunk_ref.0));
                    continue;
                }
            };
            let (mut n, mut first, mut last) = (0u64, None, i64::MIN);
            loop {
                match it.next_sample() {
                    Ok(Some((t, _))) => {
                        if n > 0 && t <= last {
                            rep.problems.push(format!(
                                "series {labels}: chunk {:#x}: timestamps not increasing at {t}",
                                c.chunk_ref.0
                            ));
                        }
                        first.get_or_insert(t);
                        last = t;
                        n += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        rep.problems
                            .push(format!("series {labels}: chunk {:#x}: {e}", c.chunk_ref.0));
                        break;
                    }
                }
            }
            rep.samples += n;
            if n > 0 && (first != Some(c.min_time) || last != c.max_time) {
                rep.problems.push(format!(
                    "series {labels}: chunk {:#x} holds samples [{:?}, {last}] but the index says [{}, {}]",
                    c.chunk_ref.0, first, c.min_time, c.max_time
                ));
            }
        }
        prev = Some(labels);
    }
    progress(total, total);
    let s = &meta.stats;
    if s.num_series != 0 && s.num_series != rep.series {
        rep.problems.push(format!(
            "meta.json says {} series, index has {}",
            s.num_series, rep.series
        ));
    }
    if s.num_chunks != 0 && s.num_chunks != rep.chunks {
        rep.problems.push(format!(
            "meta.json says {} chunks, index has {}",
            s.num_chunks, rep.chunks
        ));
    }
    if s.num_samples != 0 && s.num_samples != rep.samples {
        rep.problems.push(format!(
            "meta.json says {} samples, chunks hold {}",
            s.num_samples, rep.samples
        ));
    }
    Ok(rep)
}
