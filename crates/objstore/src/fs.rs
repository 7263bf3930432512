//! `type: FILESYSTEM`: a directory on local disk, through `object_store`'s `LocalFileSystem`
//! (writes go to a staging file renamed into place, so readers never see partial objects).

use std::path::PathBuf;
use std::sync::Arc;

use object_store::local::LocalFileSystem;

use crate::bucket::ObjectStoreBucket;
use crate::config::{ConfigError, FilesystemConfig};

/// Local writes are sequential anyway; smaller parts keep upload memory low.
const LOCAL_PART_SIZE: usize = 16 << 20;

pub(crate) fn open(cfg: &FilesystemConfig, prefix: &str) -> Result<ObjectStoreBucket, ConfigError> {
    let mut root = PathBuf::from(&cfg.directory);
    if !prefix.is_empty() {
        root.push(prefix);
    }
    std::fs::create_dir_all(&root).map_err(|source| ConfigError::CreateDir {
        path: root.clone(),
        source,
    })?;
    let store = LocalFileSystem::new_with_prefix(&root)
        .map_err(|source| ConfigError::Build {
            kind: "FILESYSTEM",
            source: Box::new(source),
        })?
        // Directories emptied by deletes go too, as in Thanos's filesystem bucket, so that a
        // deleted block does not linger as an empty (partial-looking) block directory.
        .with_automatic_cleanup(true);
    let name = format!("file://{}", root.display());
    Ok(ObjectStoreBucket::local(name, Arc::new(store)).with_upload_parts(LOCAL_PART_SIZE, true))
}
