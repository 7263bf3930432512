//! Index reader, plus the parsing pieces as free functions over byte slices so that a
//! component reading byte ranges from object storage can use them without a local file.

use std::collections::BTreeMap;
use std::path::Path;

use hypnos_model::{Label, Labels, MatchOp, Matcher};

use super::postings::{intersect, union, without};
use super::{ChunkMeta, FORMAT_V2, HEADER_LEN, MAGIC, SeriesRef, TOC_LEN, Toc};
use crate::chunks::ChunkRef;
use crate::encoding::{Decbuf, crc32c};
use crate::error::{DecodeError, Error, Result};
use crate::mmap::FileBytes;

/// Checks the 5-byte header and returns the format version (only 2 is supported).
pub fn check_header(b: &[u8]) -> Result<u8, DecodeError> {
    if b.len() < HEADER_LEN {
        return Err(DecodeError::new(
            0,
            format!("index header needs {HEADER_LEN} bytes, have {}", b.len()),
        ));
    }
    let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if magic != MAGIC {
        return Err(DecodeError::new(
            0,
            format!("bad index magic {magic:#010x}, want {MAGIC:#010x}"),
        ));
    }
    if b[4] != FORMAT_V2 {
        return Err(DecodeError::new(
            4,
            format!("unsupported index format version {}", b[4]),
        ));
    }
    Ok(b[4])
}

/// Parses the TOC from the last 52 bytes of the file; `base` is their file offset.
pub fn parse_toc(b: &[u8], base: u64) -> Result<Toc, DecodeError> {
    if b.len() != TOC_LEN {
        return Err(DecodeError::new(
            base,
            format!("TOC needs {TOC_LEN} bytes, have {}", b.len()),
        ));
    }
    let mut d = Decbuf::with_base(b, base);
    let want = u32::from_be_bytes([b[48], b[49], b[50], b[51]]);
    let got = crc32c(&b[..48]);
    if want != got {
        return Err(DecodeError::new(
            base + 48,
            format!("TOC checksum mismatch: stored {want:#010x}, computed {got:#010x}"),
        ));
    }
    Ok(Toc {
        symbols: d.be64()?,
        series: d.be64()?,
        label_indices: d.be64()?,
        label_indices_table: d.be64()?,
        postings: d.be64()?,
        postings_table: d.be64()?,
    })
}

/// Validates a `len <4b> contents CRC <4b>` section at the start of `b` and returns its
/// contents. `base` is the file offset of `b`.
pub fn section<'a>(b: &'a [u8], base: u64, what: &str) -> Result<&'a [u8], DecodeError> {
    let mut d = Decbuf::with_base(b, base);
    let len = d.be32()? as usize;
    if len > d.remaining().saturating_sub(4) {
        return Err(DecodeError::new(
            base,
            format!(
                "{what} claims {len} bytes, only {} available",
                d.remaining().saturating_sub(4)
            ),
        ));
    }
    let contents = d.bytes(len)?;
    let want = d.be32()?;
    let got = crc32c(contents);
    if want != got {
        return Err(DecodeError::new(
            base + 4 + len as u64,
            format!("{what} checksum mismatch: stored {want:#010x}, computed {got:#010x}"),
        ));
    }
    Ok(contents)
}

/// Parses the symbol table section starting at `b` (file offset `base`).
pub fn parse_symbols(b: &[u8], base: u64) -> Result<Vec<String>, DecodeError> {
    let contents = section(b, base, "symbol table")?;
    let mut d = Decbuf::with_base(contents, base + 4);
    let n = d.be32()? as usize;
    // Each symbol takes at least one byte.
    if n > d.remaining() {
        return Err(d.err(format!("symbol table claims {n} symbols in {} bytes", d.remaining())));
    }
    let mut out: Vec<String> = Vec::with_capacity(n);
    for _ in 0..n {
        let s = d.uvarint_str()?;
        if let Some(prev) = out.last()
            && s <= prev.as_str()
        {
            return Err(d.err(format!("symbols not sorted: {s:?} after {prev:?}")));
        }
        out.push(s.to_string());
    }
    Ok(out)
}

/// One postings offset table entry: the postings list of `name=value` is at `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostingsOffsetEntry {
    pub name: String,
    pub value: String,
    pub offset: u64,
}

