//! Thanos's binary index-header (`<data-dir>/<ULID>/index-header`), built from ranged reads of
//! the block's `index` in the bucket instead of downloading the whole index. Layout (big
//! endian), as Thanos's `pkg/block/indexheader/binary_reader.go` writes it:
//!
//! ```text
//! 0   u32  magic 0xBAAAD792
//! 4   u8   index-header version (1)
//! 5   u8   TSDB index version (2)
//! 6   u64  postings offset table offset in the original index
//! 14  ...  symbol table: index[TOC.symbols .. TOC.series] verbatim
//!     ...  postings offset table: index[TOC.postings_table .. end of index] verbatim
//!     u64  offset of the symbol table copy in this file
//!     u64  offset of the postings offset table copy in this file
//!     u32  CRC32-Castagnoli of the two offsets
//! ```
//!
//! Only what queries need before touching the bucket lives in memory: the symbols and the
//! postings offset table, both packed (strings back to back in one allocation, with an end
//! offset each) rather than as one heap string per entry, so that a block costs about the size
//! of its index-header file. Postings lists and series entries are read from the bucket by range.

use std::path::{Path, PathBuf};

use hypnos_objstore::Bucket;
use hypnos_tsdb::DecodeError;
use hypnos_tsdb::encoding::read_uvarint;
use hypnos_tsdb::index::reader::section;
use hypnos_tsdb::index::{TOC_LEN, Toc, check_header, parse_toc};

use crate::error::BlockError;

pub const MAGIC: u32 = 0xBAAA_D792;
pub const VERSION: u8 = 1;
const HEADER_LEN: usize = 14;
const TRAILER_LEN: usize = 8 + 8 + 4;
pub const FILE_NAME: &str = "index-header";
/// Thanos's `MemoryWriter`/`FileWriter` limit on the index size (`16 * math.MaxUint32`).
const MAX_INDEX_SIZE: u64 = 16 * u32::MAX as u64;

/// Strings back to back in one allocation; string `i` ends at `ends[i]`.
#[derive(Debug, Default)]
struct PackedStrings {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl PackedStrings {
    fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] as usize,
        };
        self.text.get(start..end)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// Collects strings into a [`PackedStrings`]; fails when the total passes 4 GiB.
#[derive(Default)]
struct PackedBuilder {
    text: String,
    ends: Vec<u32>,
}

impl PackedBuilder {
    fn with_capacity(n: usize, bytes: usize) -> Self {
        PackedBuilder {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, s: &str) -> Option<()> {
        self.text.push_str(s);
        self.ends.push(u32::try_from(self.text.len()).ok()?);
        Some(())
    }

    fn finish(self) -> PackedStrings {
        PackedStrings {
            text: self.text.into_boxed_str(),
            ends: self.ends.into_boxed_slice(),
        }
    }
}

/// One label name of the postings offset table and its values `values[start..end]`.
#[derive(Debug)]
struct NameEntry {
    name: Box<str>,
    start: u32,
    end: u32,
}

/// What a block keeps of its index in memory.
#[derive(Debug)]
pub struct IndexHeader {
    pub index_version: u8,
    /// TOC of the original index (offsets point into the bucket object).
    pub toc: Toc,
    pub index_size: u64,
    symbols: PackedStrings,
    /// Label names of the postings offset table, sorted.
    names: Box<[NameEntry]>,
    /// Values of all names, sorted within each name, with their postings offsets.
    values: PackedStrings,
    offsets: Box<[u64]>,
    /// Every postings offset, sorted, then `toc.postings_table`: the end of a postings list is
    /// the start of the next one.
    postings_bounds: Box<[u64]>,
}

impl IndexHeader {
    /// Bytes a series entry may span at most: from `TOC.series` to the next section.
    pub fn series_end(&self) -> u64 {
        [self.toc.label_indices, self.toc.postings, self.toc.postings_table]
            .into_iter()
            .find(|&o| o > self.toc.series)
            .unwrap_or(self.index_size)
    }

