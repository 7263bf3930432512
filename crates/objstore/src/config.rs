//! Thanos's objstore YAML: `type`, `config` and `prefix` at the top level (strict, like Thanos's
//! `yaml.UnmarshalStrict`), then the provider's own fields under `config`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::bucket::Bucket;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("objstore config: both --objstore.config-file and --objstore.config are set; use one")]
    BothSources,
    #[error("objstore config is required: set --objstore.config-file or --objstore.config")]
    Missing,
    #[error("reading objstore config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("objstore config: found reference to unset environment variable {0:?}")]
    UnsetEnv(String),
    #[error("parsing objstore config YAML: {0}")]
    Yaml(String),
    #[error("objstore config: missing `type` (FILESYSTEM or S3)")]
    MissingType,
    #[error("objstore config: bucket type {0:?} is not supported (supported: FILESYSTEM, S3)")]
    UnsupportedType(String),
    #[error("objstore config (type {kind}): missing required field `{field}`")]
    MissingField { kind: &'static str, field: &'static str },
    #[error("objstore config (type {kind}): {message}")]
    Invalid { kind: &'static str, message: String },
    #[error("creating directory {path} for the FILESYSTEM bucket: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating {kind} bucket client: {source}")]
    Build {
        kind: &'static str,
        #[source]
        source: Box<object_store::Error>,
    },
}

/// A parsed objstore configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketConfig {
    pub provider: ProviderConfig,
    /// Key prefix every object lives under (`prefix:` at the top level); empty for none.
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProviderConfig {
    Filesystem(FilesystemConfig),
    S3(Box<S3Config>),
}

/// `type: FILESYSTEM`. Thanos parses this one leniently, so unknown fields only log a warning.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct FilesystemConfig {
    #[serde(default)]
    pub directory: String,
}

/// `type: S3`: every field of Thanos's S3 config is accepted; the ones `object_store` cannot
/// honour are logged when set (see `s3.rs`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub bucket: String,
    pub endpoint: String,
    pub region: String,
    pub disable_dualstack: bool,
    pub aws_sdk_auth: bool,
    pub access_key: String,
    pub insecure: bool,
    pub signature_version2: bool,
    pub secret_key: String,
    pub session_token: String,
    pub put_user_metadata: BTreeMap<String, String>,
    pub http_config: HttpConfig,
    pub trace: TraceConfig,
    pub list_objects_version: String,
    pub bucket_lookup_type: String,
    pub send_content_md5: bool,
    pub disable_multipart: bool,
    pub part_size: u64,
    pub sse_config: SseConfig,
    pub sts_endpoint: String,
    pub max_retries: i64,
}

impl Default for S3Config {
    /// Thanos's `DefaultConfig`.
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            endpoint: String::new(),
            region: String::new(),
            disable_dualstack: false,
            aws_sdk_auth: false,
            access_key: String::new(),
            insecure: false,
            signature_version2: false,
            secret_key: String::new(),
            session_token: String::new(),
            put_user_metadata: BTreeMap::new(),
            http_config: HttpConfig::default(),
            trace: TraceConfig::default(),
            list_objects_version: String::new(),
            bucket_lookup_type: "auto".into(),
            send_content_md5: true,
            disable_multipart: false,
            part_size: 64 << 20,
            sse_config: SseConfig::default(),
            sts_endpoint: String::new(),
            max_retries: 0,
        }
    }
}

/// Thanos's `exthttp.HTTPConfig`. Durations stay strings (Prometheus duration syntax).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub idle_conn_timeout: Option<String>,
    pub response_header_timeout: Option<String>,
    pub insecure_skip_verify: bool,
    pub tls_handshake_timeout: Option<String>,
    pub expect_continue_timeout: Option<String>,
    pub max_idle_conns: Option<i64>,
    pub max_idle_conns_per_host: Option<i64>,
    pub max_conns_per_host: Option<i64>,
    pub tls_config: TlsConfig,
    pub disable_compression: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
    pub server_name: String,
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceConfig {
    pub enable: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SseConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub kms_key_id: String,
    pub kms_encryption_context: BTreeMap<String, String>,
    pub encryption_key: String,
}

/// The top level, strict like Thanos. `config` is kept untyped until `type` is known.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBucketConfig {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    config: serde_json::Value,
    #[serde(default)]
    prefix: Option<String>,
}

/// Thanos's `extflag.PathOrContent` with env substitution: the YAML from
/// `--objstore.config-file` or `--objstore.config` (exactly one, non-empty), with every
/// `$(NAME)` replaced by that environment variable (Kubernetes style; an unset one is an error).
pub fn read_config(file: Option<&Path>, content: Option<&str>) -> Result<String, ConfigError> {
    expand_env(&read_raw_config(file, content)?)
}

