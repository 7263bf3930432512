//! Series-at-a-time block writing: [`SeriesBlockWriter`] takes whole series in label order
//! and streams their chunks straight into the segment files, so memory holds one series'
//! chunks plus the index rather than every chunk of the block (as [`crate::BlockWriter`]
//! does). It suits producers that already know their series set, such as generators and
//! converters; it reuses the chunk and index writers of the rest of the crate.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use hypnos_model::Labels;

use crate::block::BlockWriterOptions;
use crate::chunkenc::Encoding;
use crate::chunks::{ChunkWriter, MAX_RECORD_OVERHEAD};
use crate::error::{Error, Result};
use crate::head::{BuiltChunk, SeriesChunker};
use crate::index::{ChunkMeta, IndexWriter};
use crate::meta::{BlockCompaction, BlockMeta, BlockStats, META_VERSION};
use crate::tombstones::Tombstones;

/// Writes one block from series added in strictly increasing label order.
#[derive(Debug)]
pub struct SeriesBlockWriter {
    id: ulid::Ulid,
    opts: BlockWriterOptions,
    tmp: PathBuf,
    dir: PathBuf,
    chunks: ChunkWriter,
    index: IndexWriter,
    stats: BlockStats,
    chunk_max_size: usize,
    metas: Vec<ChunkMeta>,
}

impl SeriesBlockWriter {
    /// Starts block `id` in `parent/<id>.tmp-for-creation`. `symbols` must hold every label
    /// name and value of the series that will be added (the index starts with its symbol
    /// table).
    pub fn create(parent: &Path, id: ulid::Ulid, symbols: BTreeSet<String>, opts: BlockWriterOptions) -> Result<Self> {
        let name = id.to_string();
        let tmp = parent.join(format!("{name}.tmp-for-creation"));
        let dir = parent.join(&name);
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let chunks = ChunkWriter::with_segment_size(&tmp.join("chunks"), opts.segment_size)?;
        let index = IndexWriter::new(&tmp.join("index"), symbols)?;
        Ok(SeriesBlockWriter {
            id,
            opts,
            tmp,
            dir,
            chunks,
            index,
            stats: BlockStats::default(),
            chunk_max_size: 0,
            metas: Vec::new(),
        })
    }

    /// A chunker with this block's cutting options, for the next series.
    pub fn chunker(&self) -> SeriesChunker {
        SeriesChunker::new(self.opts.chunk_range, self.opts.samples_per_chunk)
    }

