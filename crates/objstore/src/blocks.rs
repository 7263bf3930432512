//! The Thanos bucket layout of TSDB blocks (`<ULID>/meta.json`, `<ULID>/index`,
//! `<ULID>/chunks/NNNNNN`, marker files), and the upload, discovery and delete orders that keep
//! readers safe: `meta.json` is uploaded last and deleted first, so a block directory without
//! it is a partial upload (or a deletion in progress) and readers skip it.
//!
//! This module knows file names and order, not the content of `meta.json`: callers bring the
//! encoded `meta.json` (with `thanos.labels`, `thanos.files`, `upload_time` set).

use std::path::Path;
use std::str::FromStr;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use ulid::Ulid;

use crate::bucket::Bucket;
use crate::error::BucketError;

pub const META_FILENAME: &str = "meta.json";
pub const INDEX_FILENAME: &str = "index";
pub const CHUNKS_DIRNAME: &str = "chunks";
pub const DELETION_MARK_FILENAME: &str = "deletion-mark.json";
pub const NO_COMPACT_MARK_FILENAME: &str = "no-compact-mark.json";
pub const NO_DOWNSAMPLE_MARK_FILENAME: &str = "no-downsample-mark.json";

/// `meta.json` probes in flight during discovery (Thanos's concurrent lister uses 64 workers).
pub const DEFAULT_DISCOVERY_CONCURRENCY: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error("{path}: not a block directory (its name must be a ULID)")]
    NotABlockDir { path: String },
    #[error("reading block directory {path}: {source}")]
    ReadDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The block ID a top-level bucket entry (`01H…/`) names, if it names one.
pub fn block_id_of_dir(entry: &str) -> Option<Ulid> {
    let name = entry.strip_suffix('/')?;
    if name.len() != 26 {
        return None;
    }
    Ulid::from_str(name).ok()
}

/// Block directories found in a bucket, split by whether their `meta.json` exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockListing {
    /// Sorted; `meta.json` present.
    pub complete: Vec<Ulid>,
    /// Sorted; no `meta.json`: an upload in progress, or a leftover for the compactor.
    pub partial: Vec<Ulid>,
}

