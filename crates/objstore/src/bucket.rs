//! The [`Bucket`] trait and its implementation over any `object_store` back end.

use std::fmt;
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

use crate::error::BucketError;

/// Size and modification time of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAttributes {
    pub size: u64,
    pub last_modified: SystemTime,
}

/// An object-storage bucket with Thanos's objstore semantics.
///
/// - Writes are atomic from a reader's view: an object is either absent or complete.
/// - Deleting an object that does not exist succeeds (S3 semantics).
/// - [`Bucket::iter`] lists a "directory": objects by full key and sub-directories with a
///   trailing `/`, sorted.
#[async_trait]
pub trait Bucket: Send + Sync + fmt::Debug + 'static {
    /// Where the bucket lives, for logs and errors (`s3://bucket/prefix`, `file:///dir`).
    fn name(&self) -> &str;

    async fn get(&self, key: &str) -> Result<Bytes, BucketError>;

    /// Bytes `range.start..range.end` of the object. A range reaching past the end is cut
    /// at the end of the object; a start past the end is an error.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, BucketError>;

    /// Several ranges of one object; back ends may coalesce nearby ranges into one request.
    async fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, BucketError>;

    async fn head(&self, key: &str) -> Result<ObjectAttributes, BucketError>;

    /// The file holding the object, when the bucket is a directory on this machine
    /// (FILESYSTEM): readers may map or read it directly instead of asking for ranges. Objects
    /// of a bucket are written once and replaced, never changed in place. `None` for remote
    /// buckets.
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }

    async fn exists(&self, key: &str) -> Result<bool, BucketError> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), BucketError>;

    /// Uploads a local file, streaming it (multipart for large files) instead of loading it.
    async fn put_file(&self, key: &str, path: &FsPath) -> Result<(), BucketError>;

    /// Downloads an object into a local file, streaming; the file appears complete or not at all.
    async fn get_to_file(&self, key: &str, path: &FsPath) -> Result<u64, BucketError>;

    async fn delete(&self, key: &str) -> Result<(), BucketError>;

    /// Lists `dir` (`""` for the root): objects by full key, sub-directories as `key/`.
    /// With `recursive`, every object below `dir` and no directories.
    async fn iter(&self, dir: &str, recursive: bool) -> Result<Vec<String>, BucketError>;

    /// Every object below `dir` (recursively) with its attributes, sorted by key. The default
    /// asks for each object's attributes; back ends that list them at once override it.
    async fn iter_with_attributes(&self, dir: &str) -> Result<Vec<(String, ObjectAttributes)>, BucketError> {
        let mut out = Vec::new();
        for key in self.iter(dir, true).await? {
            let attrs = self.head(&key).await?;
            out.push((key, attrs));
        }
        Ok(out)
    }
}

/// A [`Bucket`] over an `object_store` back end (local filesystem, S3, or in-memory in tests).
pub struct ObjectStoreBucket {
    name: String,
    store: Arc<dyn ObjectStore>,
    part_size: usize,
    multipart: bool,
    /// The same store when it is a local directory, for [`Bucket::local_path`].
    local: Option<Arc<LocalFileSystem>>,
}

impl fmt::Debug for ObjectStoreBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreBucket").field("name", &self.name).finish()
    }
}

/// Thanos's default S3 multipart part size.
pub(crate) const DEFAULT_PART_SIZE: usize = 64 << 20;
/// S3 refuses parts smaller than this (except the last).
const MIN_PART_SIZE: usize = 5 << 20;
/// Parts in flight at once during a multipart upload: bounds memory to this many parts.
const UPLOAD_CONCURRENCY: usize = 2;

impl ObjectStoreBucket {
    pub fn new(name: impl Into<String>, store: Arc<dyn ObjectStore>) -> Self {
        ObjectStoreBucket {
            name: name.into(),
            store,
            part_size: DEFAULT_PART_SIZE,
            multipart: true,
            local: None,
        }
    }

    /// A bucket over a local directory: objects are also reachable as files
    /// ([`Bucket::local_path`]).
    pub fn local(name: impl Into<String>, store: Arc<LocalFileSystem>) -> Self {
        let mut bucket = Self::new(name, store.clone());
        bucket.local = Some(store);
        bucket
    }

    /// An in-memory bucket, for tests.
    pub fn in_memory() -> Self {
        Self::new("memory://", Arc::new(object_store::memory::InMemory::new()))
    }

    /// Part size for multipart uploads (at least 5 MiB); `multipart = false` uploads every
    /// file in one request (Thanos's `disable_multipart`).
    pub fn with_upload_parts(mut self, part_size: usize, multipart: bool) -> Self {
        self.part_size = part_size.max(MIN_PART_SIZE);
        self.multipart = multipart;
        self
    }

