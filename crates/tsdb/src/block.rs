//! Whole blocks: [`BlockWriter`] turns samples (series in any order, each series in time
//! order) into a block directory; [`BlockReader`] selects series by matchers and time
//! range and iterates their samples, honouring tombstones.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use hypnos_model::{Labels, Matcher, SampleValue};

use crate::chunkenc::SampleIterator;
use crate::chunks::{ChunkReader, ChunkWriter, DEFAULT_SEGMENT_SIZE, RawChunk};
use crate::error::{Error, Result};
use crate::head::{AppendError, BuiltChunk, SAMPLES_PER_CHUNK, SeriesChunker};
use crate::index::{ChunkMeta, IndexReader, IndexWriter, SeriesRef};
use crate::meta::{BlockCompaction, BlockMeta, BlockStats, IndexStats, META_VERSION, ThanosFile, ThanosMeta};
use crate::tombstones::Tombstones;

/// Two hours, Prometheus's default block duration and head chunk range.
pub const DEFAULT_BLOCK_DURATION: i64 = 2 * 3600 * 1000;

#[derive(Clone, Debug)]
pub struct BlockWriterOptions {
    /// Width chunk boundaries align to (Prometheus's head chunk range).
    pub chunk_range: i64,
    pub samples_per_chunk: usize,
    pub segment_size: u64,
    /// When set, written into meta.json (with `files` and `index_stats` filled in).
    pub thanos: Option<ThanosMeta>,
}

impl Default for BlockWriterOptions {
    fn default() -> Self {
        BlockWriterOptions {
            chunk_range: DEFAULT_BLOCK_DURATION,
            samples_per_chunk: SAMPLES_PER_CHUNK,
            segment_size: DEFAULT_SEGMENT_SIZE,
            thanos: None,
        }
    }
}

/// Accumulates samples in memory (as encoded chunks) and writes one block.
#[derive(Debug)]
pub struct BlockWriter {
    opts: BlockWriterOptions,
    series: HashMap<Labels, SeriesChunker>,
    min_time: i64,
    max_time: i64,
}

impl BlockWriter {
    pub fn new(opts: BlockWriterOptions) -> Self {
        BlockWriter {
            opts,
            series: HashMap::new(),
            min_time: i64::MAX,
            max_time: i64::MIN,
        }
    }

    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Appends a sample. Samples of one series must come in increasing time order; an
    /// out-of-order or duplicate timestamp is refused with [`Error::OutOfOrder`].
    pub fn append(&mut self, labels: &Labels, t: i64, v: &SampleValue) -> Result<()> {
        if labels.is_empty() {
            return Err(Error::Invalid("cannot append a sample with an empty label set".into()));
        }
        let chunker = match self.series.get_mut(labels) {
            Some(c) => c,
            None => self
                .series
                .entry(labels.clone())
                .or_insert_with(|| SeriesChunker::new(self.opts.chunk_range, self.opts.samples_per_chunk)),
        };
        chunker.append(t, v).map_err(|e| match e {
            AppendError::OutOfOrder { last } => Error::OutOfOrder {
                series: labels.to_string(),
                t,
                last,
            },
        })?;
        self.min_time = self.min_time.min(t);
        self.max_time = self.max_time.max(t);
        Ok(())
    }

    /// Writes the block into `parent/<ULID>` and returns its meta. The block covers
    /// `[first sample, last sample + 1)` like promtool's blocks. Returns `None` when no
    /// sample was appended.
    pub fn flush(self, parent: &Path) -> Result<Option<BlockMeta>> {
        if self.series.is_empty() {
            return Ok(None);
        }
        let (mint, maxt) = (self.min_time, self.max_time.saturating_add(1));
        self.flush_with_range(parent, mint, maxt).map(Some)
    }

