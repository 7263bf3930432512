//! Read-only file mappings. This is the one module that needs `unsafe`: mapping a file is
//! unsafe because another process could truncate or change it while mapped. Block files
//! are immutable once written (Prometheus and Thanos never modify them in place), which is
//! the invariant that makes this sound in practice.
#![allow(unsafe_code)]

use std::fs::File;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The bytes of a whole file, memory-mapped (or owned, for empty files and tests).
#[derive(Clone)]
pub enum FileBytes {
    Mapped(Arc<memmap2::Mmap>),
    Owned(Arc<Vec<u8>>),
}

impl std::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileBytes({} bytes)", self.len())
    }
}

impl FileBytes {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Ok(FileBytes::Owned(Arc::new(Vec::new())));
        }
        // SAFETY: see the module comment; block files are never modified after creation.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Ok(FileBytes::Mapped(Arc::new(map)))
    }

    pub fn from_vec(v: Vec<u8>) -> Self {
        FileBytes::Owned(Arc::new(v))
    }
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}
