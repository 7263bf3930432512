//! Index format v2 (`index`): symbol table, 16-byte aligned series entries, label
//! indices and their offset table (legacy, written for byte-level parity with
//! Prometheus 2.42), postings lists, the postings offset table and the TOC.

pub mod postings;
pub mod reader;
pub mod writer;

pub use reader::{
    IndexReader, PostingsOffsetEntry, SeriesEntry, check_header, parse_postings, parse_postings_offset_table,
    parse_series_entry, parse_symbols, parse_toc,
};
pub use writer::IndexWriter;

use crate::chunks::ChunkRef;

pub const MAGIC: u32 = 0xBAAA_D700;
pub const FORMAT_V2: u8 = 2;
pub const HEADER_LEN: usize = 5;
/// Six 8-byte references and a CRC32C.
pub const TOC_LEN: usize = 6 * 8 + 4;

/// A series reference in a v2 index: the series entry's byte offset divided by 16.
pub type SeriesRef = u32;

/// Where a chunk lives and which closed time range `[min_time, max_time]` it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChunkMeta {
    pub min_time: i64,
    pub max_time: i64,
    pub chunk_ref: ChunkRef,
}

impl ChunkMeta {
    /// Whether the chunk overlaps the closed interval `[mint, maxt]`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint <= self.max_time
    }
}

/// The table of contents at the end of an index file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_indices_table: u64,
    pub postings: u64,
    pub postings_table: u64,
}
