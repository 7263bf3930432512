//! `type: S3` through `object_store`'s Amazon S3 client.
//!
//! Mapping of Thanos's fields:
//! - `endpoint` is `host[:port]` without scheme; `insecure: true` means plain HTTP.
//! - `bucket_lookup_type: auto` uses virtual-hosted style for AWS endpoints and path style
//!   elsewhere (what minio-go does for MinIO, Ceph, moto and friends).
//! - No `access_key`: credentials come from the environment (`AWS_ACCESS_KEY_ID`, web
//!   identity, instance metadata), like Thanos's default chain minus `~/.aws/credentials`.
//! - `max_retries` > 0 replaces the default of 10 retries (exponential backoff with jitter,
//!   5xx, connection errors and timeouts on idempotent requests).
//! - `signature_version2`, `put_user_metadata`, `trace`, `send_content_md5`, `sts_endpoint`,
//!   `list_objects_version: v1`, `disable_dualstack` and most of `http_config` are accepted and
//!   ignored with a log line: requests are always signed with V4 and listed with ListObjectsV2.

use std::sync::{Arc, Once};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use crate::bucket::ObjectStoreBucket;
use crate::config::{ConfigError, S3Config};

const DEFAULT_MAX_RETRIES: usize = 10;
const DEFAULT_REGION: &str = "us-east-1";
/// Like `response_header_timeout` in Thanos's HTTP config: a stalled read fails after this,
/// while a large object may take as long as it needs overall.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn open(cfg: &S3Config, prefix: &str) -> Result<ObjectStoreBucket, ConfigError> {
    install_tls_provider();
    log_ignored_fields(cfg);

    let host = cfg
        .endpoint
        .split_once("://")
        .map_or(cfg.endpoint.as_str(), |(_, h)| h)
        .trim_end_matches('/');
    let scheme = if cfg.insecure { "http" } else { "https" };
    let aws = is_aws_host(host);
    let virtual_hosted = match cfg.bucket_lookup_type.as_str() {
        "virtual-hosted" => true,
        "path" => false,
        _ => aws,
    };
    let endpoint = if virtual_hosted {
        format!("{scheme}://{}.{host}", cfg.bucket)
    } else {
        format!("{scheme}://{host}")
    };
    let region = if !cfg.region.is_empty() {
        cfg.region.clone()
    } else {
        region_from_aws_host(host).unwrap_or(DEFAULT_REGION).to_string()
    };

    let mut client = ClientOptions::new()
        .with_allow_http(cfg.insecure)
        .with_timeout_disabled()
        .with_read_timeout(READ_TIMEOUT);
    if cfg.http_config.insecure_skip_verify || cfg.http_config.tls_config.insecure_skip_verify {
        client = client.with_allow_invalid_certificates(true);
    }
    let retry = RetryConfig {
        max_retries: usize::try_from(cfg.max_retries)
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_RETRIES),
        ..RetryConfig::default()
    };

    let mut builder = if cfg.access_key.is_empty() {
        AmazonS3Builder::from_env()
    } else {
        let b = AmazonS3Builder::new()
            .with_access_key_id(&cfg.access_key)
            .with_secret_access_key(&cfg.secret_key);
        if cfg.session_token.is_empty() {
            b
        } else {
            b.with_token(&cfg.session_token)
        }
    };
    builder = builder
        .with_bucket_name(&cfg.bucket)
        .with_region(region)
        .with_endpoint(endpoint)
        .with_virtual_hosted_style_request(virtual_hosted)
        .with_client_options(client)
        .with_retry(retry);
    match cfg.sse_config.kind.as_str() {
        "SSE-KMS" => builder = builder.with_sse_kms_encryption(&cfg.sse_config.kms_key_id),
        "SSE-C" => {
            return Err(ConfigError::Invalid {
                kind: "S3",
                message: "sse_config.type SSE-C is not supported by hypnos".into(),
            });
        }
        _ => {}
    }
    let s3 = builder.build().map_err(|source| ConfigError::Build {
        kind: "S3",
        source: Box::new(source),
    })?;

    let (store, name): (Arc<dyn ObjectStore>, String) = if prefix.is_empty() {
        (Arc::new(s3), format!("s3://{}", cfg.bucket))
    } else {
        (
            Arc::new(PrefixStore::new(s3, prefix)),
            format!("s3://{}/{prefix}", cfg.bucket),
        )
    };
    let part_size = usize::try_from(cfg.part_size).unwrap_or(usize::MAX);
    Ok(ObjectStoreBucket::new(name, store).with_upload_parts(part_size, !cfg.disable_multipart))
}

/// Installs ring as the process-wide rustls crypto provider (once; a provider installed
/// before wins). reqwest 0.13 is built with `rustls-no-provider` (to avoid compiling aws-lc-rs
/// next to ring), and **any** reqwest 0.13 client in the process panics on construction unless
/// a provider is installed, so binaries call this at start-up; opening an S3 bucket calls it too.
pub fn install_tls_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // An error means another provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn is_aws_host(host: &str) -> bool {
    let h = host.split(':').next().unwrap_or(host);
    h == "s3.amazonaws.com" || (h.starts_with("s3") && h.ends_with(".amazonaws.com"))
}

/// `s3.eu-west-1.amazonaws.com` / `s3-eu-west-1.amazonaws.com` → `eu-west-1`.
fn region_from_aws_host(host: &str) -> Option<&str> {
    let h = host.split(':').next()?;
    let rest = h.strip_suffix(".amazonaws.com")?;
    let region = rest
        .strip_prefix("s3.")
        .or_else(|| rest.strip_prefix("s3-"))?
        .trim_start_matches("dualstack.");
    (!region.is_empty() && !region.contains('.')).then_some(region)
}

fn log_ignored_fields(cfg: &S3Config) {
    let ignored = [
        ("signature_version2", cfg.signature_version2),
        ("put_user_metadata", !cfg.put_user_metadata.is_empty()),
        ("trace.enable", cfg.trace.enable),
        ("sts_endpoint", !cfg.sts_endpoint.is_empty()),
        ("list_objects_version", cfg.list_objects_version == "v1"),
        ("disable_dualstack", cfg.disable_dualstack),
        ("aws_sdk_auth", cfg.aws_sdk_auth),
        ("http_config.tls_config (certificates)", {
            let t = &cfg.http_config.tls_config;
            !(t.ca_file.is_empty() && t.cert_file.is_empty() && t.key_file.is_empty() && t.server_name.is_empty())
        }),
        (
            "sse_config.type SSE-S3 (bucket default encryption applies)",
            cfg.sse_config.kind == "SSE-S3",
        ),
    ];
    for (field, set) in ignored {
        if set {
            tracing::info!(
                field,
                "objstore config (type S3): field accepted but not supported; ignoring it"
            );
        }
    }
    if cfg.signature_version2 {
        tracing::info!("objstore config (type S3): requests are signed with AWS Signature V4, not V2");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_hosts_and_regions() {
        assert!(is_aws_host("s3.amazonaws.com"));
        assert!(is_aws_host("s3.eu-west-1.amazonaws.com"));
        assert!(!is_aws_host("127.0.0.1:9000"));
        assert!(!is_aws_host("minio.local"));
        assert_eq!(region_from_aws_host("s3.eu-west-1.amazonaws.com"), Some("eu-west-1"));
        assert_eq!(region_from_aws_host("s3-us-west-2.amazonaws.com"), Some("us-west-2"));
        assert_eq!(region_from_aws_host("s3.amazonaws.com"), None);
        assert_eq!(region_from_aws_host("127.0.0.1:9000"), None);
    }
}