/// Parses the postings offset table starting at `b` (file offset `base`).
pub fn parse_postings_offset_table(b: &[u8], base: u64) -> Result<Vec<PostingsOffsetEntry>, DecodeError> {
    let contents = section(b, base, "postings offset table")?;
    let mut d = Decbuf::with_base(contents, base + 4);
    let n = d.be32()? as usize;
    if n > d.remaining() / 4 {
        return Err(d.err(format!(
            "postings offset table claims {n} entries in {} bytes",
            d.remaining()
        )));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let keys = d.uvarint()?;
        if keys != 2 {
            return Err(d.err(format!("postings offset entry has {keys} keys, want 2")));
        }
        let name = d.uvarint_str()?.to_string();
        let value = d.uvarint_str()?.to_string();
        let offset = d.uvarint()?;
        out.push(PostingsOffsetEntry { name, value, offset });
    }
    Ok(out)
}

/// Parses a postings list at the start of `b` (file offset `base`).
pub fn parse_postings(b: &[u8], base: u64) -> Result<Vec<SeriesRef>, DecodeError> {
    let contents = section(b, base, "postings list")?;
    let mut d = Decbuf::with_base(contents, base + 4);
    let n = d.be32()? as usize;
    if n.checked_mul(4) != Some(d.remaining()) {
        return Err(d.err(format!(
            "postings list claims {n} entries but holds {} bytes",
            d.remaining()
        )));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let r = d.be32()?;
        if out.last().is_some_and(|&p| r <= p) {
            return Err(d.err("postings list not strictly increasing"));
        }
        out.push(r);
    }
    Ok(out)
}

/// A decoded series entry with its labels still as symbol references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesEntry {
    pub label_refs: Vec<(u32, u32)>,
    pub chunks: Vec<ChunkMeta>,
    /// Bytes the entry occupies, length prefix and CRC included.
    pub encoded_len: usize,
}

/// Parses the series entry at the start of `b` (file offset `base`).
pub fn parse_series_entry(b: &[u8], base: u64) -> Result<SeriesEntry, DecodeError> {
    let mut d = Decbuf::with_base(b, base);
    let len = d.uvarint()?;
    let hdr = d.pos();
    let len = usize::try_from(len).map_err(|_| d.err("series length overflows"))?;
    if len > d.remaining().saturating_sub(4) {
        return Err(DecodeError::new(
            base,
            format!(
                "series entry claims {len} bytes, only {} available",
                d.remaining().saturating_sub(4)
            ),
        ));
    }
    let body = d.bytes(len)?;
    let want = d.be32()?;
    let got = crc32c(body);
    if want != got {
        return Err(DecodeError::new(
            base + (hdr + len) as u64,
            format!("series checksum mismatch: stored {want:#010x}, computed {got:#010x}"),
        ));
    }
    let mut d = Decbuf::with_base(body, base + hdr as u64);
    let nl = d.uvarint()? as usize;
    if nl > d.remaining() / 2 {
        return Err(d.err(format!("series claims {nl} labels in {} bytes", d.remaining())));
    }
    let mut label_refs = Vec::with_capacity(nl);
    for _ in 0..nl {
        label_refs.push((d.uvarint32()?, d.uvarint32()?));
    }
    let nc = d.uvarint()? as usize;
    if nc > d.remaining() / 3 {
        return Err(d.err(format!("series claims {nc} chunks in {} bytes", d.remaining())));
    }
    let mut chunks = Vec::with_capacity(nc);
    if nc > 0 {
        let mint = d.varint()?;
        let maxt = mint.wrapping_add(d.uvarint()? as i64);
        let mut r = d.uvarint()?;
        chunks.push(ChunkMeta {
            min_time: mint,
            max_time: maxt,
            chunk_ref: ChunkRef(r),
        });
        let mut t0 = maxt;
        for _ in 1..nc {
            let mint = t0.wrapping_add(d.uvarint()? as i64);
            let maxt = mint.wrapping_add(d.uvarint()? as i64);
            r = (r as i64).wrapping_add(d.varint()?) as u64;
            chunks.push(ChunkMeta {
                min_time: mint,
                max_time: maxt,
                chunk_ref: ChunkRef(r),
            });
            t0 = maxt;
        }
    }
    Ok(SeriesEntry {
        label_refs,
        chunks,
        encoded_len: hdr + len + 4,
    })
}

