//! `tsdb list`: one line per block, columns aligned like promtool's tabwriter output.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::gofmt::format_duration_ms;
use crate::meta::BlockMeta;

/// Total size of the files in a block directory.
pub fn block_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let e = e.map_err(|e| Error::io(&d, e))?;
            let md = e.metadata().map_err(|err| Error::io(e.path(), err))?;
            if md.is_dir() {
                stack.push(e.path());
            } else {
                total += md.len();
            }
        }
    }
    Ok(total)
}

/// Formats rows like Go's `tabwriter.NewWriter(w, 13, 0, 2, ' ', 0)`: every column but
/// the last padded to max(13, widest cell + 2).
pub fn tabwrite(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max((c.chars().count() + 2).max(13));
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                for _ in c.chars().count()..widths[i] {
                    out.push(' ');
                }
            }
        }
        out.push('\n');
    }
    out
}

/// Go's `time.Time.String()` of a UTC millisecond timestamp.
pub fn format_time_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if frac != 0 {
        s.push_str(format!(".{frac:03}").trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The table for `metas` (with their directories, for sizes).
pub fn list_table(blocks: &[(BlockMeta, u64)], human: bool) -> String {
    let mut rows = vec![
        [
            "BLOCK ULID",
            "MIN TIME",
            "MAX TIME",
            "DURATION",
            "NUM SAMPLES",
            "NUM CHUNKS",
            "NUM SERIES",
            "SIZE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>(),
    ];
    for (m, size) in blocks {
        let (mint, maxt, size) = if human {
            (
                format_time_utc(m.min_time),
                format_time_utc(m.max_time),
                human_bytes(*size),
            )
        } else {
            (m.min_time.to_string(), m.max_time.to_string(), size.to_string())
        };
        rows.push(vec![
            m.ulid.clone(),
            mint,
            maxt,
            format_duration_ms(m.max_time - m.min_time),
            m.stats.num_samples.to_string(),
            m.stats.num_chunks.to_string(),
            m.stats.num_series.to_string(),
            size,
        ]);
    }
    tabwrite(&rows)
}

pub fn list(dir: &Path, human: bool, out: &mut dyn Write) -> Result<()> {
    let mut blocks = Vec::new();
    for p in super::blocks_in(dir)? {
        let m = BlockMeta::read(&p)?;
        blocks.push((m, block_size(&p)?));
    }
    out.write_all(list_table(&blocks, human).as_bytes())
        .map_err(|e| Error::io("<output>", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_time_utc(1_700_000_000_000), "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(format_time_utc(1_700_000_075_001), "2023-11-14 22:14:35.001 +0000 UTC");
    }
}