    /// The byte range of a postings list starting at `offset`.
    pub fn postings_range(&self, offset: u64) -> std::ops::Range<u64> {
        let end = match self.postings_bounds.binary_search(&offset) {
            Ok(i) => self.postings_bounds.get(i + 1).copied(),
            Err(i) => self.postings_bounds.get(i).copied(),
        };
        offset..end.unwrap_or(self.toc.postings_table).max(offset)
    }

    /// Symbol `i` of the index's symbol table (series entries refer to labels by these numbers).
    pub fn symbol(&self, i: u32) -> Option<&str> {
        self.symbols.get(i as usize)
    }

    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }

    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &*n.name).filter(|n| !n.is_empty())
    }

    fn name_entry(&self, name: &str) -> Option<&NameEntry> {
        let i = self.names.binary_search_by(|n| (*n.name).cmp(name)).ok()?;
        self.names.get(i)
    }

    /// Values of `name`, sorted, with the offsets of their postings lists.
    pub fn label_values(&self, name: &str) -> impl Iterator<Item = (&str, u64)> {
        let range = self.name_entry(name).map_or(0..0, |n| n.start as usize..n.end as usize);
        range.filter_map(|i| Some((self.values.get(i)?, *self.offsets.get(i)?)))
    }

    pub fn postings_offset(&self, name: &str, value: &str) -> Option<u64> {
        let n = self.name_entry(name)?;
        let (mut lo, mut hi) = (n.start as usize, n.end as usize);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.values.get(mid)?.cmp(value) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.offsets.get(mid).copied(),
            }
        }
        None
    }
}

/// Loads the index-header of `block` from `dir/index-header`, building it from ranged reads of
/// `<block>/index` first when it is missing or unreadable.
pub async fn load_or_build(bucket: &dyn Bucket, block: &str, dir: &Path) -> Result<IndexHeader, BlockError> {
    let path = dir.join(FILE_NAME);
    if let Ok(bytes) = tokio::fs::read(&path).await {
        match decode(&bytes, &path) {
            Ok(h) => return Ok(h),
            Err(e) => tracing::warn!(path = %path.display(), err = %e, "rebuilding unreadable index-header"),
        }
    }
    let bytes = build(bucket, block).await?;
    let header = decode(&bytes, &path)?;
    write_atomically(dir, &path, &bytes).await?;
    Ok(header)
}

/// Builds the index-header bytes with four reads: attributes, header, TOC, and the two ranges.
pub async fn build(bucket: &dyn Bucket, block: &str) -> Result<Vec<u8>, BlockError> {
    let key = format!("{block}/index");
    let size = bucket.head(&key).await.map_err(|e| BlockError::bucket(&key, e))?.size;
    let corrupt = |offset: u64, reason: String| BlockError::Corrupt {
        file: key.clone(),
        offset,
        reason,
    };
    if size < (hypnos_tsdb::index::HEADER_LEN + TOC_LEN) as u64 {
        return Err(corrupt(
            0,
            format!("index is {size} bytes, too short to hold a header and a TOC"),
        ));
    }
    if size > MAX_INDEX_SIZE {
        return Err(corrupt(
            0,
            format!("index is {size} bytes, larger than the 64 GiB limit"),
        ));
    }
    let head = bucket
        .get_range(&key, 0..hypnos_tsdb::index::HEADER_LEN as u64)
        .await
        .map_err(|e| BlockError::bucket(&key, e))?;
    let index_version = check_header(&head).map_err(|e| corrupt(e.offset, e.reason))?;
    let toc_at = size - TOC_LEN as u64;
    let toc_bytes = bucket
        .get_range(&key, toc_at..size)
        .await
        .map_err(|e| BlockError::bucket(&key, e))?;
    let toc = parse_toc(&toc_bytes, toc_at).map_err(|e| corrupt(e.offset, e.reason))?;
    let in_file = |o: u64| o >= hypnos_tsdb::index::HEADER_LEN as u64 && o < toc_at;
    if !in_file(toc.symbols) || !in_file(toc.postings_table) || toc.series < toc.symbols || toc.series > toc_at {
        return Err(corrupt(
            toc_at,
            format!("TOC offsets {toc:?} do not fit an index of {size} bytes"),
        ));
    }
    let ranges = [toc.symbols..toc.series, toc.postings_table..size];
    let parts = bucket
        .get_ranges(&key, &ranges)
        .await
        .map_err(|e| BlockError::bucket(&key, e))?;
    let (symbols, pot) = match parts.as_slice() {
        [s, p] => (s, p),
        _ => return Err(corrupt(0, "bucket returned the wrong number of ranges".into())),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + symbols.len() + pot.len() + TRAILER_LEN);
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.push(VERSION);
    out.push(index_version);
    out.extend_from_slice(&toc.postings_table.to_be_bytes());
    let symbols_ref = out.len() as u64;
    out.extend_from_slice(symbols);
    let pot_ref = out.len() as u64;
    out.extend_from_slice(pot);
    let mut trailer = Vec::with_capacity(16);
    trailer.extend_from_slice(&symbols_ref.to_be_bytes());
    trailer.extend_from_slice(&pot_ref.to_be_bytes());
    out.extend_from_slice(&trailer);
    out.extend_from_slice(&crc32c::crc32c(&trailer).to_be_bytes());
    Ok(out)
}

