//! `hypnos tools generate`: writes realistic TSDB history (argument parsing here, logic in
//! hypnos-generate).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use hypnos_generate::plan::{self, PLAN_NAMES};
use hypnos_generate::{Options, Output, Plan, Profile, generate};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Named plan: continuous-30d-tiny, continuous-1w-small, continuous-1w-1series-10000apps (thanosbench's
    /// profiles), seed-30d, seed-1w (the seed's metrics; `seed` and `realistic` mean seed-30d).
    #[arg(short = 'p', long, default_value = "seed")]
    plan: String,
    /// Series shape, overriding the plan's: thanosbench's continuous gauges, or the seed's metrics.
    #[arg(long)]
    profile: Option<ProfileArg>,
    /// History length, replacing the plan's blocks with blocks of --block-duration (e.g. 30d, 12h).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Block length used with --duration.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2h")]
    block_duration: Duration,
    /// Scrape interval.
    #[arg(long, value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// Scrape targets (apps for the continuous profile, demo-app instances for the seed profile).
    #[arg(long)]
    targets: Option<usize>,
    /// Total series: for the continuous profile, metrics per target = series / targets; for the
    /// seed profile (80 series per target), targets = series / 80.
    #[arg(long)]
    series: Option<usize>,
    /// Mean time before a seed-profile target is replaced by a new instance (series churn); 0s turns it off.
    #[arg(long, value_parser = humantime::parse_duration)]
    churn: Option<Duration>,
    /// End of the newest block: RFC 3339 (2021-07-27T00:00:00Z), milliseconds since the epoch, `now`
    /// (aligned down to 2h, handy before starting Prometheus on the data) or the default, now aligned
    /// up to the next 2h boundary (thanosbench's default).
    #[arg(long)]
    max_time: Option<String>,
    /// Prometheus data directory to write blocks into; one per replica, or one containing `{i}`
    /// (replaced by the replica number).
    #[arg(short = 'o', long = "output-dir")]
    output_dir: Vec<String>,
    /// Upload to the bucket configured in this objstore YAML file instead.
    #[arg(long = "objstore.config-file")]
    objstore_config_file: Option<PathBuf>,
    /// Upload to the bucket configured by this objstore YAML instead.
    #[arg(long = "objstore.config")]
    objstore_config: Option<String>,
    /// External label for meta.json, `name="value"`; repeatable.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// HA replicas: the same series with a few ms of timestamp jitter and small gaps each.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// External label that tells replicas apart.
    #[arg(long, default_value = "replica")]
    replica_label: String,
    /// Seed for every random choice (same seed, same blocks).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Scrape timestamp jitter (default 0 for one replica, 5ms for several).
    #[arg(long, value_parser = humantime::parse_duration)]
    jitter: Option<Duration>,
    /// Do not leave gaps in replicas.
    #[arg(long)]
    no_gaps: bool,
    /// Do not list the blocks written.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProfileArg {
    Continuous,
    Seed,
}

fn ms(d: Duration) -> anyhow::Result<i64> {
    i64::try_from(d.as_millis()).context("duration too long")
}

/// `name="value"` (quotes optional).
pub fn parse_label(s: &str) -> anyhow::Result<(String, String)> {
    let (name, value) = s
        .split_once('=')
        .with_context(|| format!("label {s:?} is not of the form name=\"value\""))?;
    let name = name.trim();
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    let valid_name = !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if !valid_name {
        bail!("label {s:?}: {name:?} is not a valid label name");
    }
    Ok((name.to_string(), value.to_string()))
}

/// Parses `--max-time`.
pub fn parse_max_time(s: Option<&str>, now: i64) -> anyhow::Result<i64> {
    match s {
        None | Some("") => Ok(plan::align_up(now)),
        Some("now") => Ok(plan::align_down(now)),
        Some(v) if v.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
            v.parse::<i64>().with_context(|| format!("--max-time {v:?}"))
        }
        Some(v) => {
            let t = humantime::parse_rfc3339_weak(v)
                .with_context(|| format!("--max-time {v:?} is neither RFC 3339, milliseconds nor `now`"))?;
            let d = t
                .duration_since(std::time::UNIX_EPOCH)
                .with_context(|| format!("--max-time {v:?} is before 1970"))?;
            ms(d)
        }
    }
}