    /// The underlying store, for operations this trait does not cover.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn path(&self, key: &str) -> Result<ObjectPath, BucketError> {
        let invalid = |reason: &str| BucketError::InvalidKey {
            key: key.to_string(),
            reason: reason.to_string(),
        };
        if key.is_empty() {
            return Err(invalid("empty key"));
        }
        if key.starts_with('/') || key.ends_with('/') {
            return Err(invalid("keys name objects: no leading or trailing '/'"));
        }
        ObjectPath::parse(key).map_err(|e| invalid(&e.to_string()))
    }

    fn dir_path(&self, dir: &str) -> Result<Option<ObjectPath>, BucketError> {
        let dir = dir.trim_end_matches('/');
        if dir.is_empty() {
            Ok(None)
        } else {
            self.path(dir).map(Some)
        }
    }

    fn store_err(&self, op: &'static str, key: &str, source: object_store::Error) -> BucketError {
        // A 404 on a write or a listing means the bucket itself is missing, not the object.
        let reads_object = !matches!(op, "put" | "list");
        match source {
            object_store::Error::NotFound { .. } if reads_object => BucketError::NotFound {
                bucket: self.name.clone(),
                key: key.to_string(),
            },
            source => BucketError::Store {
                op,
                bucket: self.name.clone(),
                key: key.to_string(),
                source: Box::new(source),
            },
        }
    }

    fn check_range(&self, key: &str, range: &Range<u64>) -> Result<(), BucketError> {
        if range.start > range.end {
            return Err(BucketError::InvalidRange {
                bucket: self.name.clone(),
                key: key.to_string(),
                start: range.start,
                end: range.end,
            });
        }
        Ok(())
    }
}

fn local_err(op: &'static str, path: &FsPath) -> impl FnOnce(std::io::Error) -> BucketError {
    let path = path.to_path_buf();
    move |source| BucketError::LocalFile { op, path, source }
}

#[async_trait]
impl Bucket for ObjectStoreBucket {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Result<Bytes, BucketError> {
        let path = self.path(key)?;
        let res = self.store.get(&path).await.map_err(|e| self.store_err("get", key, e))?;
        res.bytes().await.map_err(|e| self.store_err("get", key, e))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, BucketError> {
        self.check_range(key, &range)?;
        let path = self.path(key)?;
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        self.store
            .get_range(&path, range)
            .await
            .map_err(|e| self.store_err("get range of", key, e))
    }

    async fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, BucketError> {
        for r in ranges {
            self.check_range(key, r)?;
        }
        let path = self.path(key)?;
        if ranges.iter().all(|r| r.is_empty()) {
            return Ok(vec![Bytes::new(); ranges.len()]);
        }
        // Ranges are clamped to the object's size first: back ends differ past the end (S3
        // truncates, the local store fails or allocates the whole requested length).
        let size = self.head(key).await?.size;
        let mut clamped = Vec::with_capacity(ranges.len());
        for r in ranges {
            if r.start >= size && !r.is_empty() {
                return Err(BucketError::InvalidRange {
                    bucket: self.name.clone(),
                    key: key.to_string(),
                    start: r.start,
                    end: r.end,
                });
            }
            clamped.push(r.start.min(size)..r.end.min(size));
        }
        let non_empty: Vec<Range<u64>> = clamped.iter().filter(|r| !r.is_empty()).cloned().collect();
        let mut fetched = self
            .store
            .get_ranges(&path, &non_empty)
            .await
            .map_err(|e| self.store_err("get ranges of", key, e))?
            .into_iter();
        Ok(clamped
            .iter()
            .map(|r| {
                if r.is_empty() {
                    Bytes::new()
                } else {
                    fetched.next().unwrap_or_default()
                }
            })
            .collect())
    }

    async fn head(&self, key: &str) -> Result<ObjectAttributes, BucketError> {
        let path = self.path(key)?;
        let meta = self
            .store
            .head(&path)
            .await
            .map_err(|e| self.store_err("head", key, e))?;
        Ok(ObjectAttributes {
            size: meta.size,
            last_modified: SystemTime::from(meta.last_modified),
        })
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        let local = self.local.as_ref()?;
        local.path_to_filesystem(&self.path(key).ok()?).ok()
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), BucketError> {
        let path = self.path(key)?;
        self.store
            .put(&path, PutPayload::from(data))
            .await
            .map_err(|e| self.store_err("put", key, e))?;
        Ok(())
    }

