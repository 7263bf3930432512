//! Object storage for Hypnos: a [`Bucket`] trait with Thanos's objstore semantics, implemented
//! over the `object_store` crate, and configured from Thanos's objstore YAML
//! (`--objstore.config-file` / `--objstore.config`).
//!
//! ```yaml
//! type: S3            # or FILESYSTEM; case-insensitive like Thanos
//! prefix: some/dir    # optional: every key lives under it
//! config:
//!   bucket: thanos
//!   endpoint: 127.0.0.1:9000
//!   insecure: true
//!   access_key: ...
//!   secret_key: ...
//! ```
//!
//! Keys are `/`-separated relative names (`<ULID>/meta.json`). Directories exist only as key
//! prefixes; listings return them with a trailing `/`, as Thanos's `Iter` does.

pub mod blocks;
mod bucket;
pub mod config;
mod error;
mod fs;
mod s3;
pub mod testing;

pub use bucket::{Bucket, ObjectAttributes, ObjectStoreBucket};
pub use config::{
    BucketConfig, ConfigError, FilesystemConfig, ProviderConfig, S3Config, load_bucket, open_bucket, parse_config,
    read_config,
};
pub use error::BucketError;
pub use s3::install_tls_provider;

/// The separator of "directories" inside object keys.
pub const DIR_DELIM: char = '/';
