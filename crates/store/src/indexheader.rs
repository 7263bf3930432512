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
//! postings offset table. Postings lists and series entries are read from the bucket by range.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hypnos_objstore::Bucket;
use hypnos_tsdb::index::{TOC_LEN, Toc, check_header, parse_postings_offset_table, parse_symbols, parse_toc};

use crate::error::BlockError;

pub const MAGIC: u32 = 0xBAAA_D792;
pub const VERSION: u8 = 1;
const HEADER_LEN: usize = 14;
const TRAILER_LEN: usize = 8 + 8 + 4;
pub const FILE_NAME: &str = "index-header";
/// Thanos's `MemoryWriter`/`FileWriter` limit on the index size (`16 * math.MaxUint32`).
const MAX_INDEX_SIZE: u64 = 16 * u32::MAX as u64;

/// What a block keeps of its index in memory.
#[derive(Debug)]
pub struct IndexHeader {
    pub index_version: u8,
    /// TOC of the original index (offsets point into the bucket object).
    pub toc: Toc,
    pub index_size: u64,
    pub symbols: Vec<String>,
    /// name -> (value, postings offset in the original index), values sorted.
    pub postings: BTreeMap<String, Vec<(String, u64)>>,
    /// Every postings offset, sorted, then `toc.postings_table`: the end of a postings list is
    /// the start of the next one.
    pub postings_bounds: Vec<u64>,
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

    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.postings.keys().filter(|k| !k.is_empty()).map(String::as_str)
    }

    pub fn label_values(&self, name: &str) -> &[(String, u64)] {
        self.postings.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn postings_offset(&self, name: &str, value: &str) -> Option<u64> {
        let values = self.postings.get(name)?;
        values
            .binary_search_by(|(v, _)| v.as_str().cmp(value))
            .ok()
            .map(|i| values[i].1)
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
    let entries = parse_postings_offset_table(pot, toc.postings_table).map_err(|e| corrupt(e.offset, e.reason))?;
    let mut postings: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    let mut bounds = Vec::with_capacity(entries.len() + 1);
    for e in entries {
        if e.offset < toc.postings || e.offset >= toc.postings_table {
            return Err(corrupt(
                toc.postings_table,
                format!(
                    "postings of {}={:?} at offset {} lie outside the postings section",
                    e.name, e.value, e.offset
                ),
            ));
        }
        bounds.push(e.offset);
        postings.entry(e.name).or_default().push((e.value, e.offset));
    }
    for values in postings.values_mut() {
        values.sort();
    }
    bounds.push(toc.postings_table);
    bounds.sort_unstable();
    bounds.dedup();
    Ok(IndexHeader {
        index_version,
        toc,
        index_size,
        symbols,
        postings,
        postings_bounds: bounds,
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