/// Thanos's concurrent discovery: list the top level, then probe every block directory's
/// `meta.json` with up to `concurrency` requests in flight. Entries that are not ULIDs
/// (`debug/`, stray files) are ignored.
pub async fn list_blocks(bkt: &dyn Bucket, concurrency: usize) -> Result<BlockListing, BucketError> {
    let ids: Vec<Ulid> = bkt
        .iter("", false)
        .await?
        .iter()
        .filter_map(|e| block_id_of_dir(e))
        .collect();
    let probed: Vec<(Ulid, bool)> = futures::stream::iter(ids)
        .map(|id| async move {
            let exists = bkt.exists(&format!("{id}/{META_FILENAME}")).await?;
            Ok::<_, BucketError>((id, exists))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut listing = BlockListing::default();
    for (id, complete) in probed {
        if complete {
            listing.complete.push(id)
        } else {
            listing.partial.push(id)
        }
    }
    listing.complete.sort();
    listing.partial.sort();
    Ok(listing)
}

/// `<id>/meta.json`, raw.
pub async fn get_meta_json(bkt: &dyn Bucket, id: Ulid) -> Result<Bytes, BucketError> {
    bkt.get(&format!("{id}/{META_FILENAME}")).await
}

/// Uploads a local block directory in Thanos's order: `chunks/*`, then `index`, then the
/// given `meta.json` last (the caller's encoding, usually with Thanos fields filled in;
/// the directory's own `meta.json` is not read). Other local files (tombstones, WAL leftovers)
/// are not uploaded, as in Thanos.
pub async fn upload_block(bkt: &dyn Bucket, dir: &Path, meta_json: Bytes) -> Result<Ulid, BlockError> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let id = Ulid::from_str(name)
        .ok()
        .filter(|_| name.len() == 26)
        .ok_or_else(|| BlockError::NotABlockDir {
            path: dir.display().to_string(),
        })?;
    let chunks_dir = dir.join(CHUNKS_DIRNAME);
    let read_dir_err = |source| BlockError::ReadDir {
        path: chunks_dir.display().to_string(),
        source,
    };
    let mut segments = Vec::new();
    let mut entries = tokio::fs::read_dir(&chunks_dir).await.map_err(read_dir_err)?;
    while let Some(e) = entries.next_entry().await.map_err(read_dir_err)? {
        if e.file_type().await.map_err(read_dir_err)?.is_file() {
            segments.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    segments.sort();
    for seg in &segments {
        bkt.put_file(&format!("{id}/{CHUNKS_DIRNAME}/{seg}"), &chunks_dir.join(seg))
            .await?;
    }
    bkt.put_file(&format!("{id}/{INDEX_FILENAME}"), &dir.join(INDEX_FILENAME))
        .await?;
    bkt.put(&format!("{id}/{META_FILENAME}"), meta_json).await?;
    tracing::debug!(block = %id, bucket = bkt.name(), segments = segments.len(), "uploaded block");
    Ok(id)
}

/// Deletes a block in Thanos's order: `meta.json` first (readers stop loading it at once),
/// then every other object except the deletion mark, then the deletion mark.
pub async fn delete_block(bkt: &dyn Bucket, id: Ulid) -> Result<(), BucketError> {
    let meta = format!("{id}/{META_FILENAME}");
    let mark = format!("{id}/{DELETION_MARK_FILENAME}");
    bkt.delete(&meta).await?;
    for key in bkt.iter(&id.to_string(), true).await? {
        if key != meta && key != mark {
            bkt.delete(&key).await?;
        }
    }
    bkt.delete(&mark).await?;
    tracing::debug!(block = %id, bucket = bkt.name(), "deleted block");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ObjectStoreBucket;

    #[test]
    fn block_dirs() {
        assert!(block_id_of_dir("01ARZ3NDEKTSV4RRFFQ69G5FAV/").is_some());
        assert!(
            block_id_of_dir("01ARZ3NDEKTSV4RRFFQ69G5FAV").is_none(),
            "an object, not a dir"
        );
        assert!(block_id_of_dir("debug/").is_none());
        assert!(block_id_of_dir("01ARZ3NDEKTSV4RRFFQ69G5FA/").is_none());
    }

    #[tokio::test]
    async fn upload_list_delete() {
        let bkt = ObjectStoreBucket::in_memory();
        let tmp = tempfile::tempdir().unwrap();
        let id = Ulid::from_string("01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap();
        let dir = tmp.path().join(id.to_string());
        std::fs::create_dir_all(dir.join("chunks")).unwrap();
        std::fs::write(dir.join("chunks/000001"), b"c1").unwrap();
        std::fs::write(dir.join("chunks/000002"), b"c2").unwrap();
        std::fs::write(dir.join("index"), b"idx").unwrap();
        std::fs::write(dir.join("tombstones"), b"t").unwrap();
        assert_eq!(upload_block(&bkt, &dir, Bytes::from_static(b"{}")).await.unwrap(), id);
        assert_eq!(
            bkt.iter(&id.to_string(), true).await.unwrap(),
            [
                format!("{id}/chunks/000001"),
                format!("{id}/chunks/000002"),
                format!("{id}/index"),
                format!("{id}/meta.json"),
            ]
        );

        // A partial block (no meta.json) and a non-block directory.
        let partial = Ulid::from_string("01BX5ZZKBKACTAV9WEVGEMMVRZ").unwrap();
        bkt.put(&format!("{partial}/index"), Bytes::from_static(b"x"))
            .await
            .unwrap();
        bkt.put("debug/metas/x.json", Bytes::from_static(b"x")).await.unwrap();
        let listing = list_blocks(&bkt, 4).await.unwrap();
        assert_eq!(listing.complete, [id]);
        assert_eq!(listing.partial, [partial]);
        assert_eq!(&get_meta_json(&bkt, id).await.unwrap()[..], b"{}");

        bkt.put(&format!("{id}/{DELETION_MARK_FILENAME}"), Bytes::from_static(b"{}"))
            .await
            .unwrap();
        delete_block(&bkt, id).await.unwrap();
        assert!(bkt.iter(&id.to_string(), true).await.unwrap().is_empty());
        assert_eq!(list_blocks(&bkt, 4).await.unwrap().complete, []);

        let not_block = tmp.path().join("not-a-ulid");
        std::fs::create_dir_all(&not_block).unwrap();
        assert!(matches!(
            upload_block(&bkt, &not_block, Bytes::new()).await,
            Err(BlockError::NotABlockDir { .. })
        ));
    }
}
