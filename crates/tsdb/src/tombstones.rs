//! The `tombstones` file: magic `0x0130BA30`, version 1, entries
//! `series ref <uvarint> mint <varint> maxt <varint>` (closed intervals), CRC32C over
//! the entries.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::encoding::{Decbuf, crc32c, put_be32, put_uvarint, put_varint};
use crate::error::{DecodeError, Error, Result};
use crate::index::SeriesRef;

pub const TOMBSTONES_FILENAME: &str = "tombstones";
pub const MAGIC: u32 = 0x0130_BA30;
pub const VERSION: u8 = 1;

/// Deleted time ranges per series; intervals are closed and kept sorted and merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tombstones {
    intervals: BTreeMap<SeriesRef, Vec<(i64, i64)>>,
}

impl Tombstones {
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// Number of stored intervals (meta.json's `numTombstones`).
    pub fn len(&self) -> usize {
        self.intervals.values().map(Vec::len).sum()
    }

    /// Marks `[mint, maxt]` of series `r` deleted, merging with existing intervals.
    pub fn add(&mut self, r: SeriesRef, mint: i64, maxt: i64) {
        let v = self.intervals.entry(r).or_default();
        v.push((mint, maxt));
        v.sort();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(v.len());
        for &(a, b) in v.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *v = merged;
    }

    pub fn get(&self, r: SeriesRef) -> &[(i64, i64)] {
        self.intervals.get(&r).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_deleted(&self, r: SeriesRef, t: i64) -> bool {
        self.get(r).iter().any(|&(a, b)| a <= t && t <= b)
    }

    pub fn iter(&self) -> impl Iterator<Item = (SeriesRef, &[(i64, i64)])> {
        self.intervals.iter().map(|(r, v)| (*r, v.as_slice()))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_be32(&mut out, MAGIC);
        out.push(VERSION);
        let start = out.len();
        for (r, ivs) in &self.intervals {
            for &(a, b) in ivs {
                put_uvarint(&mut out, u64::from(*r));
                put_varint(&mut out, a);
                put_varint(&mut out, b);
            }
        }
        let crc = crc32c(&out[start..]);
        put_be32(&mut out, crc);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < 9 {
            return Err(DecodeError::new(
                0,
                format!("tombstones file of {} bytes is shorter than 9", b.len()),
            ));
        }
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if magic != MAGIC {
            return Err(DecodeError::new(
                0,
                format!("bad tombstones magic {magic:#010x}, want {MAGIC:#010x}"),
            ));
        }
        if b[4] != VERSION {
            return Err(DecodeError::new(4, format!("unsupported tombstones version {}", b[4])));
        }
        let body = &b[5..b.len() - 4];
        let want = u32::from_be_bytes([b[b.len() - 4], b[b.len() - 3], b[b.len() - 2], b[b.len() - 1]]);
        let got = crc32c(body);
        if want != got {
            return Err(DecodeError::new(
                (b.len() - 4) as u64,
                format!("tombstones checksum mismatch: stored {want:#010x}, computed {got:#010x}"),
            ));
        }
        let mut d = Decbuf::with_base(body, 5);
        let mut t = Tombstones::default();
        while !d.is_empty() {
            let r = d.uvarint()?;
            let r = SeriesRef::try_from(r).map_err(|_| d.err(format!("series reference {r} out of range")))?;
            let a = d.varint()?;
            let bb = d.varint()?;
            t.add(r, a, bb);
        }
        Ok(t)
    }

    /// Reads `dir/tombstones`; a missing file means no tombstones.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(TOMBSTONES_FILENAME);
        match fs::read(&path) {
            Ok(b) => Self::decode(&b).map_err(|e| e.in_file(path.display().to_string(), 0)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones::default()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    pub fn write(&self, dir: &Path) -> Result<u64> {
        let path = dir.join(TOMBSTONES_FILENAME);
        let b = self.encode();
        fs::write(&path, &b).map_err(|e| Error::io(&path, e))?;
        Ok(b.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_nine_bytes_like_prometheus() {
        assert_eq!(
            Tombstones::default().encode(),
            vec![0x01, 0x30, 0xba, 0x30, 0x01, 0, 0, 0, 0]
        );
    }

    #[test]
    fn round_trip_and_merge() {
        let mut t = Tombstones::default();
        t.add(4, 10, 20);
        t.add(4, 15, 30);
        t.add(7, -5, 5);
        assert_eq!(t.get(4), &[(10, 30)]);
        let back = Tombstones::decode(&t.encode()).unwrap();
        assert_eq!(back, t);
        assert!(back.is_deleted(7, 0));
        assert!(!back.is_deleted(7, 6));
    }
}