/// Parses index-header bytes; `path` names the file in errors.
pub fn decode(b: &[u8], path: &Path) -> Result<IndexHeader, BlockError> {
    let file = path.display().to_string();
    let corrupt = |offset: u64, reason: String| BlockError::Corrupt {
        file: file.clone(),
        offset,
        reason,
    };
    if b.len() < HEADER_LEN + TRAILER_LEN {
        return Err(corrupt(0, format!("index-header of {} bytes is too short", b.len())));
    }
    let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if magic != MAGIC {
        return Err(corrupt(
            0,
            format!("bad index-header magic {magic:#010x}, want {MAGIC:#010x}"),
        ));
    }
    if b[4] != VERSION {
        return Err(corrupt(4, format!("unsupported index-header version {}", b[4])));
    }
    let index_version = b[5];
    if index_version != hypnos_tsdb::index::FORMAT_V2 {
        return Err(corrupt(
            5,
            format!("unsupported TSDB index version {index_version} (only 2 is read)"),
        ));
    }
    let be64 = |at: usize| -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_be_bytes(a)
    };
    let trailer_at = b.len() - TRAILER_LEN;
    let want = u32::from_be_bytes([
        b[trailer_at + 16],
        b[trailer_at + 17],
        b[trailer_at + 18],
        b[trailer_at + 19],
    ]);
    let got = crc32c::crc32c(&b[trailer_at..trailer_at + 16]);
    if want != got {
        return Err(corrupt(
            (trailer_at + 16) as u64,
            format!("index-header TOC checksum mismatch: stored {want:#010x}, computed {got:#010x}"),
        ));
    }
    let (symbols_ref, pot_ref) = (be64(trailer_at), be64(trailer_at + 8));
    if symbols_ref != HEADER_LEN as u64 || pot_ref < symbols_ref || pot_ref > trailer_at as u64 {
        return Err(corrupt(
            trailer_at as u64,
            format!("index-header offsets {symbols_ref}, {pot_ref} out of range"),
        ));
    }
    let (symbols_ref, pot_ref) = (symbols_ref as usize, pot_ref as usize);
    // The postings offset table copy runs to the end of the original index, whose TOC it ends with.
    let pot = &b[pot_ref..trailer_at];
    if pot.len() < TOC_LEN {
        return Err(corrupt(
            pot_ref as u64,
            "postings offset table copy lacks the index TOC".into(),
        ));
    }
    let postings_table = be64(6);
    let index_size = postings_table + pot.len() as u64;
    let toc_at = index_size - TOC_LEN as u64;
    let toc = parse_toc(&pot[pot.len() - TOC_LEN..], toc_at).map_err(|e| corrupt(e.offset, e.reason))?;
    if toc.postings_table != postings_table {
        return Err(corrupt(
            6,
            "index-header disagrees with the index TOC about the postings offset table".into(),
        ));
    }
    let symbols = parse_symbols(&b[symbols_ref..pot_ref], toc.symbols).map_err(|e| corrupt(e.offset, e.reason))?;
    let table = parse_postings_table(pot, &toc).map_err(|e| corrupt(e.offset, e.reason))?;
    Ok(IndexHeader {
        index_version,
        toc,
        index_size,
        symbols,
        names: table.names,
        values: table.values,
        offsets: table.offsets,
        postings_bounds: table.bounds,
    })
}