    async fn put_file(&self, key: &str, local: &FsPath) -> Result<(), BucketError> {
        let path = self.path(key)?;
        let mut file = tokio::fs::File::open(local).await.map_err(local_err("open", local))?;
        let size = file.metadata().await.map_err(local_err("stat", local))?.len();
        if !self.multipart || size <= self.part_size as u64 {
            // One request; the file fits the part size (or the user asked for no multipart).
            let data = tokio::fs::read(local).await.map_err(local_err("read", local))?;
            return self.put(key, Bytes::from(data)).await;
        }
        let mut writer =
            BufWriter::with_capacity(self.store.clone(), path, self.part_size).with_max_concurrency(UPLOAD_CONCURRENCY);
        let copied = tokio::io::copy(&mut file, &mut writer).await;
        let result = match copied {
            Ok(_) => writer.shutdown().await,
            Err(e) => Err(e),
        };
        if let Err(source) = result {
            if let Err(e) = writer.abort().await {
                tracing::warn!(bucket = %self.name, key, error = %e, "aborting failed multipart upload");
            }
            return Err(BucketError::LocalFile {
                op: "upload",
                path: local.to_path_buf(),
                source,
            });
        }
        Ok(())
    }

    async fn get_to_file(&self, key: &str, local: &FsPath) -> Result<u64, BucketError> {
        let path = self.path(key)?;
        let res = self.store.get(&path).await.map_err(|e| self.store_err("get", key, e))?;
        let mut tmp_name = local.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut file = tokio::fs::File::create(&tmp).await.map_err(local_err("create", &tmp))?;
        let mut stream = res.into_stream();
        let mut written = 0u64;
        let outcome: Result<(), BucketError> = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.store_err("get", key, e))?;
                file.write_all(&chunk).await.map_err(local_err("write", &tmp))?;
                written += chunk.len() as u64;
            }
            file.sync_all().await.map_err(local_err("sync", &tmp))?;
            tokio::fs::rename(&tmp, local)
                .await
                .map_err(local_err("rename into place", local))
        }
        .await;
        if outcome.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        outcome.map(|()| written)
    }

    async fn delete(&self, key: &str) -> Result<(), BucketError> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.store_err("delete", key, e)),
        }
        Ok(())
    }

    async fn iter(&self, dir: &str, recursive: bool) -> Result<Vec<String>, BucketError> {
        let prefix = self.dir_path(dir)?;
        let mut keys: Vec<String> = if recursive {
            self.store
                .list(prefix.as_ref())
                .map_ok(|m| m.location.to_string())
                .try_collect()
                .await
                .map_err(|e| self.store_err("list", dir, e))?
        } else {
            let res = self
                .store
                .list_with_delimiter(prefix.as_ref())
                .await
                .map_err(|e| self.store_err("list", dir, e))?;
            res.objects
                .into_iter()
                .map(|m| m.location.to_string())
                .chain(res.common_prefixes.into_iter().map(|p| format!("{p}/")))
                .collect()
        };
        keys.sort();
        Ok(keys)
    }

    async fn iter_with_attributes(&self, dir: &str) -> Result<Vec<(String, ObjectAttributes)>, BucketError> {
        let prefix = self.dir_path(dir)?;
        let mut objects: Vec<(String, ObjectAttributes)> = self
            .store
            .list(prefix.as_ref())
            .map_ok(|m| {
                let attrs = ObjectAttributes {
                    size: m.size,
                    last_modified: SystemTime::from(m.last_modified),
                };
                (m.location.to_string(), attrs)
            })
            .try_collect()
            .await
            .map_err(|e| self.store_err("list", dir, e))?;
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(objects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Ranged reads agree with slicing the object, whatever the ranges (clamped at the end).
        #[test]
        fn ranges_match_slices(
            data in proptest::collection::vec(any::<u8>(), 1..2000),
            ranges in proptest::collection::vec((0u64..2000, 0u64..3000), 1..8),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let bkt = ObjectStoreBucket::in_memory();
            let len = data.len() as u64;
            rt.block_on(bkt.put("obj", Bytes::from(data.clone()))).unwrap();
            let ranges: Vec<Range<u64>> =
                ranges.into_iter().map(|(s, l)| s.min(len - 1)..(s.min(len - 1) + l)).collect();
            let want: Vec<&[u8]> = ranges
                .iter()
                .map(|r| &data[r.start as usize..r.end.min(len) as usize])
                .collect();
            let got = rt.block_on(bkt.get_ranges("obj", &ranges)).unwrap();
            prop_assert_eq!(got.iter().map(|b| &b[..]).collect::<Vec<_>>(), want);
            for r in &ranges {
                let one = rt.block_on(bkt.get_range("obj", r.clone())).unwrap();
                prop_assert_eq!(&one[..], &data[r.start as usize..r.end.min(len) as usize]);
            }
        }
    }
}
