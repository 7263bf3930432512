//! Index writer. Series must be added in label order; the whole file is built in memory
//! and written at `finish` (blocks are bounded by their time range, and this keeps the
//! writer simple and the file consistent).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use hypnos_model::Labels;

use super::{ChunkMeta, FORMAT_V2, MAGIC, SeriesRef, Toc};
use crate::encoding::{crc32c, put_be32, put_be64, put_uvarint, put_uvarint_str, put_varint};
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct IndexWriter {
    path: PathBuf,
    buf: Vec<u8>,
    toc: Toc,
    symbol_index: HashMap<String, u32>,
    /// name -> value -> series refs, filled as series are added.
    postings: BTreeMap<String, BTreeMap<String, Vec<SeriesRef>>>,
    all: Vec<SeriesRef>,
    last: Option<Labels>,
    max_series_size: u64,
}

fn pad_to(buf: &mut Vec<u8>, align: usize) {
    let rem = buf.len() % align;
    if rem != 0 {
        buf.resize(buf.len() + align - rem, 0);
    }
}

impl IndexWriter {
    /// Starts an index at `path` with every string any series will use. The empty string
    /// is always added (the all-postings key uses it, as in Prometheus).
    pub fn new(path: &Path, symbols: BTreeSet<String>) -> Result<Self> {
        let mut symbols = symbols;
        symbols.insert(String::new());
        let mut buf = Vec::with_capacity(1 << 16);
        put_be32(&mut buf, MAGIC);
        buf.push(FORMAT_V2);
        let toc_symbols = buf.len() as u64;
        let start = buf.len();
        put_be32(&mut buf, 0);
        put_be32(&mut buf, symbols.len() as u32);
        let mut symbol_index = HashMap::with_capacity(symbols.len());
        for (i, s) in symbols.into_iter().enumerate() {
            put_uvarint_str(&mut buf, &s);
            symbol_index.insert(s, i as u32);
        }
        let len = (buf.len() - start - 4) as u32;
        buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c(&buf[start + 4..]);
        put_be32(&mut buf, crc);
        let toc = Toc {
            symbols: toc_symbols,
            series: buf.len() as u64,
            ..Toc::default()
        };
        Ok(IndexWriter {
            path: path.to_path_buf(),
            buf,
            toc,
            symbol_index,
            postings: BTreeMap::new(),
            all: Vec::new(),
            last: None,
            max_series_size: 0,
        })
    }

    fn symbol(&self, s: &str) -> Result<u32> {
        self.symbol_index
            .get(s)
            .copied()
            .ok_or_else(|| Error::Invalid(format!("index writer: string {s:?} missing from the symbol table")))
    }

