//! The shipper: uploads Prometheus's new blocks to object storage, like Thanos's
//! `pkg/shipper`.
//!
//! Upload order makes a crash harmless: a block's files are staged as hard links under
//! `<tsdb>/thanos/upload/<ULID>/` (so Prometheus deleting the block meanwhile changes nothing),
//! `chunks/*` and `index` go up first and `meta.json`, with its `thanos` section, last. Readers
//! treat a bucket directory without `meta.json` as a pending upload, so an interrupted upload is
//! invisible; the block is not yet recorded in `thanos.shipper.json`, so the next sync uploads it
//! again in full, overwriting the partial objects.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hypnos_model::Labels;
use hypnos_objstore::{Bucket, BucketError};
use hypnos_tsdb::BlockMeta;
use hypnos_tsdb::meta::{META_FILENAME, ThanosFile, ThanosMeta};
use serde::{Deserialize, Serialize};

use crate::metrics::SidecarMetrics;

pub const DEFAULT_META_FILE_NAME: &str = "thanos.shipper.json";
/// Thanos's source tag for blocks shipped by a sidecar.
pub const SIDECAR_SOURCE: &str = "sidecar";
/// Test-only fault injection: abort the process (like a SIGKILL) after this many objects were
/// uploaded, to check that an interrupted upload leaves no visible block.
pub const FAULT_ABORT_AFTER_UPLOADS_ENV: &str = "HYPNOS_SIDECAR_FAULT_ABORT_AFTER_UPLOADS";

#[derive(Debug, thiserror::Error)]
pub enum ShipperError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("block {path}: {message}")]
    Block { path: PathBuf, message: String },
    #[error("uploading block {ulid}: {source}")]
    Bucket {
        ulid: String,
        #[source]
        source: BucketError,
    },
    #[error("checking whether block {ulid} is in the bucket: {source}")]
    Exists {
        ulid: String,
        #[source]
        source: BucketError,
    },
    #[error("empty external labels are not allowed for a Thanos block")]
    NoExternalLabels,
    #[error("{failed} of {total} blocks failed to upload; first error: {first}")]
    SomeFailed {
        failed: usize,
        total: usize,
        first: Box<ShipperError>,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ShipperError {
    let path = path.to_path_buf();
    move |source| ShipperError::Io { op, path, source }
}

/// `thanos.shipper.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShipperState {
    pub version: u32,
    /// ULIDs of uploaded blocks; Go writes `null` for none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub uploaded: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl ShipperState {
    /// Reads the state file; a missing or unreadable one is empty (it is only a cache of what
    /// the bucket holds).
    pub fn read(path: &Path) -> ShipperState {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ShipperState::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "reading shipper state; starting from empty");
                return ShipperState::default();
            }
        };
        match serde_json::from_slice::<ShipperState>(&bytes) {
            Ok(s) if s.version == 1 => s,
            Ok(s) => {
                tracing::warn!(path = %path.display(), version = s.version, "unknown shipper state version; starting from empty");
                ShipperState::default()
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "corrupt shipper state; starting from empty");
                ShipperState::default()
            }
        }
    }

    /// Writes tab-indented JSON through a temporary file, fsync and rename.
    pub fn write(&self, path: &Path) -> Result<(), ShipperError> {
        use std::io::Write;
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.serialize(&mut ser).map_err(|e| ShipperError::Io {
            op: "encoding",
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp).map_err(io_err("creating", &tmp))?;
        f.write_all(&out).map_err(io_err("writing", &tmp))?;
        f.sync_all().map_err(io_err("syncing", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err("renaming into place", path))
    }
}

/// Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction dropped.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_nanos(t).to_string();
    match s.strip_suffix('Z').and_then(|s| s.split_once('.')) {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{frac}Z")
            }
        }
        None => s,
    }
}

/// Thanos's check that Prometheus does not compact: with min != max block duration, blocks
/// would be rewritten after being shipped.
pub fn check_block_durations(flags: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    let (Some(min), Some(max)) = (
        flags.get("storage.tsdb.min-block-duration"),
        flags.get("storage.tsdb.max-block-duration"),
    ) else {
        return Ok(());
    };
    let parse = |s: &str| humantime::parse_duration(s).ok();
    let equal = match (parse(min), parse(max)) {
        (Some(a), Some(b)) => a == b,
        _ => min == max,
    };
    if equal {
        Ok(())
    } else {
        Err(format!(
            "found that TSDB max block duration is {max} and min block duration is {min}: Prometheus compaction \
             needs to be disabled for the sidecar to upload blocks (start Prometheus with \
             --storage.tsdb.min-block-duration = --storage.tsdb.max-block-duration, 2h recommended)"
        ))
    }
}