fn read_raw_config(file: Option<&Path>, content: Option<&str>) -> Result<String, ConfigError> {
    let content = content.filter(|c| !c.trim().is_empty());
    match (file, content) {
        (Some(_), Some(_)) => Err(ConfigError::BothSources),
        (None, None) => Err(ConfigError::Missing),
        (None, Some(c)) => Ok(c.to_string()),
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                path: path.to_path_buf(),
                source,
            })?;
            if text.trim().is_empty() {
                return Err(ConfigError::Missing);
            }
            Ok(text)
        }
    }
}

/// Replaces `$(NAME)` (NAME of ASCII letters, digits and `_`) with the variable's value.
fn expand_env(text: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with(')') {
            let name = &after[..name_len];
            let value = std::env::var(name).map_err(|_| ConfigError::UnsetEnv(name.to_string()))?;
            out.push_str(&value);
            rest = &after[name_len + 1..];
        } else {
            out.push_str("$(");
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

pub fn parse_config(yaml: &str) -> Result<BucketConfig, ConfigError> {
    let raw: RawBucketConfig = serde_saphyr::from_str(yaml).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    let kind = raw.kind.filter(|k| !k.is_empty()).ok_or(ConfigError::MissingType)?;
    let config = match raw.config {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        v => v,
    };
    let provider = match kind.to_ascii_uppercase().as_str() {
        "FILESYSTEM" => ProviderConfig::Filesystem(parse_filesystem(config)?),
        "S3" => ProviderConfig::S3(Box::new(parse_s3(config)?)),
        _ => return Err(ConfigError::UnsupportedType(kind)),
    };
    Ok(BucketConfig {
        provider,
        prefix: raw.prefix.unwrap_or_default().trim_matches('/').to_string(),
    })
}

fn parse_filesystem(config: serde_json::Value) -> Result<FilesystemConfig, ConfigError> {
    if let serde_json::Value::Object(map) = &config {
        for key in map.keys().filter(|k| k.as_str() != "directory") {
            tracing::warn!(field = %key, "objstore config (type FILESYSTEM): ignoring unknown field");
        }
    }
    let c: FilesystemConfig = serde_json::from_value(config).map_err(|e| ConfigError::Invalid {
        kind: "FILESYSTEM",
        message: e.to_string(),
    })?;
    if c.directory.is_empty() {
        return Err(ConfigError::MissingField {
            kind: "FILESYSTEM",
            field: "directory",
        });
    }
    Ok(c)
}

fn parse_s3(config: serde_json::Value) -> Result<S3Config, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { kind: "S3", message };
    let c: S3Config = serde_json::from_value(config).map_err(|e| invalid(e.to_string()))?;
    // The checks and messages of Thanos's s3.validate, plus a required bucket name.
    if c.bucket.is_empty() {
        return Err(ConfigError::MissingField {
            kind: "S3",
            field: "bucket",
        });
    }
    if c.endpoint.is_empty() {
        return Err(ConfigError::MissingField {
            kind: "S3",
            field: "endpoint",
        });
    }
    if c.aws_sdk_auth && !c.access_key.is_empty() {
        return Err(invalid(
            "aws_sdk_auth and access_key are mutually exclusive configurations".into(),
        ));
    }
    if c.access_key.is_empty() != c.secret_key.is_empty() {
        return Err(invalid(
            "access_key and secret_key must be set together; either both should be present in config or \
             envvars/IAM should be used"
                .into(),
        ));
    }
    match c.bucket_lookup_type.as_str() {
        "auto" | "virtual-hosted" | "path" => {}
        other => return Err(invalid(format!("unsupported bucket lookup type: {other}"))),
    }
    match c.list_objects_version.as_str() {
        "" | "v1" | "v2" => {}
        other => {
            return Err(invalid(format!(
                "unsupported list_objects_version {other:?}; supported values are v1, v2"
            )));
        }
    }
    match c.sse_config.kind.as_str() {
        "" | "SSE-S3" => {}
        "SSE-KMS" if c.sse_config.kms_key_id.is_empty() => {
            return Err(invalid(
                "kms_key_id must be set if sse_config.type is set to 'SSE-KMS'".into(),
            ));
        }
        "SSE-KMS" => {}
        "SSE-C" if c.sse_config.encryption_key.is_empty() => {
            return Err(invalid(
                "encryption_key must be set if sse_config.type is set to 'SSE-C'".into(),
            ));
        }
        "SSE-C" => {}
        other => {
            return Err(invalid(format!(
                "unsupported sse_config.type {other:?}; supported types are SSE-S3, SSE-KMS, SSE-C"
            )));
        }
    }
    Ok(c)
}

/// Opens the bucket a configuration describes.
pub fn open_bucket(cfg: &BucketConfig) -> Result<Arc<dyn Bucket>, ConfigError> {
    match &cfg.provider {
        ProviderConfig::Filesystem(fs) => Ok(Arc::new(crate::fs::open(fs, &cfg.prefix)?)),
        ProviderConfig::S3(s3) => Ok(Arc::new(crate::s3::open(s3, &cfg.prefix)?)),
    }
}

/// Reads, parses and opens: what a component does with its `--objstore.config*` flags.
pub fn load_bucket(file: Option<&Path>, content: Option<&str>) -> Result<Arc<dyn Bucket>, ConfigError> {
    let cfg = parse_config(&read_config(file, content)?)?;
    tracing::info!(provider = cfg.provider.kind(), prefix = %cfg.prefix, "loading bucket configuration");
    open_bucket(&cfg)
}

impl ProviderConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::Filesystem(_) => "FILESYSTEM",
            ProviderConfig::S3(_) => "S3",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem() {
        let c = parse_config("type: FILESYSTEM\nconfig:\n  directory: /data/bucket\n").unwrap();
        assert_eq!(
            c.provider,
            ProviderConfig::Filesystem(FilesystemConfig {
                directory: "/data/bucket".into()
            })
        );
        assert_eq!(c.prefix, "");
        // Case-insensitive type, like Thanos's strings.ToUpper.
        assert!(parse_config("type: filesystem\nconfig: {directory: x}\nprefix: /a/b/\n").is_ok());
        assert_eq!(
            parse_config("type: filesystem\nconfig: {directory: x}\nprefix: /a/b/\n")
                .unwrap()
                .prefix,
            "a/b"
        );
    }

    #[test]
    fn tutorial_s3_config() {
        let yaml = r#"
type: S3
config:
  bucket: "thanos"
  endpoint: "127.0.0.1:9000"
  insecure: true
  signature_version2: true
  access_key: "minio"
  secret_key: "melovethanos"
"#;
        let c = parse_config(yaml).unwrap();
        let ProviderConfig::S3(s3) = c.provider else {
            panic!("want S3")
        };
        assert_eq!(s3.bucket, "thanos");
        assert_eq!(s3.endpoint, "127.0.0.1:9000");
        assert!(s3.insecure && s3.signature_version2);
        assert_eq!(s3.access_key, "minio");
        assert_eq!(s3.part_size, 64 << 20);
        assert!(s3.send_content_md5);
    }

    #[test]
    fn clear_errors() {
        let err = |y: &str| parse_config(y).unwrap_err().to_string();
        assert_eq!(
            err("type: GCS\nconfig: {bucket: x}\n"),
            r#"objstore config: bucket type "GCS" is not supported (supported: FILESYSTEM, S3)"#
        );
        assert_eq!(
            err("type: FILESYSTEM\n"),
            "objstore config (type FILESYSTEM): missing required field `directory`"
        );
        assert_eq!(
            err("type: S3\nconfig: {endpoint: x}\n"),
            "objstore config (type S3): missing required field `bucket`"
        );
        assert_eq!(
            err("type: S3\nconfig: {bucket: x}\n"),
            "objstore config (type S3): missing required field `endpoint`"
        );
        assert!(err("config: {directory: x}\n").contains("missing `type`"));
        let unknown = err("type: S3\nconfig: {bucket: b, endpoint: e, bukket: x}\n");
        assert!(unknown.contains("unknown field `bukket`"), "{unknown}");
        let top = err("type: S3\nconfg: {}\n");
        assert!(top.contains("confg"), "{top}");
        let keys = err("type: S3\nconfig: {bucket: b, endpoint: e, access_key: a}\n");
        assert!(keys.contains("secret_key"), "{keys}");
        assert!(err("type: S3\nconfig: {bucket: b, endpoint: e, bucket_lookup_type: dns}\n").contains("dns"));
        assert!(err("type: [\n").starts_with("parsing objstore config YAML"));
    }

    #[test]
    fn env_substitution() {
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            read_config(None, Some("a: $(PATH)/x $HOME $(not-a-name) $()")).unwrap(),
            format!("a: {path}/x $HOME $(not-a-name) $()")
        );
        let err = read_config(None, Some("secret_key: $(HYPNOS_TEST_SURELY_UNSET_1234)")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"objstore config: found reference to unset environment variable "HYPNOS_TEST_SURELY_UNSET_1234""#
        );
    }

    #[test]
    fn flag_sources() {
        assert!(matches!(read_config(None, None), Err(ConfigError::Missing)));
        assert!(matches!(read_config(None, Some("  ")), Err(ConfigError::Missing)));
        assert!(matches!(
            read_config(Some(Path::new("/x")), Some("type: S3")),
            Err(ConfigError::BothSources)
        ));
        assert_eq!(read_config(None, Some("type: S3")).unwrap(), "type: S3");
        let err = read_config(Some(Path::new("/nonexistent/objstore.yml")), None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/objstore.yml"), "{err}");
    }
}
