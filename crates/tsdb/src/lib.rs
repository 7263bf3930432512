//! Prometheus TSDB blocks, read and written byte-compatibly with Prometheus 2.42.
//!
//! A block is a directory `<ULID>/` holding `meta.json`, `index`, `chunks/000001…` and
//! `tombstones`. This crate knows nothing about networks or buckets; everything that
//! parses bytes is also available as a free function over byte slices, so a component
//! reading byte ranges from object storage can reuse it.
//!
//! # Reading
//! ```no_run
//! # fn main() -> hypnos_tsdb::Result<()> {
//! use hypnos_model::Matcher;
//! use hypnos_tsdb::BlockReader;
//! let block = BlockReader::open(std::path::Path::new("data/01M8BSPBVZXC2AYM5GBC2PM8YR"))?;
//! for series in block.select(&[Matcher::equal("__name__", "up")], i64::MIN, i64::MAX)? {
//!     let series = series?;
//!     // Raw chunks, e.g. to send them on as they are:
//!     for meta in &series.chunks {
//!         let chunk = block.chunk(meta)?; // encoding + data, CRC checked
//!         let _ = (chunk.encoding, chunk.data);
//!     }
//!     // Or decoded samples (tombstones honoured):
//!     for sample in block.samples(&series, i64::MIN, i64::MAX) {
//!         let (_t, _value) = sample?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Writing
//! [`BlockWriter::append`] takes samples of series in any order (each series in time
//! order; out-of-order samples are an [`Error::OutOfOrder`]) and [`BlockWriter::flush`]
//! writes the block with Prometheus's chunk cutting rules.
//!
//! # Pieces for ranged reads
//! - index: [`index::check_header`], [`index::parse_toc`] (last 52 bytes),
//!   [`index::parse_symbols`], [`index::parse_postings_offset_table`],
//!   [`index::parse_postings`], [`index::parse_series_entry`] (at `ref * 16`);
//! - chunks: [`ChunkRef`] (segment index, offset), [`chunks::parse_chunk_record`],
//!   [`chunkenc::SampleIterator`] over a chunk's data.
//!
//! Invariants: series in an index are sorted by labels and referenced by offset/16;
//! chunks of a series are time-ordered, non-overlapping and never straddle a block
//! boundary; block time ranges are half-open `[minTime, maxTime)`, chunk ranges closed.
//! Every decoder is bounds-checked: corrupt input yields an error naming the file and
//! offset, never a panic or an allocation larger than the input justifies.

pub mod block;
pub mod chunkenc;
pub mod chunks;
pub mod encoding;
pub mod error;
pub mod fuzz;
pub mod gofmt;
pub mod head;
pub mod index;
pub mod meta;
mod mmap;
pub mod openmetrics;
pub mod series_writer;
pub mod tombstones;
pub mod tools;

pub use block::{BlockReader, BlockWriter, BlockWriterOptions, DEFAULT_BLOCK_DURATION, SelectedSeries, block_dirs};
pub use chunkenc::{Encoding, SampleIterator};
pub use chunks::{ChunkReader, ChunkRef, RawChunk};
pub use error::{DecodeError, Error, Result};
pub use index::{ChunkMeta, IndexReader, SeriesRef};
pub use meta::{BlockMeta, ThanosMeta};
pub use mmap::FileBytes;
pub use tombstones::Tombstones;
