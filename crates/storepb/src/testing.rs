//! Test support for crates whose integration tests drive the independent Python StoreAPI
//! client (`python/storeapi_client.py`) and compare with `promtool tsdb dump`.

use std::collections::BTreeMap;
use std::path::Path;

/// The `.proto` files, laid out like upstream (`-I` root for protoc / grpcio-tools).
pub const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
/// `python/storeapi_client.py`: generates stubs with grpcio-tools at run time, calls one RPC,
/// decodes XOR chunks in Python and prints JSON (see the script's docstring).
pub const PYTHON_CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/storeapi_client.py");

/// A series as a label map and its samples `(ms, value)`.
pub type DumpedSeries = (BTreeMap<String, String>, Vec<(i64, f64)>);

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "running {tool}: {source} (python: pip install grpcio grpcio-tools protobuf; promtool: apt-get install prometheus)"
    )]
    Spawn {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed: {stderr}")]
    Failed { tool: &'static str, stderr: String },
    #[error("{tool} printed something unexpected ({reason}): {output}")]
    Output {
        tool: &'static str,
        reason: String,
        output: String,
    },
}

/// Runs the Python client against `addr` (`host:port`) with `args` (e.g. `["series",
/// "--matcher", "job", "=", "x"]`) and returns its JSON. gRPC errors come back as
/// `{"error": {"code": "INVALID_ARGUMENT", "message": ...}}`, not as `Err`.
pub async fn python_client(addr: &str, args: &[&str]) -> Result<serde_json::Value, ToolError> {
    let tool = "python3 storeapi_client.py";
    let out = tokio::process::Command::new("python3")
        .arg(PYTHON_CLIENT)
        .args(["--proto-dir", PROTO_DIR, "--addr", addr])
        .args(args)
        .output()
        .await
        .map_err(|source| ToolError::Spawn { tool, source })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).map_err(|e| ToolError::Output {
        tool,
        reason: e.to_string(),
        output: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    })
}

/// The series of a `python_client(.., ["series", ..])` answer, samples of all `raw` XOR
/// chunks concatenated in order. Fails on chunks whose hash is not their xxhash64.
pub fn python_series(answer: &serde_json::Value) -> Result<Vec<DumpedSeries>, ToolError> {
    let bad = |reason: &str| ToolError::Output {
        tool: "storeapi_client.py",
        reason: reason.to_string(),
        output: answer.to_string(),
    };
    let series = answer["series"].as_array().ok_or_else(|| bad("no series array"))?;
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let labels = s["labels"]
            .as_object()
            .ok_or_else(|| bad("series without labels"))?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let mut samples = Vec::new();
        for c in s["chunks"].as_array().ok_or_else(|| bad("series without chunks"))? {
            if c["part"] != "raw" {
                continue;
            }
            if c["hash_ok"] != true {
                return Err(bad("chunk hash is not the xxhash64 of its data"));
            }
            for pair in c["samples"].as_array().ok_or_else(|| bad("chunk is not XOR"))? {
                let t = pair[0].as_i64().ok_or_else(|| bad("timestamp"))?;
                let v = pair[1].as_u64().ok_or_else(|| bad("value bits"))?;
                samples.push((t, f64::from_bits(v)));
            }
        }
        out.push((labels, samples));
    }
    Ok(out)
}

/// `promtool tsdb dump` of a data directory (blocks as subdirectories), grouped by series in
/// dump order. Creates the `wal/` directory promtool insists on.
pub fn promtool_dump(data_dir: &Path) -> Result<Vec<DumpedSeries>, ToolError> {
    let tool = "promtool tsdb dump";
    std::fs::create_dir_all(data_dir.join("wal")).map_err(|source| ToolError::Spawn { tool, source })?;
    let out = std::process::Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(data_dir)
        .output()
        .map_err(|source| ToolError::Spawn { tool, source })?;
    if !out.status.success() {
        return Err(ToolError::Failed {
            tool,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut series: Vec<DumpedSeries> = Vec::new();
    for line in text.lines() {
        let bad = |reason: &str| ToolError::Output {
            tool,
            reason: reason.to_string(),
            output: line.to_string(),
        };
        let (labels, rest) = line.rsplit_once("} ").ok_or_else(|| bad("no label set"))?;
        let (v, t) = rest.split_once(' ').ok_or_else(|| bad("no value and timestamp"))?;
        let labels = parse_dump_labels(labels.strip_prefix('{').ok_or_else(|| bad("no '{'"))?)
            .ok_or_else(|| bad("label set"))?;
        let sample = (
            t.parse().map_err(|_| bad("timestamp"))?,
            v.parse().map_err(|_| bad("value"))?,
        );
        match series.last_mut() {
            Some((l, samples)) if *l == labels => samples.push(sample),
            _ => series.push((labels, vec![sample])),
        }
    }
    Ok(series)
}

/// `name="value", name2="value2"` with Go-quoted values.
fn parse_dump_labels(s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        out.insert(name.trim().to_string(), value);
        rest = after[end + 1..].trim_start_matches(", ");
    }
    Some(out)
}

/// Equal samples: same timestamps, and values with the same bits or both NaN (promtool prints
/// every NaN, staleness markers included, as `NaN`).
pub fn same_samples(a: &[(i64, f64)], b: &[(i64, f64)]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} samples vs {}", a.len(), b.len()));
    }
    for (i, ((ta, va), (tb, vb))) in a.iter().zip(b).enumerate() {
        if ta != tb || !((va.is_nan() && vb.is_nan()) || va.to_bits() == vb.to_bits()) {
            return Err(format!("sample {i}: ({ta}, {va}) vs ({tb}, {vb})"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_labels() {
        let l = parse_dump_labels(r#"__name__="up", job="a \"q\", b""#).unwrap();
        assert_eq!(l["__name__"], "up");
        assert_eq!(l["job"], r#"a "q", b"#);
    }
}