/// A local block found in the TSDB directory.
#[derive(Debug, Clone)]
pub struct LocalBlock {
    pub dir: PathBuf,
    pub meta: BlockMeta,
}

/// ULID-named directories with a readable `meta.json`, sorted by min time; unreadable ones are
/// logged and skipped (Prometheus may be writing them right now).
pub fn local_blocks(tsdb_dir: &Path) -> Result<Vec<LocalBlock>, ShipperError> {
    let rd = std::fs::read_dir(tsdb_dir).map_err(io_err("listing", tsdb_dir))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_err("listing", tsdb_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.parse::<ulid::Ulid>().is_err() {
            continue;
        }
        let dir = entry.path();
        if !dir.join(META_FILENAME).is_file() {
            continue;
        }
        match BlockMeta::read(&dir) {
            Ok(meta) => out.push(LocalBlock { dir, meta }),
            Err(e) => tracing::warn!(block = %dir.display(), error = %e, "skipping block with unreadable meta.json"),
        }
    }
    out.sort_by(|a, b| (a.meta.min_time, &a.meta.ulid).cmp(&(b.meta.min_time, &b.meta.ulid)));
    Ok(out)
}

#[derive(Debug)]
pub struct Shipper {
    tsdb_dir: PathBuf,
    state_file: PathBuf,
    bucket: Arc<dyn Bucket>,
    upload_compacted: bool,
    metrics: SidecarMetrics,
    abort_after: Option<u64>,
    objects_uploaded: AtomicU64,
}