    /// Like [`Self::flush`] with an explicit `[min_time, max_time)`.
    pub fn flush_with_range(self, parent: &Path, min_time: i64, max_time: i64) -> Result<BlockMeta> {
        let id = ulid::Ulid::new().to_string();
        let tmp = parent.join(format!("{id}.tmp-for-creation"));
        let dir = parent.join(&id);
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut series: Vec<(Labels, SeriesChunker)> = self.series.into_iter().collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));

        let mut symbols = BTreeSet::new();
        for (l, _) in &series {
            for lab in l {
                symbols.insert(lab.name.clone());
                symbols.insert(lab.value.clone());
            }
        }
        let mut chunk_writer = ChunkWriter::with_segment_size(&tmp.join("chunks"), self.opts.segment_size)?;
        let mut index = IndexWriter::new(&tmp.join("index"), symbols)?;
        let mut stats = BlockStats::default();
        let mut chunk_max_size = 0usize;
        for (labels, chunker) in series {
            stats.num_samples += chunker.num_samples;
            stats.num_float_samples += chunker.num_float_samples;
            stats.num_histogram_samples += chunker.num_histogram_samples;
            let built: Vec<BuiltChunk> = chunker.finish();
            let raw: Vec<(crate::chunkenc::Encoding, &[u8])> =
                built.iter().map(|c| (c.encoding, &c.data[..])).collect();
            let refs = chunk_writer.write_chunks(&raw)?;
            let metas: Vec<ChunkMeta> = built
                .iter()
                .zip(refs)
                .map(|(c, r)| {
                    chunk_max_size = chunk_max_size.max(c.data.len() + crate::chunks::MAX_RECORD_OVERHEAD);
                    ChunkMeta {
                        min_time: c.min_time,
                        max_time: c.max_time,
                        chunk_ref: r,
                    }
                })
                .collect();
            stats.num_series += 1;
            stats.num_chunks += metas.len() as u64;
            index.add_series(&labels, &metas)?;
        }
        let series_max_size = index.max_series_size();
        let segments = chunk_writer.finish()?;
        let index_size = index.finish()?;
        Tombstones::default().write(&tmp)?;
        // Prometheus 2.42 does not write the per-type sample counts; keep meta.json alike.
        stats.num_float_samples = 0;
        stats.num_histogram_samples = 0;
        let thanos = self
            .opts
            .thanos
            .map(|t| with_block_files(t, &segments, index_size, series_max_size, chunk_max_size));
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
        meta.write(&tmp)?;
        fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
        Ok(meta)
    }
}

/// Fills the Thanos section's file list, segment names and index stats from what the writer
/// produced; shared by [`BlockWriter`] and the series-at-a-time writer.
pub(crate) fn with_block_files(
    mut t: ThanosMeta,
    segments: &[(String, u64)],
    index_size: u64,
    series_max_size: u64,
    chunk_max_size: usize,
) -> ThanosMeta {
    let mut files: Vec<ThanosFile> = segments
        .iter()
        .map(|(n, s)| ThanosFile {
            rel_path: format!("chunks/{n}"),
            size_bytes: *s as i64,
            hash: None,
        })
        .collect();
    files.push(ThanosFile {
        rel_path: "index".into(),
        size_bytes: index_size as i64,
        hash: None,
    });
    files.push(ThanosFile {
        rel_path: "meta.json".into(),
        size_bytes: 0,
        hash: None,
    });
    t.segment_files = segments.iter().map(|(n, _)| n.clone()).collect();
    t.files = files;
    t.index_stats = IndexStats {
        series_max_size: series_max_size as i64,
        chunk_max_size: chunk_max_size as i64,
    };
    t
}

/// A series chosen by [`BlockReader::select`]: its labels and the chunks overlapping
/// the requested range (chunks entirely deleted by tombstones are dropped).
#[derive(Clone, Debug, PartialEq)]
pub struct SelectedSeries {
    pub series_ref: SeriesRef,
    pub labels: Labels,
    pub chunks: Vec<ChunkMeta>,
}

/// An open block.
#[derive(Clone, Debug)]
pub struct BlockReader {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    tombstones: Tombstones,
}

