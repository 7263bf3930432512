//! Chunk segment files of a bucket that is a local directory (FILESYSTEM), memory-mapped.
//!
//! Chunks are then served as slices of the mapping: no ranged read handed to a blocking
//! thread, no zero-filled buffer, no copy out of it. Pages a request touched are handed back
//! (`MADV_DONTNEED`) once it has sent them, so that the process's resident memory does not
//! grow with every segment ever read; the page cache keeps them for the next fault.
//!
//! This module needs `unsafe`: a mapping is only sound while nobody truncates or rewrites the
//! file. Objects of a bucket are immutable: written once (the FILESYSTEM bucket writes a
//! staging file and renames it into place) and deleted whole, never changed in place, which
//! a deletion does not disturb (the mapping keeps the unlinked file).
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Mmap, UncheckedAdvice};

/// Pages are handed back in aligned windows of this size: a fault maps the pages around the
/// faulting one that are in the page cache (the kernel's `fault_around_bytes`, 64 KiB), so
/// windows this wide cover every page a read mapped.
const RELEASE_ALIGN: u64 = 64 << 10;

/// The owner of a mapping shared by [`Bytes`] slices of it and by the segment.
struct SharedMap(Arc<Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A read-only mapping of a whole segment file.
pub struct MappedSegment {
    map: Arc<Mmap>,
    bytes: Bytes,
}

impl std::fmt::Debug for MappedSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MappedSegment({} bytes)", self.map.len())
    }
}

impl MappedSegment {
    /// Maps `path`, which must be `len` bytes long (the size the bucket listed). Empty files
    /// are not mapped (an error: callers read them the ordinary way).
    pub fn open(path: &Path, len: u64) -> io::Result<Self> {
        let file = File::open(path)?;
        let actual = file.metadata()?.len();
        if actual != len || len == 0 {
            return Err(io::Error::other(format!(
                "{} is {actual} bytes, expected {len} (and not empty)",
                path.display()
            )));
        }
        // SAFETY: bucket objects are never modified in place (see the module comment), so
        // the mapped bytes stay what they were while any slice of them is alive.
        let map = Arc::new(unsafe { Mmap::map(&file) }?);
        let bytes = Bytes::from_owner(SharedMap(map.clone()));
        Ok(MappedSegment { map, bytes })
    }

    /// The whole file; slices of it keep the mapping alive.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Drops the pages of `range` (widened to [`RELEASE_ALIGN`]) from the process's resident
    /// set. The data stays valid: a later access faults the pages in again from the page
    /// cache (or the file), so this may run while slices of the range are still in use.
    pub fn release(&self, range: Range<u64>) {
        let len = self.map.len() as u64;
        let start = range.start.min(len) / RELEASE_ALIGN * RELEASE_ALIGN;
        let end = range
            .end
            .min(len)
            .div_ceil(RELEASE_ALIGN)
            .saturating_mul(RELEASE_ALIGN)
            .min(len);
        if start >= end {
            return;
        }
        // SAFETY: MADV_DONTNEED on a read-only shared file mapping only unmaps pages: their
        // contents are the file's, read again on the next access, so no Rust reference into
        // the mapping ever sees different bytes.
        let res = unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, start as usize, (end - start) as usize)
        };
        if let Err(e) = res {
            tracing::debug!(err = %e, start, end, "madvise(MADV_DONTNEED) on a chunk segment failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_read_the_file_before_and_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let seg = MappedSegment::open(&path, data.len() as u64).unwrap();
        let slice = seg.bytes().slice(70_000..140_000);
        assert_eq!(&slice[..], &data[70_000..140_000]);
        seg.release(0..data.len() as u64 + 10);
        seg.release(100_000..100_001);
        seg.release(5..5);
        assert_eq!(&slice[..], &data[70_000..140_000]);
        drop(seg);
        // The slice alone keeps the mapping.
        assert_eq!(&slice[..10], &data[70_000..70_010]);
    }

    #[test]
    fn size_mismatch_and_empty_files_are_not_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert!(MappedSegment::open(&path, 4).is_err());
        std::fs::write(&path, b"").unwrap();
        assert!(MappedSegment::open(&path, 0).is_err());
        assert!(MappedSegment::open(&dir.path().join("missing"), 3).is_err());
    }
}
