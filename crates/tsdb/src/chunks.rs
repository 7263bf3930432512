//! Chunk segment files (`chunks/000001`, …): an 8-byte header (magic `0x85BD40DD`,
//! version 1, 3 bytes padding) followed by records `len <uvarint> encoding <1b> data
//! CRC32C(encoding+data) <4b>`. A chunk reference packs the segment index (upper 32 bits)
//! and the record offset (lower 32 bits).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::chunkenc::{Encoding, SampleIterator};
use crate::encoding::{crc32c, put_uvarint, read_uvarint};
use crate::error::{DecodeError, Error, Result};
use crate::mmap::FileBytes;

pub const SEGMENT_MAGIC: u32 = 0x85BD_40DD;
pub const SEGMENT_VERSION: u8 = 1;
pub const SEGMENT_HEADER_SIZE: usize = 8;
/// Prometheus's `DefaultChunkSegmentSize`.
pub const DEFAULT_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;
/// The length field is a uvarint of at most 5 bytes (`binary.MaxVarintLen32`).
pub const MAX_CHUNK_LEN_FIELD: usize = 5;
/// Record overhead besides the data: length field (worst case), encoding byte, CRC.
pub const MAX_RECORD_OVERHEAD: usize = MAX_CHUNK_LEN_FIELD + 1 + 4;

/// A reference to a chunk inside a block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkRef(pub u64);

impl ChunkRef {
    pub fn new(segment: u32, offset: u32) -> Self {
        ChunkRef((u64::from(segment) << 32) | u64::from(offset))
    }
    /// Index of the segment file in the sorted list (0 is `000001`).
    pub fn segment(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// A decoded chunk record borrowing its data.
#[derive(Clone, Copy, Debug)]
pub struct RawChunk<'a> {
    pub encoding: Encoding,
    pub data: &'a [u8],
}

impl<'a> RawChunk<'a> {
    pub fn iter(&self) -> Result<SampleIterator<'a>, DecodeError> {
        SampleIterator::new(self.encoding, self.data)
    }

    pub fn num_samples(&self) -> usize {
        crate::chunkenc::num_samples(self.data).unwrap_or(0)
    }
}

/// Segment file name for a 1-based sequence number.
pub fn segment_file_name(seq: u32) -> String {
    format!("{seq:06}")
}

/// Checks a segment header (the first 8 bytes of a segment file).
pub fn check_segment_header(b: &[u8]) -> Result<(), DecodeError> {
    if b.len() < SEGMENT_HEADER_SIZE {
        return Err(DecodeError::new(
            0,
            format!("segment header needs 8 bytes, file has {}", b.len()),
        ));
    }
    let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if magic != SEGMENT_MAGIC {
        return Err(DecodeError::new(
            0,
            format!("bad segment magic {magic:#010x}, want {SEGMENT_MAGIC:#010x}"),
        ));
    }
    if b[4] != SEGMENT_VERSION {
        return Err(DecodeError::new(4, format!("unsupported segment version {}", b[4])));
    }
    Ok(())
}

/// Parses the chunk record at the start of `b`; `offset` is where `b` starts in the segment
/// (for error messages). Returns the chunk and the record's total length. This is the
/// piece a reader of byte ranges (e.g. from object storage) needs: fetch from the chunk's
/// offset up to the next chunk (or offset + max chunk size) and parse.
pub fn parse_chunk_record(b: &[u8], offset: u64) -> Result<(RawChunk<'_>, usize), DecodeError> {
    let (len, n) = read_uvarint(&b[..b.len().min(MAX_CHUNK_LEN_FIELD)])
        .map_err(|r| DecodeError::new(offset, format!("chunk length: {r}")))?;
    let len = usize::try_from(len).map_err(|_| DecodeError::new(offset, "chunk length overflows"))?;
    let total = n
        .checked_add(1)
        .and_then(|x| x.checked_add(len))
        .and_then(|x| x.checked_add(4))
        .ok_or_else(|| DecodeError::new(offset, "chunk length overflows"))?;
    if total > b.len() {
        return Err(DecodeError::new(
            offset,
            format!(
                "chunk record of {total} bytes runs past the end of the data ({} bytes available)",
                b.len()
            ),
        ));
    }
    let enc_byte = b[n];
    let data = &b[n + 1..n + 1 + len];
    let crc_at = n + 1 + len;
    let want = u32::from_be_bytes([b[crc_at], b[crc_at + 1], b[crc_at + 2], b[crc_at + 3]]);
    let got = crc32c(&b[n..crc_at]);
    if want != got {
        return Err(DecodeError::new(
            offset + crc_at as u64,
            format!("chunk checksum mismatch: stored {want:#010x}, computed {got:#010x}"),
        ));
    }
    let encoding = Encoding::from_byte(enc_byte)
        .ok_or_else(|| DecodeError::new(offset + n as u64, format!("unknown chunk encoding {enc_byte}")))?;
    Ok((RawChunk { encoding, data }, total))
}