/// A cursor over a section's contents that reports file offsets in errors.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Cursor<'a> {
    fn err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::new(self.base + self.pos as u64, reason)
    }

    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    fn be32(&mut self) -> Result<u32, DecodeError> {
        let v = self
            .b
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("unexpected end of data reading a 32-bit number"))?;
        self.pos += 4;
        Ok(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
    }

    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let rest = self.b.get(self.pos..).unwrap_or_default();
        let (v, n) = read_uvarint(rest).map_err(|e| self.err(e))?;
        self.pos += n;
        Ok(v)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::try_from(self.uvarint()?).map_err(|_| self.err("string length overflows"))?;
        let bytes = self
            .b
            .get(self.pos..self.pos.saturating_add(len))
            .ok_or_else(|| self.err(format!("string of {len} bytes runs past the end of the section")))?;
        let s = std::str::from_utf8(bytes).map_err(|_| self.err("string is not valid UTF-8"))?;
        self.pos += len;
        Ok(s)
    }
}

/// Parses the symbol table section at the start of `b` (file offset `base`) into packed form.
fn parse_symbols(b: &[u8], base: u64) -> Result<PackedStrings, DecodeError> {
    let contents = section(b, base, "symbol table")?;
    let mut d = Cursor {
        b: contents,
        pos: 0,
        base: base + 4,
    };
    let n = d.be32()? as usize;
    // Each symbol takes at least one byte.
    if n > d.remaining() {
        return Err(d.err(format!("symbol table claims {n} symbols in {} bytes", d.remaining())));
    }
    let mut out = PackedBuilder::with_capacity(n, d.remaining());
    let mut prev: Option<&str> = None;
    for _ in 0..n {
        let s = d.str()?;
        if prev.is_some_and(|p| s <= p) {
            return Err(d.err(format!("symbols not sorted: {s:?} after {prev:?}")));
        }
        out.push(s).ok_or_else(|| d.err("symbol table larger than 4 GiB"))?;
        prev = Some(s);
    }
    Ok(out.finish())
}

struct PostingsTable {
    names: Box<[NameEntry]>,
    values: PackedStrings,
    offsets: Box<[u64]>,
    bounds: Box<[u64]>,
}

/// Parses the postings offset table at the start of `b` (file offset `toc.postings_table`),
/// checking that every offset lies in the postings section. Entries are sorted by name and
/// value (Prometheus writes them so; others are sorted here).
fn parse_postings_table(b: &[u8], toc: &Toc) -> Result<PostingsTable, DecodeError> {
    let base = toc.postings_table;
    let contents = section(b, base, "postings offset table")?;
    let mut d = Cursor {
        b: contents,
        pos: 0,
        base: base + 4,
    };
    let n = d.be32()? as usize;
    if n > d.remaining() / 4 {
        return Err(d.err(format!(
            "postings offset table claims {n} entries in {} bytes",
            d.remaining()
        )));
    }
    let mut entries: Vec<(&str, &str, u64)> = Vec::with_capacity(n);
    let mut value_bytes = 0;
    for _ in 0..n {
        let keys = d.uvarint()?;
        if keys != 2 {
            return Err(d.err(format!("postings offset entry has {keys} keys, want 2")));
        }
        let name = d.str()?;
        let value = d.str()?;
        let offset = d.uvarint()?;
        if offset < toc.postings || offset >= toc.postings_table {
            return Err(DecodeError::new(
                base,
                format!("postings of {name}={value:?} at offset {offset} lie outside the postings section"),
            ));
        }
        value_bytes += value.len();
        entries.push((name, value, offset));
    }
    // Already sorted in any index Prometheus wrote: the sort then costs one pass.
    entries.sort();
    entries.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let too_big = || DecodeError::new(base, "postings offset table larger than 4 GiB");
    let mut names: Vec<NameEntry> = Vec::new();
    let mut values = PackedBuilder::with_capacity(entries.len(), value_bytes);
    let mut offsets = Vec::with_capacity(entries.len());
    for (i, &(name, value, offset)) in entries.iter().enumerate() {
        let i = u32::try_from(i).map_err(|_| too_big())?;
        match names.last_mut() {
            Some(last) if *last.name == *name => last.end = i + 1,
            _ => names.push(NameEntry {
                name: name.into(),
                start: i,
                end: i + 1,
            }),
        }
        values.push(value).ok_or_else(too_big)?;
        offsets.push(offset);
    }
    let mut bounds = offsets.clone();
    bounds.push(toc.postings_table);
    bounds.sort_unstable();
    bounds.dedup();
    Ok(PostingsTable {
        names: names.into_boxed_slice(),
        values: values.finish(),
        offsets: offsets.into_boxed_slice(),
        bounds: bounds.into_boxed_slice(),
    })
}

