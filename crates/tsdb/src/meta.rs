//! `meta.json`: Prometheus's `BlockMeta` with Thanos's optional `thanos` section.
//! Field names, omission rules and the tab-indented layout follow the Go writers.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const META_FILENAME: &str = "meta.json";
pub const META_VERSION: u32 = 1;

fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    #[serde(rename = "numSamples", default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    #[serde(rename = "numFloatSamples", default, skip_serializing_if = "is_zero")]
    pub num_float_samples: u64,
    #[serde(rename = "numHistogramSamples", default, skip_serializing_if = "is_zero")]
    pub num_histogram_samples: u64,
    #[serde(rename = "numSeries", default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    #[serde(rename = "numChunks", default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    #[serde(rename = "numTombstones", default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDesc {
    pub ulid: String,
    #[serde(rename = "minTime")]
    pub min_time: i64,
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockCompaction {
    pub level: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deletable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub failed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosDownsample {
    pub resolution: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHash {
    #[serde(rename = "hashFunc")]
    pub hash_func: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosFile {
    pub rel_path: String,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub size_bytes: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<ObjectHash>,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStats {
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub series_max_size: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub chunk_max_size: i64,
}

/// Thanos's block metadata (`pkg/block/metadata.Thanos`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThanosMeta {
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub version: u32,
    /// External labels; Go writes `null` for none, which reads back as empty.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub downsample: ThanosDownsample,
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segment_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ThanosFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrites: Vec<serde_json::Value>,
    #[serde(default)]
    pub index_stats: IndexStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_time: Option<String>,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

/// A block's `meta.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub ulid: String,
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// Exclusive.
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    #[serde(default)]
    pub compaction: BlockCompaction,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thanos: Option<ThanosMeta>,
}

impl BlockMeta {
    /// Reads and validates `dir/meta.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILENAME);
        let b = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        Self::from_json(&b, &path)
    }

    pub fn from_json(b: &[u8], path: &Path) -> Result<Self> {
        let m: BlockMeta = serde_json::from_slice(b).map_err(|e| Error::Meta {
            path: path.to_path_buf(),
            source: e,
        })?;
        if m.version != META_VERSION {
            return Err(Error::Invalid(format!(
                "{}: unsupported meta.json version {}, want {META_VERSION}",
                path.display(),
                m.version
            )));
        }
        if m.ulid.parse::<ulid::Ulid>().is_err() {
            return Err(Error::Invalid(format!("{}: invalid ULID {:?}", path.display(), m.ulid)));
        }
        Ok(m)
    }

    /// Go's `json.MarshalIndent(meta, "", "\t")`.
    pub fn to_json(&self) -> Result<String> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.serialize(&mut ser)
            .map_err(|e| Error::Invalid(format!("encoding meta.json: {e}")))?;
        String::from_utf8(out).map_err(|e| Error::Invalid(format!("encoding meta.json: {e}")))
    }

    /// Writes `dir/meta.json` through a temporary file, fsync and rename.
    pub fn write(&self, dir: &Path) -> Result<u64> {
        let json = self.to_json()?;
        let tmp = dir.join(format!("{META_FILENAME}.tmp"));
        let path = dir.join(META_FILENAME);
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(json.as_bytes()).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(json.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_meta_round_trips_byte_for_byte() {
        let s = "{\n\t\"ulid\": \"01M8BSPBVZXC2AYM5GBC2PM8YR\",\n\t\"minTime\": 1700000000000,\n\t\"maxTime\": 1700000075001,\n\t\"stats\": {\n\t\t\"numSamples\": 7,\n\t\t\"numSeries\": 2,\n\t\t\"numChunks\": 2\n\t},\n\t\"compaction\": {\n\t\t\"level\": 1,\n\t\t\"sources\": [\n\t\t\t\"01M8BSPBVZXC2AYM5GBC2PM8YR\"\n\t\t]\n\t},\n\t\"version\": 1\n}";
        let m = BlockMeta::from_json(s.as_bytes(), Path::new("meta.json")).unwrap();
        assert_eq!(m.stats.num_samples, 7);
        assert_eq!(m.to_json().unwrap(), s);
    }

    #[test]
    fn thanos_section() {
        let s = r#"{"ulid":"01M8BSPBVZXC2AYM5GBC2PM8YR","minTime":0,"maxTime":1,"stats":{},"compaction":{"level":1},"version":1,
          "thanos":{"labels":null,"downsample":{"resolution":300000},"source":"sidecar","segment_files":["000001"],
          "files":[{"rel_path":"chunks/000001","size_bytes":10},{"rel_path":"meta.json"}],"index_stats":{"series_max_size":5}}}"#;
        let m = BlockMeta::from_json(s.as_bytes(), Path::new("meta.json")).unwrap();
        let t = m.thanos.as_ref().unwrap();
        assert!(t.labels.is_empty());
        assert_eq!(t.downsample.resolution, 300_000);
        assert_eq!(t.files[0].size_bytes, 10);
        assert_eq!(t.index_stats.series_max_size, 5);
        let back = BlockMeta::from_json(m.to_json().unwrap().as_bytes(), Path::new("x")).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn wrong_version_is_rejected() {
        let s = r#"{"ulid":"01M8BSPBVZXC2AYM5GBC2PM8YR","minTime":0,"maxTime":1,"version":2}"#;
        assert!(BlockMeta::from_json(s.as_bytes(), Path::new("meta.json")).is_err());
    }
}