fn build_plan(a: &GenerateArgs) -> anyhow::Result<Plan> {
    let max_time = parse_max_time(a.max_time.as_deref(), plan::now_ms())?;
    let mut p =
        Plan::named(&a.plan, max_time).with_context(|| format!("--plan; known plans: {}", PLAN_NAMES.join(", ")))?;
    if let Some(i) = a.interval {
        p.interval = ms(i)?;
    }
    let kind = match (a.profile, &p.profile) {
        (Some(k), _) => k,
        (None, Profile::Continuous { .. }) => ProfileArg::Continuous,
        (None, Profile::Seed { .. }) => ProfileArg::Seed,
    };
    p.profile = match kind {
        ProfileArg::Continuous => {
            let (t0, m0) = match p.profile {
                Profile::Continuous {
                    targets,
                    metrics_per_target,
                } => (targets, metrics_per_target),
                Profile::Seed { .. } => (1, 5),
            };
            let targets = a.targets.unwrap_or(t0);
            let metrics = match a.series {
                Some(s) => s.div_ceil(targets.max(1)),
                None => m0,
            };
            Profile::continuous(targets, metrics)
        }
        ProfileArg::Seed => {
            let (t0, c0) = match p.profile {
                Profile::Seed { targets, churn } => (targets, churn),
                Profile::Continuous { .. } => (3, Some(plan::DEFAULT_CHURN)),
            };
            let targets = match (a.targets, a.series) {
                (Some(t), _) => t,
                (None, Some(s)) => s.div_ceil(hypnos_generate::profile::SEED_SERIES_PER_TARGET),
                (None, None) => t0,
            };
            let churn = match a.churn {
                Some(d) if d.is_zero() => None,
                Some(d) => Some(ms(d)?),
                None => c0,
            };
            Profile::Seed { targets, churn }
        }
    };
    if let Some(d) = a.duration {
        p = p.with_duration(ms(d)?, ms(a.block_duration)?)?;
    }
    p.validate()?;
    Ok(p)
}

fn build_output(a: &GenerateArgs) -> anyhow::Result<Output> {
    let bucket_flag = a.objstore_config_file.is_some() || a.objstore_config.is_some();
    if bucket_flag {
        if !a.output_dir.is_empty() {
            bail!("--output-dir and --objstore.config(-file) are mutually exclusive");
        }
        let bucket = hypnos_objstore::load_bucket(a.objstore_config_file.as_deref(), a.objstore_config.as_deref())
            .context("opening the bucket")?;
        return Ok(Output::Bucket(bucket));
    }
    let dirs: Vec<String> = if a.output_dir.is_empty() {
        vec!["data/".to_string()]
    } else {
        a.output_dir.clone()
    };
    let dirs: Vec<PathBuf> = match dirs.as_slice() {
        [one] if one.contains("{i}") => (0..a.replicas)
            .map(|i| PathBuf::from(one.replace("{i}", &i.to_string())))
            .collect(),
        [_] if a.replicas > 1 => {
            bail!(
                "{} replicas need one --output-dir each, or one containing {{i}} (e.g. data/prom-{{i}})",
                a.replicas
            )
        }
        many => many.iter().map(PathBuf::from).collect(),
    };
    if dirs.len() != a.replicas {
        bail!("{} --output-dir values for {} replicas", dirs.len(), a.replicas);
    }
    Ok(Output::Dirs(dirs))
}

pub fn run(a: GenerateArgs) -> anyhow::Result<()> {
    let plan = build_plan(&a)?;
    let output = build_output(&a)?;
    let mut external = BTreeMap::new();
    for l in &a.labels {
        let (n, v) = parse_label(l)?;
        external.insert(n, v);
    }
    let pb = super::tsdb::progress_bar("generating samples");
    let bar = pb.clone();
    let opts = Options {
        seed: a.seed,
        replicas: a.replicas,
        replica_label: a.replica_label.clone(),
        external_labels: external,
        timestamp_jitter: a.jitter.map(ms).transpose()?,
        gaps: a.no_gaps.then_some(false),
        progress: None,
    }
    .with_progress(move |p| {
        bar.set_length(p.samples_total);
        bar.set_position(p.samples_done);
    });
    let summary = generate(&plan, &output, &opts).context("generating blocks")?;
    pb.finish_and_clear();
    if !a.quiet {
        println!("BLOCK ULID\tREPLICA\tMIN TIME\tMAX TIME\tSERIES\tSAMPLES\tLOCATION");
        for b in &summary.blocks {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                b.ulid, b.replica, b.min_time, b.max_time, b.series, b.samples, b.location
            );
        }
    }
    println!("plan {}: {summary}", plan.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_max_time() {
        assert_eq!(
            parse_label(r#"cluster="ap-south1""#).ok(),
            Some(("cluster".into(), "ap-south1".into()))
        );
        assert_eq!(parse_label("replica=0").ok(), Some(("replica".into(), "0".into())));
        assert!(parse_label("nolabel").is_err());
        assert!(parse_label("1x=\"a\"").is_err());
        assert_eq!(
            parse_max_time(Some("2021-07-27T00:00:00Z"), 0).ok(),
            Some(1_627_344_000_000)
        );
        assert_eq!(parse_max_time(None, 1).ok(), Some(7_200_000));
        assert_eq!(parse_max_time(Some("now"), 7_200_001).ok(), Some(7_200_000));
        assert_eq!(parse_max_time(Some("1234"), 0).ok(), Some(1234));
        assert!(parse_max_time(Some("yesterday"), 0).is_err());
    }
}