/// Reads chunks of a block's `chunks/` directory.
#[derive(Clone, Debug)]
pub struct ChunkReader {
    dir: PathBuf,
    segments: Vec<(String, FileBytes)>,
}

impl ChunkReader {
    pub fn open(dir: &Path) -> Result<Self> {
        let mut names = Vec::new();
        let rd = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.is_empty() && name.bytes().all(|c| c.is_ascii_digit()) {
                names.push(name);
            }
        }
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        for name in names {
            let path = dir.join(&name);
            let bytes = FileBytes::open(&path)?;
            check_segment_header(&bytes).map_err(|e| e.in_file(path.display().to_string(), 0))?;
            segments.push((name, bytes));
        }
        Ok(ChunkReader {
            dir: dir.to_path_buf(),
            segments,
        })
    }

    /// A reader over in-memory segments (name, bytes), e.g. downloaded from a bucket.
    pub fn from_segments(dir: PathBuf, segments: Vec<(String, Vec<u8>)>) -> Result<Self> {
        let mut out = Vec::with_capacity(segments.len());
        for (name, b) in segments {
            check_segment_header(&b).map_err(|e| e.in_file(dir.join(&name).display().to_string(), 0))?;
            out.push((name, FileBytes::from_vec(b)));
        }
        Ok(ChunkReader { dir, segments: out })
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn segment(&self, i: usize) -> Option<(&str, &[u8])> {
        self.segments.get(i).map(|(n, b)| (n.as_str(), &b[..]))
    }

    fn segment_path(&self, i: usize) -> String {
        match self.segments.get(i) {
            Some((n, _)) => self.dir.join(n).display().to_string(),
            None => self.dir.display().to_string(),
        }
    }

    /// The chunk at `r`, checksum verified.
    pub fn chunk(&self, r: ChunkRef) -> Result<RawChunk<'_>> {
        let seg = r.segment() as usize;
        let Some((_, bytes)) = self.segments.get(seg) else {
            return Err(Error::corrupt(
                self.dir.display().to_string(),
                u64::from(r.offset()),
                format!(
                    "chunk reference {:#x} names segment index {seg}, but there are {}",
                    r.0,
                    self.segments.len()
                ),
            ));
        };
        let off = r.offset() as usize;
        if off < SEGMENT_HEADER_SIZE || off >= bytes.len() {
            return Err(Error::corrupt(
                self.segment_path(seg),
                off as u64,
                format!("chunk offset {off} outside the segment (size {})", bytes.len()),
            ));
        }
        let (chunk, _) =
            parse_chunk_record(&bytes[off..], off as u64).map_err(|e| e.in_file(self.segment_path(seg), 0))?;
        Ok(chunk)
    }
}

/// Writes chunk segment files, cutting a new file before a series' chunks would
/// overflow the segment size; one series' chunks stay in one file when they fit.
#[derive(Debug)]
pub struct ChunkWriter {
    dir: PathBuf,
    segment_size: u64,
    seq: u32,
    file: Option<(PathBuf, BufWriter<File>)>,
    pos: u64,
    written: Vec<(String, u64)>,
}

impl ChunkWriter {
    pub fn new(dir: &Path) -> Result<Self> {
        Self::with_segment_size(dir, DEFAULT_SEGMENT_SIZE)
    }

