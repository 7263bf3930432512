//! The generation loop: block by block (oldest first), series by series in label order,
//! values computed once per series and written into one block per replica.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use hypnos_model::{Histogram, SampleValue, stale_nan};
use hypnos_objstore::Bucket;
use hypnos_tsdb::BlockWriterOptions;
use hypnos_tsdb::head::AppendError;
use hypnos_tsdb::meta::{ThanosDownsample, ThanosMeta};
use hypnos_tsdb::series_writer::SeriesBlockWriter;

use crate::plan::{BlockRange, Plan};
use crate::profile::{Expanded, SeriesSpec, expand};
use crate::rng::{Rng, hash, hash_str};
use crate::values::{SeriesState, next_float, next_histogram};
use crate::{GenerateError, Options, Output, Progress, SOURCE, Summary, WrittenBlock};

/// Most replicas we write (an HA setup rarely has more than 3).
const MAX_REPLICAS: usize = 64;
/// Mean time between a replica's outages when gaps are on.
const MEAN_TIME_BETWEEN_GAPS: f64 = 12.0 * 3_600_000.0;

fn ceil_div(a: i64, b: i64) -> i64 {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 { q } else { q + 1 }
}

/// The scrape step range of a series within a block.
struct Presence {
    series: usize,
    k_lo: i64,
    k_hi: i64,
    /// Step of the staleness marker, when it falls in this block.
    stale_k: Option<i64>,
}

fn presence(spec: &SeriesSpec, phase: i64, interval: i64, block: BlockRange, idx: usize) -> Option<Presence> {
    if spec.birth >= spec.death || spec.birth >= block.max_time {
        return None;
    }
    let block_lo = ceil_div(block.min_time - phase, interval);
    let block_hi = ceil_div(block.max_time - phase, interval);
    let k_lo = ceil_div(spec.birth.max(block.min_time) - phase, interval);
    let k_death = if spec.death == i64::MAX {
        i64::MAX
    } else {
        ceil_div(spec.death - phase, interval)
    };
    let k_hi = block_hi.min(k_death);
    let stale_k = (spec.death != i64::MAX && !spec.kind.is_histogram() && k_death >= block_lo && k_death < block_hi)
        .then_some(k_death);
    if k_lo >= k_hi && stale_k.is_none() {
        return None;
    }
    Some(Presence {
        series: idx,
        k_lo,
        k_hi: k_hi.max(k_lo),
        stale_k,
    })
}

/// Outage windows `[start, end)` of one replica: a few missed scrapes now and then.
fn replica_gaps(plan: &Plan, seed: u64, replica: usize) -> Vec<(i64, i64)> {
    let mut rng = Rng::new(hash(&[seed, replica as u64, hash_str("gaps")]));
    let mut out = Vec::new();
    let mut t = plan.min_time();
    loop {
        t = t.saturating_add(rng.exponential(MEAN_TIME_BETWEEN_GAPS) as i64);
        if t >= plan.max_time() || out.len() > 1_000_000 {
            return out;
        }
        let len = plan.interval * (1 + rng.below(4) as i64);
        out.push((t, t.saturating_add(len)));
        t = t.saturating_add(len);
    }
}

fn block_ulid(plan: &Plan, opts: &Options, replica: usize, block: BlockRange) -> ulid::Ulid {
    let labels: String = opts
        .labels_for_replica(replica)
        .iter()
        .map(|(k, v)| format!("{k}={v},"))
        .collect();
    let words = [
        opts.seed,
        replica as u64,
        hash_str(&labels),
        hash_str(&format!("{:?}/{}", plan.profile, plan.interval)),
        block.min_time as u64,
        block.max_time as u64,
    ];
    let hi = hash(&words);
    let lo = hash(&[hi, 0x51d]);
    let random = ((u128::from(hi) << 64) | u128::from(lo)) & ((1u128 << 80) - 1);
    let ts = block.min_time.clamp(0, (1i64 << 48) - 1) as u64;
    ulid::Ulid::from_parts(ts, random)
}

fn dir_size(dir: &Path) -> Result<u64, GenerateError> {
    let io = |e| GenerateError::Io {
        path: dir.to_path_buf(),
        source: e,
    };
    let mut total = 0;
    for e in std::fs::read_dir(dir).map_err(io)? {
        let e = e.map_err(io)?;
        let md = e.metadata().map_err(io)?;
        total += if md.is_dir() { dir_size(&e.path())? } else { md.len() };
    }
    Ok(total)
}

/// A block staged for upload.
struct Staged {
    dir: PathBuf,
    ulid: String,
}