    /// Adds a series; `labels` must sort after the previous series and chunks must be in
    /// time order without overlap.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<SeriesRef> {
        if let Some(last) = &self.last
            && labels <= last
        {
            return Err(Error::Invalid(format!(
                "index writer: series {labels} added after {last}"
            )));
        }
        for w in chunks.windows(2) {
            if w[1].min_time <= w[0].max_time || w[1].chunk_ref <= w[0].chunk_ref {
                return Err(Error::Invalid(format!(
                    "index writer: chunks of series {labels} overlap or are unordered"
                )));
            }
        }
        pad_to(&mut self.buf, 16);
        let offset = self.buf.len() as u64;
        if !offset.is_multiple_of(16) || offset / 16 > u64::from(u32::MAX) {
            return Err(Error::Invalid("index exceeds 64 GiB of series".into()));
        }
        let sref = (offset / 16) as SeriesRef;
        let mut body = Vec::with_capacity(32 + chunks.len() * 12);
        put_uvarint(&mut body, labels.len() as u64);
        for l in labels {
            put_uvarint(&mut body, u64::from(self.symbol(&l.name)?));
            put_uvarint(&mut body, u64::from(self.symbol(&l.value)?));
        }
        put_uvarint(&mut body, chunks.len() as u64);
        if let Some(c0) = chunks.first() {
            put_varint(&mut body, c0.min_time);
            put_uvarint(&mut body, c0.max_time.wrapping_sub(c0.min_time) as u64);
            put_uvarint(&mut body, c0.chunk_ref.0);
            let mut t0 = c0.max_time;
            let mut r0 = c0.chunk_ref.0 as i64;
            for c in &chunks[1..] {
                put_uvarint(&mut body, c.min_time.wrapping_sub(t0) as u64);
                put_uvarint(&mut body, c.max_time.wrapping_sub(c.min_time) as u64);
                put_varint(&mut body, (c.chunk_ref.0 as i64).wrapping_sub(r0));
                t0 = c.max_time;
                r0 = c.chunk_ref.0 as i64;
            }
        }
        put_uvarint(&mut self.buf, body.len() as u64);
        self.buf.extend_from_slice(&body);
        put_be32(&mut self.buf, crc32c(&body));
        self.max_series_size = self.max_series_size.max(self.buf.len() as u64 - offset);
        for l in labels {
            self.postings
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default()
                .push(sref);
        }
        self.all.push(sref);
        self.last = Some(labels.clone());
        Ok(sref)
    }

    /// Largest series entry written so far, in bytes (Thanos's `index_stats.series_max_size`).
    pub fn max_series_size(&self) -> u64 {
        self.max_series_size
    }

    fn write_postings_list(&mut self, refs: &[SeriesRef]) -> u64 {
        pad_to(&mut self.buf, 4);
        let at = self.buf.len() as u64;
        put_be32(&mut self.buf, (4 + 4 * refs.len()) as u32);
        let start = self.buf.len();
        put_be32(&mut self.buf, refs.len() as u32);
        for r in refs {
            put_be32(&mut self.buf, *r);
        }
        let crc = crc32c(&self.buf[start..]);
        put_be32(&mut self.buf, crc);
        at
    }

    /// Writes the remaining sections and the TOC, then the file. Returns the file size.
    pub fn finish(mut self) -> Result<u64> {
        // Label indices (legacy, written as Prometheus 2.42 does).
        self.toc.label_indices = self.buf.len() as u64;
        let mut label_index_offsets = Vec::with_capacity(self.postings.len());
        let postings = std::mem::take(&mut self.postings);
        for (name, values) in &postings {
            pad_to(&mut self.buf, 4);
            let at = self.buf.len() as u64;
            let start = self.buf.len();
            put_be32(&mut self.buf, 0);
            put_be32(&mut self.buf, 1);
            put_be32(&mut self.buf, values.len() as u32);
            for v in values.keys() {
                let s = self.symbol(v)?;
                put_be32(&mut self.buf, s);
            }
            let len = (self.buf.len() - start - 4) as u32;
            self.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
            let crc = crc32c(&self.buf[start + 4..]);
            put_be32(&mut self.buf, crc);
            label_index_offsets.push((name.clone(), at));
        }

        // Postings: all-postings first, then by name and value.
        self.toc.postings = self.buf.len() as u64;
        let mut postings_offsets: Vec<(&str, &str, u64)> = Vec::new();
        let all = std::mem::take(&mut self.all);
        let at = self.write_postings_list(&all);
        postings_offsets.push(("", "", at));
        for (name, values) in &postings {
            for (value, refs) in values {
                let at = self.write_postings_list(refs);
                postings_offsets.push((name, value, at));
            }
        }

        // Label offset table.
        self.toc.label_indices_table = self.buf.len() as u64;
        let start = self.buf.len();
        put_be32(&mut self.buf, 0);
        put_be32(&mut self.buf, label_index_offsets.len() as u32);
        for (name, off) in &label_index_offsets {
            self.buf.push(1);
            put_uvarint_str(&mut self.buf, name);
            put_uvarint(&mut self.buf, *off);
        }
        let len = (self.buf.len() - start - 4) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c(&self.buf[start + 4..]);
        put_be32(&mut self.buf, crc);

        // Postings offset table.
        self.toc.postings_table = self.buf.len() as u64;
        let start = self.buf.len();
        put_be32(&mut self.buf, 0);
        put_be32(&mut self.buf, postings_offsets.len() as u32);
        for (name, value, off) in &postings_offsets {
            self.buf.push(2);
            put_uvarint_str(&mut self.buf, name);
            put_uvarint_str(&mut self.buf, value);
            put_uvarint(&mut self.buf, *off);
        }
        let len = (self.buf.len() - start - 4) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c(&self.buf[start + 4..]);
        put_be32(&mut self.buf, crc);

        // TOC.
        let start = self.buf.len();
        for v in [
            self.toc.symbols,
            self.toc.series,
            self.toc.label_indices,
            self.toc.label_indices_table,
            self.toc.postings,
            self.toc.postings_table,
        ] {
            put_be64(&mut self.buf, v);
        }
        let crc = crc32c(&self.buf[start..]);
        put_be32(&mut self.buf, crc);

        let mut f = File::create(&self.path).map_err(|e| Error::io(&self.path, e))?;
        f.write_all(&self.buf).map_err(|e| Error::io(&self.path, e))?;
        f.sync_all().map_err(|e| Error::io(&self.path, e))?;
        Ok(self.buf.len() as u64)
    }
}