    /// Adds a series built with [`Self::chunker`]. Series must come in strictly increasing
    /// label order; a series without samples is skipped.
    pub fn add_series(&mut self, labels: &Labels, chunker: SeriesChunker) -> Result<()> {
        if labels.is_empty() {
            return Err(Error::Invalid("cannot write a series with an empty label set".into()));
        }
        let (samples, floats, histograms) = (
            chunker.num_samples,
            chunker.num_float_samples,
            chunker.num_histogram_samples,
        );
        let built: Vec<BuiltChunk> = chunker.finish();
        if built.is_empty() {
            return Ok(());
        }
        let data: Vec<(Encoding, &[u8])> = built.iter().map(|c| (c.encoding, &c.data[..])).collect();
        let refs = self.chunks.write_chunks(&data)?;
        self.metas.clear();
        for (c, r) in built.iter().zip(refs) {
            self.chunk_max_size = self.chunk_max_size.max(c.data.len() + MAX_RECORD_OVERHEAD);
            self.metas.push(ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                chunk_ref: r,
            });
        }
        self.index.add_series(labels, &self.metas)?;
        self.stats.num_series += 1;
        self.stats.num_chunks += self.metas.len() as u64;
        self.stats.num_samples += samples;
        self.stats.num_float_samples += floats;
        self.stats.num_histogram_samples += histograms;
        Ok(())
    }

    pub fn num_series(&self) -> u64 {
        self.stats.num_series
    }

    pub fn num_samples(&self) -> u64 {
        self.stats.num_samples
    }

    /// Writes the index, tombstones and meta.json for `[min_time, max_time)` and moves the
    /// block to `parent/<id>`. Returns the meta and the block directory.
    pub fn finish(self, min_time: i64, max_time: i64) -> Result<(BlockMeta, PathBuf)> {
        let series_max_size = self.index.max_series_size();
        let segments = self.chunks.finish()?;
        let index_size = self.index.finish()?;
        Tombstones::default().write(&self.tmp)?;
        let mut stats = self.stats;
        // Prometheus 2.42 does not write the per-type sample counts; keep meta.json alike.
        stats.num_float_samples = 0;
        stats.num_histogram_samples = 0;
        let thanos = self
            .opts
            .thanos
            .map(|t| crate::block::with_block_files(t, &segments, index_size, series_max_size, self.chunk_max_size));
        let id = self.id.to_string();
        let meta = BlockMeta {
            ulid: id.clone(),
            min_time,
            max_time,
            stats,
            compaction: BlockCompaction {
                level: 1,
                sources: vec![id],
                ..Default::default()
            },
            version: META_VERSION,
            thanos,
        };
        meta.write(&self.tmp)?;
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        }
        fs::rename(&self.tmp, &self.dir).map_err(|e| Error::io(&self.dir, e))?;
        Ok((meta, self.dir))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::block::BlockReader;
    use hypnos_model::{Matcher, SampleValue};

    #[test]
    fn series_written_one_at_a_time_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let series: Vec<Labels> = (0..5)
            .map(|i| Labels::from_pairs([("__name__", "m"), ("i", &*format!("{i}"))]))
            .collect();
        let mut symbols = BTreeSet::new();
        for l in &series {
            for lab in l {
                symbols.insert(lab.name.clone());
                symbols.insert(lab.value.clone());
            }
        }
        let id = ulid::Ulid::from_parts(1_700_000_000_000, 7);
        let mut w = SeriesBlockWriter::create(dir.path(), id, symbols, BlockWriterOptions::default()).unwrap();
        for (i, l) in series.iter().enumerate() {
            let mut c = w.chunker();
            for k in 0..1000i64 {
                c.append(k * 15_000, &SampleValue::Float((k * i as i64) as f64))
                    .unwrap();
            }
            w.add_series(l, c).unwrap();
        }
        let (meta, path) = w.finish(0, 999 * 15_000 + 1).unwrap();
        assert_eq!(meta.ulid, id.to_string());
        assert_eq!(meta.stats.num_series, 5);
        assert_eq!(meta.stats.num_samples, 5000);
        let r = BlockReader::open(&path).unwrap();
        let got: Vec<_> = r
            .select(&[Matcher::equal("i", "3")], i64::MIN, i64::MAX)
            .unwrap()
            .collect();
        assert_eq!(got.len(), 1);
        let s = got[0].as_ref().unwrap();
        let samples: Vec<_> = r.samples(s, i64::MIN, i64::MAX).map(|x| x.unwrap()).collect();
        assert_eq!(samples.len(), 1000);
        assert_eq!(samples[10], (150_000, SampleValue::Float(30.0)));
    }

    #[test]
    fn out_of_order_series_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Labels::from_pairs([("__name__", "a")]);
        let b = Labels::from_pairs([("__name__", "b")]);
        let symbols = ["__name__", "a", "b"].iter().map(|s| s.to_string()).collect();
        let mut w =
            SeriesBlockWriter::create(dir.path(), ulid::Ulid::new(), symbols, BlockWriterOptions::default()).unwrap();
        let mut c = w.chunker();
        c.append(1, &SampleValue::Float(1.0)).unwrap();
        w.add_series(&b, c).unwrap();
        let mut c = w.chunker();
        c.append(1, &SampleValue::Float(1.0)).unwrap();
        assert!(w.add_series(&a, c).is_err());
    }
}