/// Uploads staged blocks on its own thread and runtime (so the generator can be called
/// from sync code and from inside another runtime alike): chunks first, then index, then
/// meta.json, then the local copy is removed.
fn uploader(bucket: Arc<dyn Bucket>, rx: mpsc::Receiver<Staged>) -> Result<(), GenerateError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| GenerateError::Io {
            path: PathBuf::from("<tokio runtime>"),
            source: e,
        })?;
    for staged in rx {
        rt.block_on(upload_block(bucket.as_ref(), &staged))?;
        std::fs::remove_dir_all(&staged.dir).map_err(|e| GenerateError::Io {
            path: staged.dir.clone(),
            source: e,
        })?;
    }
    Ok(())
}

async fn upload_block(bucket: &dyn Bucket, staged: &Staged) -> Result<(), GenerateError> {
    let chunks_dir = staged.dir.join("chunks");
    let io = |path: &Path, e| GenerateError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut segments: Vec<String> = std::fs::read_dir(&chunks_dir)
        .map_err(|e| io(&chunks_dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    segments.sort();
    let mut files: Vec<(String, PathBuf)> = segments
        .into_iter()
        .map(|s| (format!("{}/chunks/{s}", staged.ulid), chunks_dir.join(s)))
        .collect();
    files.push((format!("{}/index", staged.ulid), staged.dir.join("index")));
    files.push((format!("{}/meta.json", staged.ulid), staged.dir.join("meta.json")));
    for (key, path) in files {
        bucket
            .put_file(&key, &path)
            .await
            .map_err(|source| GenerateError::Upload {
                bucket: bucket.name().to_string(),
                key: key.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Writes `plan` to `output`. See the crate docs.
///
/// This blocks the calling thread (generation is CPU-bound); from async code call it in
/// `tokio::task::spawn_blocking`. Bucket uploads run on a thread of their own while the
/// next block is generated.
pub fn generate(plan: &Plan, output: &Output, opts: &Options) -> Result<Summary, GenerateError> {
    plan.validate()?;
    if opts.replicas == 0 || opts.replicas > MAX_REPLICAS {
        return Err(GenerateError::Options(format!(
            "replicas must be between 1 and {MAX_REPLICAS}, got {}",
            opts.replicas
        )));
    }
    let jitter = opts.jitter();
    if jitter >= plan.interval {
        return Err(GenerateError::Options(format!(
            "timestamp jitter ({jitter} ms) must be below the scrape interval ({} ms)",
            plan.interval
        )));
    }
    if opts.replicas > 1 && opts.external_labels.contains_key(&opts.replica_label) {
        return Err(GenerateError::Options(format!(
            "external label {:?} is set per replica; do not pass it with several replicas",
            opts.replica_label
        )));
    }
    match output {
        Output::Dirs(dirs) if dirs.len() != opts.replicas => {
            return Err(GenerateError::Options(format!(
                "{} output directories for {} replicas; give one per replica",
                dirs.len(),
                opts.replicas
            )));
        }
        Output::Bucket(_) if opts.labels_for_replica(0).is_empty() => {
            return Err(GenerateError::Options(
                "blocks uploaded to a bucket need external labels (Thanos refuses blocks without them); \
                 pass e.g. cluster=\"eu-1\""
                    .into(),
            ));
        }
        _ => {}
    }
    let staging = match output {
        Output::Bucket(_) => Some(
            tempfile::Builder::new()
                .prefix("hypnos-generate-")
                .tempdir()
                .map_err(|e| GenerateError::Io {
                    path: std::env::temp_dir(),
                    source: e,
                })?,
        ),
        Output::Dirs(_) => None,
    };
    let parents: Vec<PathBuf> = match (output, &staging) {
        (Output::Dirs(dirs), _) => dirs.clone(),
        (Output::Bucket(_), Some(s)) => (0..opts.replicas)
            .map(|i| s.path().join(format!("replica-{i}")))
            .collect(),
        (Output::Bucket(_), None) => Vec::new(),
    };
    for p in &parents {
        std::fs::create_dir_all(p).map_err(|e| GenerateError::Io {
            path: p.clone(),
            source: e,
        })?;
    }

    let started = Instant::now();
    let expanded = expand(plan, opts.seed);
    let mut generator = Generator::new(plan, opts, &expanded);

    let result = std::thread::scope(|scope| -> Result<Summary, GenerateError> {
        let (tx, handle) = match output {
            Output::Bucket(b) => {
                let (tx, rx) = mpsc::sync_channel::<Staged>(2);
                let bucket = b.clone();
                (Some(tx), Some(scope.spawn(move || uploader(bucket, rx))))
            }
            Output::Dirs(_) => (None, None),
        };
        let mut summary = Summary::default();
        let mut gen_result = Ok(());
        for (bi, block) in plan.blocks.iter().enumerate() {
            match generator.block(*block, &parents) {
                Ok(written) => {
                    for (replica, meta, dir) in written {
                        let bytes = match dir_size(&dir) {
                            Ok(b) => b,
                            Err(e) => {
                                gen_result = Err(e);
                                break;
                            }
                        };
                        let location = match output {
                            Output::Dirs(_) => dir.display().to_string(),
                            Output::Bucket(b) => format!("{}/{}/", b.name(), meta.ulid),
                        };
                        summary.bytes += bytes;
                        summary.samples += meta.stats.num_samples;
                        summary.blocks.push(WrittenBlock {
                            replica,
                            ulid: meta.ulid.clone(),
                            min_time: meta.min_time,
                            max_time: meta.max_time,
                            series: meta.stats.num_series,
                            samples: meta.stats.num_samples,
                            bytes,
                            location,
                        });
                        if let Some(tx) = &tx {
                            // A closed channel means the uploader failed; its error is reported below.
                            if tx.send(Staged { dir, ulid: meta.ulid }).is_err() {
                                break;
                            }
                        }
                    }
                }
                Err(e) => gen_result = Err(e),
            }
            if gen_result.is_err() {
                break;
            }
            generator.report(bi as u64 + 1);
        }
        drop(tx);
        let upload_result = match handle {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(GenerateError::Options("the upload thread panicked".into()))),
            None => Ok(()),
        };
        gen_result?;
        upload_result?;
        summary.series = generator.series_written();
        Ok(summary)
    });
    let mut summary = result?;
    summary.elapsed = started.elapsed();
    tracing::info!(plan = %plan.name, %summary, "generated blocks");
    Ok(summary)
}

/// Generation state across blocks.
struct Generator<'a> {
    plan: &'a Plan,
    opts: &'a Options,
    ex: &'a Expanded,
    states: Vec<SeriesState>,
    gaps: Vec<Vec<(i64, i64)>>,
    jitter: i64,
    /// Per replica, whether each series was written at least once.
    written: Vec<Vec<bool>>,
    floats: Vec<f64>,
    hists: Vec<Histogram>,
    progress: Progress,
}

impl<'a> Generator<'a> {
    fn new(plan: &'a Plan, opts: &'a Options, ex: &'a Expanded) -> Self {
        let gaps = (0..opts.replicas)
            .map(|r| {
                if opts.gaps_enabled() {
                    replica_gaps(plan, opts.seed, r)
                } else {
                    Vec::new()
                }
            })
            .collect();
        let mut samples_total = 0u64;
        for block in &plan.blocks {
            for (i, s) in ex.series.iter().enumerate() {
                let phase = ex.targets.get(s.target as usize).map_or(0, |t| t.phase);
                if let Some(p) = presence(s, phase, plan.interval, *block, i) {
                    samples_total += (p.k_hi - p.k_lo) as u64 + u64::from(p.stale_k.is_some());
                }
            }
        }
        Generator {
            plan,
            opts,
            ex,
            states: ex.series.iter().map(SeriesState::new).collect(),
            gaps,
            jitter: opts.jitter(),
            written: vec![vec![false; ex.series.len()]; opts.replicas],
            floats: Vec::new(),
            hists: Vec::new(),
            progress: Progress {
                samples_done: 0,
                samples_total: samples_total * opts.replicas as u64,
                blocks_done: 0,
                blocks_total: (plan.blocks.len() * opts.replicas) as u64,
            },
        }
    }

    fn series_written(&self) -> u64 {
        self.written
            .iter()
            .map(|w| w.iter().filter(|&&b| b).count() as u64)
            .sum()
    }

    fn report(&mut self, blocks_done: u64) {
        self.progress.blocks_done = blocks_done * self.opts.replicas as u64;
        if let Some(f) = &self.opts.progress {
            f(self.progress);
        }
    }

    fn writer_options(&self, replica: usize) -> BlockWriterOptions {
        let labels = self.opts.labels_for_replica(replica);
        let thanos = (!labels.is_empty() || matches!(self.opts.replicas, 2..)).then(|| ThanosMeta {
            version: 1,
            labels,
            downsample: ThanosDownsample { resolution: 0 },
            source: SOURCE.into(),
            ..Default::default()
        });
        BlockWriterOptions {
            thanos,
            ..Default::default()
        }
    }

    /// Writes one block per replica; returns (replica, meta, directory) of each non-empty one.
    fn block(
        &mut self,
        block: BlockRange,
        parents: &[PathBuf],
    ) -> Result<Vec<(usize, hypnos_tsdb::BlockMeta, PathBuf)>, GenerateError> {
        let interval = self.plan.interval;
        let present: Vec<Presence> = self
            .ex
            .series
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let phase = self.ex.targets.get(s.target as usize).map_or(0, |t| t.phase);
                presence(s, phase, interval, block, i)
            })
            .collect();
        if present.is_empty() {
            return Ok(Vec::new());
        }
        let mut symbols = BTreeSet::new();
        for p in &present {
            for l in &self.ex.series[p.series].labels {
                if !symbols.contains(l.name.as_str()) {
                    symbols.insert(l.name.clone());
                }
                if !symbols.contains(l.value.as_str()) {
                    symbols.insert(l.value.clone());
                }
            }
        }
        let mut writers = Vec::with_capacity(self.opts.replicas);
        for (r, parent) in parents.iter().enumerate() {
            let id = block_ulid(self.plan, self.opts, r, block);
            writers.push(SeriesBlockWriter::create(
                parent,
                id,
                symbols.clone(),
                self.writer_options(r),
            )?);
        }
        for (n, p) in present.iter().enumerate() {
            self.series(p, block, &mut writers)?;
            if n % 256 == 255
                && let Some(f) = &self.opts.progress
            {
                f(self.progress);
            }
        }
        let mut out = Vec::with_capacity(writers.len());
        for (r, w) in writers.into_iter().enumerate() {
            if w.num_series() == 0 {
                continue;
            }
            let (meta, dir) = w.finish(block.min_time, block.max_time)?;
            out.push((r, meta, dir));
        }
        Ok(out)
    }

    fn series(
        &mut self,
        p: &Presence,
        block: BlockRange,
        writers: &mut [SeriesBlockWriter],
    ) -> Result<(), GenerateError> {
        let spec = &self.ex.series[p.series];
        let Some(target) = self.ex.targets.get(spec.target as usize) else {
            return Err(GenerateError::Plan(format!("series {} has no target", spec.labels)));
        };
        let interval = self.plan.interval;
        let state = &mut self.states[p.series];
        let histogram = spec.kind.is_histogram();
        self.floats.clear();
        self.hists.clear();
        for k in p.k_lo..p.k_hi {
            let base = k * interval + target.phase;
            if histogram {
                self.hists.push(next_histogram(spec, state, target, k, base, interval));
            } else {
                self.floats.push(next_float(spec, state, target, k, base, interval));
            }
        }
        for (r, w) in writers.iter_mut().enumerate() {
            let gaps = &self.gaps[r];
            let mut gi = 0usize;
            let mut chunker = w.chunker();
            let seed = self.opts.seed;
            let jitter = self.jitter;
            let stamp = |k: i64| -> i64 {
                let base = k * interval + target.phase;
                if jitter == 0 {
                    base
                } else {
                    base + (hash(&[seed, r as u64, u64::from(spec.target), k as u64]) % (jitter as u64 + 1)) as i64
                }
            };
            let in_gap = |gi: &mut usize, base: i64| -> bool {
                while *gi < gaps.len() && gaps[*gi].1 <= base {
                    *gi += 1;
                }
                *gi < gaps.len() && gaps[*gi].0 <= base
            };
            let mut appended = 0u64;
            for (i, k) in (p.k_lo..p.k_hi).enumerate() {
                let base = k * interval + target.phase;
                if !gaps.is_empty() && in_gap(&mut gi, base) {
                    continue;
                }
                let t = stamp(k);
                if t >= block.max_time {
                    continue;
                }
                let res = if histogram {
                    let h = self.hists.get(i).cloned().unwrap_or_default();
                    chunker.append(t, &SampleValue::Histogram(Box::new(h)))
                } else {
                    chunker.append_float_sample(t, self.floats.get(i).copied().unwrap_or(f64::NAN))
                };
                append_ok(res, spec, t)?;
                appended += 1;
            }
            if let Some(k) = p.stale_k {
                let base = k * interval + target.phase;
                let t = stamp(k);
                if t < block.max_time && (gaps.is_empty() || !in_gap(&mut gi, base)) {
                    append_ok(chunker.append(t, &SampleValue::Float(stale_nan())), spec, t)?;
                    appended += 1;
                }
            }
            if appended > 0 {
                w.add_series(&spec.labels, chunker)?;
                self.written[r][p.series] = true;
                self.progress.samples_done += appended;
            }
        }
        Ok(())
    }
}

fn append_ok(res: Result<(), AppendError>, spec: &SeriesSpec, t: i64) -> Result<(), GenerateError> {
    res.map_err(|e| match e {
        AppendError::OutOfOrder { last } => GenerateError::Tsdb(hypnos_tsdb::Error::OutOfOrder {
            series: spec.labels.to_string(),
            t,
            last,
        }),
    })
}