async fn write_atomically(dir: &Path, path: &PathBuf, bytes: &[u8]) -> Result<(), BlockError> {
    let io = |p: &Path, e: std::io::Error| BlockError::Local {
        path: p.to_path_buf(),
        source: e,
    };
    tokio::fs::create_dir_all(dir).await.map_err(|e| io(dir, e))?;
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    tokio::fs::write(&tmp, bytes).await.map_err(|e| io(&tmp, e))?;
    tokio::fs::rename(&tmp, path).await.map_err(|e| io(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_strings_round_trip() {
        let words = ["", "a", "instance", "host-0001", "ünïcödé", "z"];
        let mut b = PackedBuilder::with_capacity(words.len(), 32);
        for w in words {
            b.push(w).unwrap();
        }
        let p = b.finish();
        assert_eq!(p.len(), words.len());
        for (i, w) in words.iter().enumerate() {
            assert_eq!(p.get(i), Some(*w));
        }
        assert_eq!(p.get(words.len()), None);
    }

    #[test]
    fn built_header_answers_like_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = hypnos_tsdb::BlockWriter::new(hypnos_tsdb::BlockWriterOptions::default());
        for s in 0..50 {
            let labels = hypnos_model::Labels::from_pairs([
                ("__name__", "m".to_string()),
                ("instance", format!("host-{s:02}")),
                ("job", if s % 2 == 0 { "api" } else { "db" }.to_string()),
            ]);
            w.append(&labels, 1000, &hypnos_model::SampleValue::Float(1.0)).unwrap();
        }
        let meta = w.flush_with_range(dir.path(), 0, 7_200_000).unwrap();
        let index_path = dir.path().join(&meta.ulid).join("index");
        let index = hypnos_tsdb::IndexReader::open(&index_path).unwrap();
        let yaml = format!("type: FILESYSTEM\nconfig:\n  directory: {}\n", dir.path().display());
        let bucket = hypnos_objstore::load_bucket(None, Some(&yaml)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let bytes = rt.block_on(build(bucket.as_ref(), &meta.ulid)).unwrap();
        let h = decode(&bytes, Path::new("index-header")).unwrap();
        assert_eq!(h.symbol_count(), index.symbols().len());
        for (i, s) in index.symbols().iter().enumerate() {
            assert_eq!(h.symbol(i as u32), Some(s.as_str()));
        }
        let names: Vec<&str> = h.label_names().collect();
        assert_eq!(names, index.label_names());
        for name in index.label_names() {
            let values: Vec<&str> = h.label_values(name).map(|(v, _)| v).collect();
            assert_eq!(values, index.label_values(name));
        }
        for (name, value, offset) in index.postings_offsets() {
            assert_eq!(h.postings_offset(name, value), Some(offset), "{name}={value}");
        }
        assert_eq!(h.postings_offset("job", "nope"), None);
        assert_eq!(h.postings_offset("nope", "api"), None);
        // Damage the copy of the symbol table: the checksum catches it.
        let mut bad = bytes.clone();
        bad[HEADER_LEN + 6] ^= 0x55;
        assert!(decode(&bad, Path::new("index-header")).is_err());
    }
}