/// Reads an index file: symbols and the postings offset table are held in memory,
/// series and postings are decoded from the mapped file on demand.
#[derive(Clone, Debug)]
pub struct IndexReader {
    file: String,
    bytes: FileBytes,
    toc: Toc,
    symbols: Vec<String>,
    /// name -> sorted (value, offset of its postings list).
    postings: BTreeMap<String, Vec<(String, u64)>>,
}

impl IndexReader {
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = FileBytes::open(path)?;
        Self::from_bytes(path.display().to_string(), bytes)
    }

    /// Reads an index held in memory; `file` names it in errors.
    pub fn from_bytes(file: String, bytes: FileBytes) -> Result<Self> {
        let b: &[u8] = &bytes;
        check_header(b).map_err(|e| e.in_file(file.clone(), 0))?;
        if b.len() < HEADER_LEN + TOC_LEN {
            return Err(Error::corrupt(file, b.len() as u64, "index too short to hold a TOC"));
        }
        let toc_at = b.len() - TOC_LEN;
        let toc = parse_toc(&b[toc_at..], toc_at as u64).map_err(|e| e.in_file(file.clone(), 0))?;
        let at = |off: u64, what: &str| -> Result<&[u8]> {
            if off < HEADER_LEN as u64 || off >= toc_at as u64 {
                return Err(Error::corrupt(
                    file.clone(),
                    toc_at as u64,
                    format!("TOC points {what} at offset {off}, outside the file"),
                ));
            }
            Ok(&b[off as usize..toc_at])
        };
        let symbols =
            parse_symbols(at(toc.symbols, "the symbol table")?, toc.symbols).map_err(|e| e.in_file(file.clone(), 0))?;
        let entries =
            parse_postings_offset_table(at(toc.postings_table, "the postings offset table")?, toc.postings_table)
                .map_err(|e| e.in_file(file.clone(), 0))?;
        let mut postings: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
        for e in entries {
            if e.offset >= toc_at as u64 {
                return Err(Error::corrupt(
                    file,
                    toc.postings_table,
                    format!(
                        "postings of {}={:?} point at offset {} past the data",
                        e.name, e.value, e.offset
                    ),
                ));
            }
            postings.entry(e.name).or_default().push((e.value, e.offset));
        }
        for values in postings.values_mut() {
            values.sort();
        }
        Ok(IndexReader {
            file,
            bytes,
            toc,
            symbols,
            postings,
        })
    }

    pub fn toc(&self) -> &Toc {
        &self.toc
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn file_name(&self) -> &str {
        &self.file
    }

    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    pub fn symbol(&self, i: u32) -> Result<&str> {
        self.symbols.get(i as usize).map(String::as_str).ok_or_else(|| {
            Error::corrupt(
                self.file.clone(),
                self.toc.symbols,
                format!("symbol reference {i} out of range ({} symbols)", self.symbols.len()),
            )
        })
    }

    /// Label names present in the index, sorted (the all-postings key excluded).
    pub fn label_names(&self) -> Vec<&str> {
        self.postings
            .keys()
            .filter(|k| !k.is_empty())
            .map(String::as_str)
            .collect()
    }

    /// Sorted values of a label name.
    pub fn label_values(&self, name: &str) -> Vec<&str> {
        self.postings
            .get(name)
            .map(|v| v.iter().map(|(v, _)| v.as_str()).collect())
            .unwrap_or_default()
    }

    /// (name, value, postings offset) for every entry of the postings offset table.
    pub fn postings_offsets(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.postings
            .iter()
            .flat_map(|(n, vs)| vs.iter().map(move |(v, o)| (n.as_str(), v.as_str(), *o)))
    }

    fn postings_at(&self, offset: u64) -> Result<Vec<SeriesRef>> {
        let b = self.bytes.get(offset as usize..).unwrap_or(&[]);
        parse_postings(b, offset).map_err(|e| e.in_file(self.file.clone(), 0))
    }

    /// The series references having `name=value`; empty if there are none.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<SeriesRef>> {
        let Some(values) = self.postings.get(name) else {
            return Ok(Vec::new());
        };
        match values.binary_search_by(|(v, _)| v.as_str().cmp(value)) {
            Ok(i) => self.postings_at(values[i].1),
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Every series reference.
    pub fn all_postings(&self) -> Result<Vec<SeriesRef>> {
        self.postings("", "")
    }

    /// Union of the postings of values of `name` that `accept` accepts.
    fn postings_where(&self, name: &str, accept: impl Fn(&str) -> bool) -> Result<Vec<SeriesRef>> {
        let Some(values) = self.postings.get(name) else {
            return Ok(Vec::new());
        };
        let mut lists = Vec::new();
        for (v, off) in values {
            if accept(v) {
                lists.push(self.postings_at(*off)?);
            }
        }
        Ok(union(lists))
    }

    fn postings_for_matcher(&self, m: &Matcher) -> Result<Vec<SeriesRef>> {
        if m.op == MatchOp::Equal {
            return self.postings(&m.name, &m.value);
        }
        if let Some(set) = m.set_matches() {
            let mut lists = Vec::with_capacity(set.len());
            for v in set {
                lists.push(self.postings(&m.name, &v)?);
            }
            return Ok(union(lists));
        }
        self.postings_where(&m.name, |v| m.matches(v))
    }

    fn inverse_postings_for_matcher(&self, m: &Matcher) -> Result<Vec<SeriesRef>> {
        self.postings_where(&m.name, |v| !m.matches(v))
    }

    /// Series matching all matchers, with Prometheus's semantics: a matcher that accepts
    /// the empty string also selects series without the label. No matchers selects all.
    pub fn postings_for_matchers(&self, matchers: &[Matcher]) -> Result<Vec<SeriesRef>> {
        if matchers.is_empty() {
            return self.all_postings();
        }
        let mut its: Vec<Vec<SeriesRef>> = Vec::new();
        let mut not_its: Vec<Vec<SeriesRef>> = Vec::new();
        for m in matchers {
            let must_be_set = matchers.iter().any(|o| o.name == m.name && !o.matches_empty());
            if must_be_set {
                let matches_empty = m.matches_empty();
                let is_not = m.op.is_negative();
                if is_not && matches_empty {
                    // l!="foo": subtract the series with l="foo" at the end.
                    not_its.push(self.postings_where(&m.name, |v| !m.matches(v))?);
                } else if is_not {
                    // l!="" (with the label required): series whose value the matcher accepts.
                    let it = self.postings_where(&m.name, |v| m.matches(v))?;
                    if it.is_empty() {
                        return Ok(Vec::new());
                    }
                    its.push(it);
                } else {
                    let it = self.postings_for_matcher(m)?;
                    if it.is_empty() {
                        return Ok(Vec::new());
                    }
                    its.push(it);
                }
            } else {
                // Accepts "": select everything except series whose value it rejects.
                not_its.push(self.inverse_postings_for_matcher(m)?);
            }
        }
        if its.is_empty() {
            its.push(self.all_postings()?);
        }
        let mut out = intersect(its);
        for n in &not_its {
            if out.is_empty() {
                break;
            }
            out = without(&out, n);
        }
        Ok(out)
    }

    /// The raw series entry for `r`.
    pub fn series_entry(&self, r: SeriesRef) -> Result<SeriesEntry> {
        let off = u64::from(r) * 16;
        let end = self.bytes.len().saturating_sub(TOC_LEN) as u64;
        if off < self.toc.series || off >= end {
            return Err(Error::corrupt(
                self.file.clone(),
                off,
                format!("series reference {r} (offset {off}) outside the series section"),
            ));
        }
        parse_series_entry(&self.bytes[off as usize..end as usize], off).map_err(|e| e.in_file(self.file.clone(), 0))
    }

    /// Resolves label symbol references.
    pub fn labels_of(&self, refs: &[(u32, u32)]) -> Result<Labels> {
        let mut out = Vec::with_capacity(refs.len());
        for &(n, v) in refs {
            let name = self.symbol(n)?;
            if out.last().is_some_and(|l: &Label| l.name.as_str() >= name) {
                return Err(Error::corrupt(
                    self.file.clone(),
                    0,
                    format!("labels of a series not sorted at {name:?}"),
                ));
            }
            out.push(Label::new(name, self.symbol(v)?));
        }
        Ok(Labels::from_sorted_unchecked(out))
    }

    /// Labels and chunk metas of series `r`.
    pub fn series(&self, r: SeriesRef) -> Result<(Labels, Vec<ChunkMeta>)> {
        let e = self.series_entry(r)?;
        Ok((self.labels_of(&e.label_refs)?, e.chunks))
    }
}