    pub fn with_segment_size(dir: &Path, segment_size: u64) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            segment_size: segment_size.clamp(64, u64::from(u32::MAX)),
            seq: 0,
            file: None,
            pos: 0,
            written: Vec::new(),
        })
    }

    fn finish_file(&mut self) -> Result<()> {
        if let Some((path, mut f)) = self.file.take() {
            f.flush().map_err(|e| Error::io(&path, e))?;
            let f = f.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
            f.sync_all().map_err(|e| Error::io(&path, e))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.written.push((name, self.pos));
        }
        Ok(())
    }

    fn cut(&mut self) -> Result<()> {
        self.finish_file()?;
        self.seq += 1;
        let path = self.dir.join(segment_file_name(self.seq));
        let f = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut hdr = [0u8; SEGMENT_HEADER_SIZE];
        hdr[..4].copy_from_slice(&SEGMENT_MAGIC.to_be_bytes());
        hdr[4] = SEGMENT_VERSION;
        w.write_all(&hdr).map_err(|e| Error::io(&path, e))?;
        self.file = Some((path, w));
        self.pos = SEGMENT_HEADER_SIZE as u64;
        Ok(())
    }

    /// Writes the chunks of one series and returns their references.
    pub fn write_chunks(&mut self, chunks: &[(Encoding, &[u8])]) -> Result<Vec<ChunkRef>> {
        let size_of = |d: &[u8]| (d.len() + MAX_RECORD_OVERHEAD) as u64;
        let total: u64 = chunks.iter().map(|(_, d)| size_of(d)).sum();
        if self.file.is_none() || (self.pos > SEGMENT_HEADER_SIZE as u64 && self.pos + total > self.segment_size) {
            self.cut()?;
        }
        let mut refs = Vec::with_capacity(chunks.len());
        let mut rec = Vec::new();
        for (enc, data) in chunks {
            if self.pos > SEGMENT_HEADER_SIZE as u64 && self.pos + size_of(data) > self.segment_size {
                self.cut()?;
            }
            let Some((path, f)) = self.file.as_mut() else {
                return Err(Error::Invalid("chunk writer has no open segment".into()));
            };
            let offset = u32::try_from(self.pos)
                .map_err(|_| Error::Invalid(format!("{}: segment grew past 4 GiB", path.display())))?;
            refs.push(ChunkRef::new(self.seq - 1, offset));
            rec.clear();
            put_uvarint(&mut rec, data.len() as u64);
            let crc_start = rec.len();
            rec.push(enc.to_byte());
            rec.extend_from_slice(data);
            let crc = crc32c(&rec[crc_start..]);
            rec.extend_from_slice(&crc.to_be_bytes());
            f.write_all(&rec).map_err(|e| Error::io(path.clone(), e))?;
            self.pos += rec.len() as u64;
        }
        Ok(refs)
    }

    /// Flushes and syncs; returns the segment files written as (name, size).
    pub fn finish(mut self) -> Result<Vec<(String, u64)>> {
        self.finish_file()?;
        Ok(std::mem::take(&mut self.written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::XorAppender;

    #[test]
    fn write_and_read_back_with_segment_cuts() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::with_segment_size(dir.path(), 200).unwrap();
        let mut all = Vec::new();
        for s in 0..10 {
            let mut a = XorAppender::new();
            for i in 0..10 {
                a.append(i * 1000, (s * i) as f64);
            }
            let d = a.into_bytes();
            let refs = w.write_chunks(&[(Encoding::Xor, &d)]).unwrap();
            all.push((refs[0], d));
        }
        let files = w.finish().unwrap();
        assert!(files.len() > 1);
        assert!(files.iter().all(|(_, size)| *size <= 200));
        let r = ChunkReader::open(dir.path()).unwrap();
        for (cref, d) in &all {
            let c = r.chunk(*cref).unwrap();
            assert_eq!(c.encoding, Encoding::Xor);
            assert_eq!(c.data, &d[..]);
        }
    }

    #[test]
    fn bad_crc_names_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path()).unwrap();
        let mut a = XorAppender::new();
        a.append(1, 1.0);
        let refs = w.write_chunks(&[(Encoding::Xor, a.bytes())]).unwrap();
        w.finish().unwrap();
        let p = dir.path().join("000001");
        let mut b = fs::read(&p).unwrap();
        let last = b.len() - 1;
        b[last] ^= 1;
        fs::write(&p, b).unwrap();
        let r = ChunkReader::open(dir.path()).unwrap();
        let e = r.chunk(refs[0]).unwrap_err().to_string();
        assert!(e.contains("000001") && e.contains("checksum"), "{e}");
    }
}