impl Shipper {
    pub fn new(
        tsdb_dir: PathBuf,
        state_file_name: &str,
        bucket: Arc<dyn Bucket>,
        upload_compacted: bool,
        metrics: SidecarMetrics,
    ) -> Self {
        let abort_after = std::env::var(FAULT_ABORT_AFTER_UPLOADS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = abort_after {
            tracing::warn!(
                objects = n,
                "fault injection: the process aborts after this many uploaded objects"
            );
        }
        Shipper {
            state_file: tsdb_dir.join(state_file_name),
            tsdb_dir,
            bucket,
            upload_compacted,
            metrics,
            abort_after,
            objects_uploaded: AtomicU64::new(0),
        }
    }

    fn staging_root(&self) -> PathBuf {
        self.tsdb_dir.join("thanos").join("upload")
    }

    /// One pass over the TSDB directory; returns how many blocks were uploaded.
    pub async fn sync(&self, external: &Labels) -> Result<usize, ShipperError> {
        if external.is_empty() {
            return Err(ShipperError::NoExternalLabels);
        }
        let state = ShipperState::read(&self.state_file);
        let was_uploaded: HashSet<String> = state.uploaded.into_iter().collect();
        let dir = self.tsdb_dir.clone();
        let blocks = tokio::task::spawn_blocking(move || local_blocks(&dir))
            .await
            .map_err(|e| ShipperError::Block {
                path: self.tsdb_dir.clone(),
                message: format!("listing blocks: {e}"),
            })??;

        let mut uploaded: BTreeSet<String> = BTreeSet::new();
        let mut count = 0;
        let mut failures: Vec<ShipperError> = Vec::new();
        let mut attempted = 0;
        for block in blocks {
            let ulid = block.meta.ulid.clone();
            if was_uploaded.contains(&ulid) {
                uploaded.insert(ulid);
                continue;
            }
            if block.meta.stats.num_samples == 0 {
                tracing::debug!(block = %ulid, "not uploading a block without samples");
                continue;
            }
            if block.meta.compaction.level > 1 && !self.upload_compacted {
                tracing::debug!(block = %ulid, level = block.meta.compaction.level, "not uploading a compacted block");
                continue;
            }
            let meta_key = format!("{ulid}/{META_FILENAME}");
            match self.bucket.exists(&meta_key).await {
                Ok(true) => {
                    tracing::info!(block = %ulid, "block already in the bucket");
                    uploaded.insert(ulid);
                    self.save_state(&uploaded)?;
                    continue;
                }
                Ok(false) => {}
                Err(source) => {
                    failures.push(ShipperError::Exists { ulid, source });
                    attempted += 1;
                    continue;
                }
            }
            attempted += 1;
            match self.upload(&block, external).await {
                Ok(()) => {
                    count += 1;
                    self.metrics.uploads.inc();
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    self.metrics.last_successful_upload_time.set(now);
                    tracing::info!(block = %ulid, "uploaded block");
                    uploaded.insert(ulid);
                    self.save_state(&uploaded)?;
                }
                Err(e) => {
                    self.metrics.upload_failures.inc();
                    tracing::error!(block = %ulid, error = %e, "block upload failed; retrying at the next sync");
                    failures.push(e);
                }
            }
        }
        // Only blocks still on disk stay in the state file, as Thanos does.
        self.save_state(&uploaded)?;
        let failed = failures.len();
        match failures.into_iter().next() {
            None => Ok(count),
            Some(first) => Err(ShipperError::SomeFailed {
                failed,
                total: attempted,
                first: Box::new(first),
            }),
        }
    }

    fn save_state(&self, uploaded: &BTreeSet<String>) -> Result<(), ShipperError> {
        ShipperState {
            version: 1,
            uploaded: uploaded.iter().cloned().collect(),
        }
        .write(&self.state_file)
    }

    /// Removes staging directories a previous run left behind.
    pub fn clean_staging(&self) {
        let root = self.staging_root();
        if root.exists()
            && let Err(e) = std::fs::remove_dir_all(&root)
        {
            tracing::warn!(dir = %root.display(), error = %e, "removing stale upload staging directory");
        }
    }

    async fn upload(&self, block: &LocalBlock, external: &Labels) -> Result<(), ShipperError> {
        let staging = self.staging_root().join(&block.meta.ulid);
        let (src, dst) = (block.dir.clone(), staging.clone());
        let files = tokio::task::spawn_blocking(move || stage(&src, &dst))
            .await
            .map_err(|e| ShipperError::Block {
                path: block.dir.clone(),
                message: format!("staging: {e}"),
            })?;
        let result = match files {
            Ok(files) => self.upload_staged(block, &staging, files, external).await,
            Err(e) => Err(e),
        };
        if let Err(e) = tokio::fs::remove_dir_all(&staging).await {
            tracing::warn!(dir = %staging.display(), error = %e, "removing upload staging directory");
        }
        result
    }

    async fn upload_staged(
        &self,
        block: &LocalBlock,
        staging: &Path,
        files: Vec<ThanosFile>,
        external: &Labels,
    ) -> Result<(), ShipperError> {
        let ulid = &block.meta.ulid;
        let mut meta = block.meta.clone();
        let mut thanos: ThanosMeta = meta.thanos.take().unwrap_or_default();
        thanos.version = 1;
        thanos.labels = external.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
        thanos.source = SIDECAR_SOURCE.to_string();
        thanos.segment_files = files
            .iter()
            .filter_map(|f| f.rel_path.strip_prefix("chunks/").map(str::to_string))
            .collect();
        let mut all = files.clone();
        all.push(ThanosFile {
            rel_path: META_FILENAME.to_string(),
            ..Default::default()
        });
        all.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        thanos.files = all;
        thanos.upload_time = Some(rfc3339_nano(SystemTime::now()));
        meta.thanos = Some(thanos);

        // Data first, in Thanos's order: chunks, then index.
        for f in files.iter().filter(|f| f.rel_path.starts_with("chunks/")) {
            self.put(ulid, &f.rel_path, &staging.join(&f.rel_path)).await?;
        }
        for f in files.iter().filter(|f| !f.rel_path.starts_with("chunks/")) {
            self.put(ulid, &f.rel_path, &staging.join(&f.rel_path)).await?;
        }
        // meta.json last: its presence in the bucket means the block is complete.
        let meta_dir = staging.to_path_buf();
        let meta_for_write = meta.clone();
        tokio::task::spawn_blocking(move || meta_for_write.write(&meta_dir))
            .await
            .map_err(|e| ShipperError::Block {
                path: staging.to_path_buf(),
                message: format!("writing meta.json: {e}"),
            })?
            .map_err(|e| ShipperError::Block {
                path: staging.to_path_buf(),
                message: format!("writing meta.json: {e}"),
            })?;
        self.put(ulid, META_FILENAME, &staging.join(META_FILENAME)).await
    }

    async fn put(&self, ulid: &str, rel_path: &str, local: &Path) -> Result<(), ShipperError> {
        let key = format!("{ulid}/{rel_path}");
        self.bucket
            .put_file(&key, local)
            .await
            .map_err(|source| ShipperError::Bucket {
                ulid: ulid.to_string(),
                source,
            })?;
        tracing::debug!(%key, "uploaded object");
        let n = self.objects_uploaded.fetch_add(1, Ordering::SeqCst) + 1;
        if self.abort_after.is_some_and(|limit| n >= limit) {
            tracing::error!(objects = n, "fault injection: aborting mid-upload");
            std::process::abort();
        }
        Ok(())
    }
}

/// Hard-links (or copies, across file systems) `chunks/*` and `index` of `src` into `dst`;
/// returns them with their sizes, sorted by relative path.
fn stage(src: &Path, dst: &Path) -> Result<Vec<ThanosFile>, ShipperError> {
    if dst.exists() {
        std::fs::remove_dir_all(dst).map_err(io_err("removing", dst))?;
    }
    let chunks_src = src.join("chunks");
    let chunks_dst = dst.join("chunks");
    std::fs::create_dir_all(&chunks_dst).map_err(io_err("creating", &chunks_dst))?;
    let mut files = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for e in std::fs::read_dir(&chunks_src).map_err(io_err("listing", &chunks_src))? {
        let e = e.map_err(io_err("listing", &chunks_src))?;
        if e.file_type().map_err(io_err("stat", &e.path()))?.is_file() {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    for name in names {
        files.push(link_or_copy(src, dst, &format!("chunks/{name}"))?);
    }
    files.push(link_or_copy(src, dst, "index")?);
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(files)
}

fn link_or_copy(src_dir: &Path, dst_dir: &Path, rel: &str) -> Result<ThanosFile, ShipperError> {
    let src = src_dir.join(rel);
    let dst = dst_dir.join(rel);
    if std::fs::hard_link(&src, &dst).is_err() {
        std::fs::copy(&src, &dst).map_err(io_err("copying", &src))?;
    }
    let size = std::fs::metadata(&dst).map_err(io_err("stat", &dst))?.len();
    Ok(ThanosFile {
        rel_path: rel.to_string(),
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
        hash: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypnos_objstore::ObjectStoreBucket;
    use hypnos_tsdb::meta::{BlockCompaction, BlockStats};

    fn write_block(dir: &Path, ulid: &str, level: u32, samples: u64) {
        let b = dir.join(ulid);
        std::fs::create_dir_all(b.join("chunks")).unwrap();
        std::fs::write(b.join("chunks/000001"), vec![1u8; 100]).unwrap();
        std::fs::write(b.join("chunks/000002"), vec![2u8; 50]).unwrap();
        std::fs::write(b.join("index"), vec![3u8; 30]).unwrap();
        std::fs::write(b.join("tombstones"), vec![0u8; 9]).unwrap();
        BlockMeta {
            ulid: ulid.into(),
            min_time: 0,
            max_time: 1000,
            stats: BlockStats {
                num_samples: samples,
                ..Default::default()
            },
            compaction: BlockCompaction {
                level,
                sources: vec![ulid.into()],
                ..Default::default()
            },
            version: 1,
            thanos: None,
        }
        .write(&b)
        .unwrap();
    }

    fn ext() -> Labels {
        Labels::from_pairs([("cluster", "c1")])
    }

    const A: &str = "01HZ0000000000000000000001";
    const B: &str = "01HZ0000000000000000000002";
    const C: &str = "01HZ0000000000000000000003";

    #[tokio::test]
    async fn uploads_level_one_blocks_with_thanos_meta() {
        let tmp = tempfile::tempdir().unwrap();
        write_block(tmp.path(), A, 1, 10);
        write_block(tmp.path(), B, 2, 10);
        write_block(tmp.path(), C, 1, 0);
        let bucket: Arc<dyn Bucket> = Arc::new(ObjectStoreBucket::in_memory());
        let s = Shipper::new(
            tmp.path().to_path_buf(),
            DEFAULT_META_FILE_NAME,
            bucket.clone(),
            false,
            SidecarMetrics::default(),
        );
        assert_eq!(s.sync(&ext()).await.unwrap(), 1);
        let keys = bucket.iter("", true).await.unwrap();
        assert_eq!(
            keys,
            vec![
                format!("{A}/chunks/000001"),
                format!("{A}/chunks/000002"),
                format!("{A}/index"),
                format!("{A}/meta.json"),
            ]
        );
        let meta = BlockMeta::from_json(&bucket.get(&format!("{A}/meta.json")).await.unwrap(), Path::new("m")).unwrap();
        let t = meta.thanos.unwrap();
        assert_eq!(t.labels.get("cluster").map(String::as_str), Some("c1"));
        assert_eq!(t.source, "sidecar");
        assert_eq!(t.downsample.resolution, 0);
        assert_eq!(t.segment_files, vec!["000001", "000002"]);
        let files: Vec<(&str, i64)> = t.files.iter().map(|f| (f.rel_path.as_str(), f.size_bytes)).collect();
        assert_eq!(
            files,
            vec![
                ("chunks/000001", 100),
                ("chunks/000002", 50),
                ("index", 30),
                ("meta.json", 0)
            ]
        );
        let state = ShipperState::read(&tmp.path().join(DEFAULT_META_FILE_NAME));
        assert_eq!(state.uploaded, vec![A.to_string()]);
        assert!(!tmp.path().join("thanos/upload").join(A).exists());
        // The local block is untouched (no thanos section written into it).
        assert!(BlockMeta::read(&tmp.path().join(A)).unwrap().thanos.is_none());

        // Nothing more to do; with upload-compacted the level-2 block goes too.
        assert_eq!(s.sync(&ext()).await.unwrap(), 0);
        let s2 = Shipper::new(
            tmp.path().to_path_buf(),
            DEFAULT_META_FILE_NAME,
            bucket.clone(),
            true,
            SidecarMetrics::default(),
        );
        assert_eq!(s2.sync(&ext()).await.unwrap(), 1);
        assert!(bucket.exists(&format!("{B}/meta.json")).await.unwrap());
    }

    #[tokio::test]
    async fn lost_state_file_is_rebuilt_from_the_bucket() {
        let tmp = tempfile::tempdir().unwrap();
        write_block(tmp.path(), A, 1, 10);
        let bucket: Arc<dyn Bucket> = Arc::new(ObjectStoreBucket::in_memory());
        let s = Shipper::new(
            tmp.path().to_path_buf(),
            DEFAULT_META_FILE_NAME,
            bucket.clone(),
            false,
            SidecarMetrics::default(),
        );
        assert_eq!(s.sync(&ext()).await.unwrap(), 1);
        std::fs::write(tmp.path().join(DEFAULT_META_FILE_NAME), "{corrupt").unwrap();
        assert_eq!(s.sync(&ext()).await.unwrap(), 0);
        let state = ShipperState::read(&tmp.path().join(DEFAULT_META_FILE_NAME));
        assert_eq!(state.uploaded, vec![A.to_string()]);
    }

    #[tokio::test]
    async fn refuses_without_external_labels() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Shipper::new(
            tmp.path().to_path_buf(),
            DEFAULT_META_FILE_NAME,
            Arc::new(ObjectStoreBucket::in_memory()),
            false,
            SidecarMetrics::default(),
        );
        assert!(matches!(
            s.sync(&Labels::empty()).await,
            Err(ShipperError::NoExternalLabels)
        ));
    }

    #[test]
    fn state_file_format() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("thanos.shipper.json");
        ShipperState {
            version: 1,
            uploaded: vec![A.into()],
        }
        .write(&p)
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{{\n\t\"version\": 1,\n\t\"uploaded\": [\n\t\t\"{A}\"\n\t]\n}}")
        );
        std::fs::write(&p, r#"{"version":1,"uploaded":null}"#).unwrap();
        assert!(ShipperState::read(&p).uploaded.is_empty());
    }

    #[test]
    fn rfc3339_nano_trims_like_go() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_120);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH + std::time::Duration::from_secs(1)),
            "1970-01-01T00:00:01Z"
        );
    }

    #[test]
    fn block_duration_check() {
        let mut f = std::collections::BTreeMap::new();
        assert!(check_block_durations(&f).is_ok());
        f.insert("storage.tsdb.min-block-duration".to_string(), "2h".to_string());
        f.insert("storage.tsdb.max-block-duration".to_string(), "2h".to_string());
        assert!(check_block_durations(&f).is_ok());
        f.insert("storage.tsdb.max-block-duration".to_string(), "1d".to_string());
        let e = check_block_durations(&f).unwrap_err();
        assert!(e.contains("min-block-duration"), "{e}");
    }
}