impl BlockReader {
    pub fn open(dir: &Path) -> Result<Self> {
        let meta = BlockMeta::read(dir)?;
        let index = IndexReader::open(&dir.join("index"))?;
        let chunks = ChunkReader::open(&dir.join("chunks"))?;
        let tombstones = Tombstones::read(dir)?;
        Ok(BlockReader {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            tombstones,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    pub fn chunks(&self) -> &ChunkReader {
        &self.chunks
    }

    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    pub fn chunk(&self, m: &ChunkMeta) -> Result<RawChunk<'_>> {
        self.chunks.chunk(m.chunk_ref)
    }

    /// Series matching all `matchers` with chunks overlapping the closed range
    /// `[mint, maxt]`, in label order.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<SeriesSet<'_>> {
        let refs = if self.meta.min_time > maxt || self.meta.max_time <= mint {
            Vec::new()
        } else {
            self.index.postings_for_matchers(matchers)?
        };
        Ok(SeriesSet {
            block: self,
            refs: refs.into_iter(),
            mint,
            maxt,
        })
    }

    /// Iterates the samples of a selected series within `[mint, maxt]`, skipping deleted ones.
    pub fn samples(&self, s: &SelectedSeries, mint: i64, maxt: i64) -> SeriesSamples<'_> {
        SeriesSamples {
            block: self,
            chunks: s.chunks.clone(),
            next_chunk: 0,
            cur: None,
            mint,
            maxt,
            deleted: self.tombstones.get(s.series_ref).to_vec(),
            done: false,
        }
    }
}

/// Lazily decodes the series entries of a selection.
#[derive(Debug)]
pub struct SeriesSet<'a> {
    block: &'a BlockReader,
    refs: std::vec::IntoIter<SeriesRef>,
    mint: i64,
    maxt: i64,
}

impl Iterator for SeriesSet<'_> {
    type Item = Result<SelectedSeries>;

    fn next(&mut self) -> Option<Self::Item> {
        for r in self.refs.by_ref() {
            let (labels, chunks) = match self.block.index.series(r) {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            let deleted = self.block.tombstones.get(r);
            let chunks: Vec<ChunkMeta> = chunks
                .into_iter()
                .filter(|c| c.overlaps(self.mint, self.maxt))
                .filter(|c| !deleted.iter().any(|&(a, b)| a <= c.min_time && c.max_time <= b))
                .collect();
            if chunks.is_empty() {
                continue;
            }
            return Some(Ok(SelectedSeries {
                series_ref: r,
                labels,
                chunks,
            }));
        }
        None
    }
}

/// Samples of one series across its chunks.
#[derive(Debug)]
pub struct SeriesSamples<'a> {
    block: &'a BlockReader,
    chunks: Vec<ChunkMeta>,
    next_chunk: usize,
    cur: Option<SampleIterator<'a>>,
    mint: i64,
    maxt: i64,
    deleted: Vec<(i64, i64)>,
    done: bool,
}

impl SeriesSamples<'_> {
    fn step(&mut self) -> Result<Option<(i64, SampleValue)>> {
        loop {
            if let Some(it) = &mut self.cur {
                let file = self.block.dir.join("chunks").display().to_string();
                match it.next_sample().map_err(|e| e.in_file(file, 0))? {
                    Some((t, v)) => {
                        if t < self.mint || self.deleted.iter().any(|&(a, b)| a <= t && t <= b) {
                            continue;
                        }
                        if t > self.maxt {
                            self.cur = None;
                            continue;
                        }
                        return Ok(Some((t, v)));
                    }
                    None => self.cur = None,
                }
            }
            let Some(m) = self.chunks.get(self.next_chunk) else {
                return Ok(None);
            };
            self.next_chunk += 1;
            let chunk = self.block.chunks.chunk(m.chunk_ref)?;
            let it = chunk.iter().map_err(|e| {
                e.in_file(
                    format!(
                        "{} (chunk {:#x})",
                        self.block.dir.join("chunks").display(),
                        m.chunk_ref.0
                    ),
                    0,
                )
            })?;
            self.cur = Some(it);
        }
    }
}

impl Iterator for SeriesSamples<'_> {
    type Item = Result<(i64, SampleValue)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(s)) => Some(Ok(s)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The block directories (ULID-named, with a meta.json) directly under `dir`, sorted by
/// min time.
pub fn block_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<ulid::Ulid>().is_ok() && e.path().join("meta.json").is_file() {
            out.push(e.path());
        }
    }
    let mut with_time = Vec::with_capacity(out.len());
    for p in out {
        let m = BlockMeta::read(&p)?;
        with_time.push((m.min_time, p));
    }
    with_time.sort();
    Ok(with_time.into_iter().map(|(_, p)| p).collect())
}
