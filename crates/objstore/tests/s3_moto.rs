//! S3 buckets against a real S3 server on 127.0.0.1: `moto_server` (PyPI `moto[server]`),
//! started by the test. A missing `moto_server` fails the test; it is never skipped.
// Setup helpers outside #[test] fns panic on failure too.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use hypnos_objstore::blocks::{delete_block, list_blocks, upload_block};
use hypnos_objstore::load_bucket;
use hypnos_objstore::testing::MotoServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_acceptance_on_moto() {
    let moto = MotoServer::start().await.unwrap();
    moto.create_bucket("thanos").await.unwrap();
    let bkt = load_bucket(None, Some(&s3_yaml(moto.port(), "thanos", ""))).unwrap();
    assert_eq!(bkt.name(), "s3://thanos");
    common::acceptance(bkt.as_ref()).await;

    // With a prefix, keys live under it in the same bucket.
    let prefixed = load_bucket(None, Some(&s3_yaml(moto.port(), "thanos", "tenant-a"))).unwrap();
    prefixed.put("blk/meta.json", "{}".into()).await.unwrap();
    assert!(bkt.exists("tenant-a/blk/meta.json").await.unwrap());
    assert_eq!(prefixed.iter("", false).await.unwrap(), ["blk/"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_missing_bucket_is_a_clear_error() {
    let moto = MotoServer::start().await.unwrap();
    let bkt = load_bucket(None, Some(&moto.objstore_yaml("no-such-bucket", ""))).unwrap();
    let err = bkt.put("a", "x".into()).await.unwrap_err();
    let msg = err.to_string();
    assert!(!err.is_not_found(), "a missing bucket is not a missing object: {msg}");
    assert!(
        msg.contains("s3://no-such-bucket") && msg.contains("NoSuchBucket"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_block_upload_discovery_delete() {
    let moto = MotoServer::start().await.unwrap();
    moto.create_bucket("blocks").await.unwrap();
    let bkt = load_bucket(None, Some(&moto.objstore_yaml("blocks", ""))).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("01ARZ3NDEKTSV4RRFFQ69G5FAV");
    std::fs::create_dir_all(dir.join("chunks")).unwrap();
    std::fs::write(dir.join("chunks/000001"), b"chunks").unwrap();
    std::fs::write(dir.join("index"), b"index").unwrap();
    let id = upload_block(bkt.as_ref(), &dir, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    bkt.put("01BX5ZZKBKACTAV9WEVGEMMVRZ/index", Bytes::from_static(b"partial"))
        .await
        .unwrap();
    let listing = list_blocks(bkt.as_ref(), 8).await.unwrap();
    assert_eq!(listing.complete, [id]);
    assert_eq!(listing.partial.len(), 1);
    delete_block(bkt.as_ref(), id).await.unwrap();
    assert!(list_blocks(bkt.as_ref(), 8).await.unwrap().complete.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_over_https_with_rustls_ring() {
    let moto = MotoServer::start_tls().await.unwrap();
    moto.create_bucket("tls").await.unwrap();
    let yaml = moto.objstore_yaml("tls", "");
    assert!(yaml.contains("insecure: false"), "{yaml}");
    let bkt = load_bucket(None, Some(&yaml)).unwrap();
    bkt.put("a/b", Bytes::from_static(b"over tls")).await.unwrap();
    assert_eq!(&bkt.get("a/b").await.unwrap()[..], b"over tls");
    assert_eq!(&bkt.get_range("a/b", 5..8).await.unwrap()[..], b"tls");

    // Without skipping verification the self-signed certificate is refused, with a clear error.
    let strict = yaml.replace("insecure_skip_verify: true", "insecure_skip_verify: false") + "  max_retries: 1\n";
    let bkt = load_bucket(None, Some(&strict)).unwrap();
    let err = bkt.get("a/b").await.unwrap_err();
    assert!(!err.is_not_found(), "{err}");
    assert!(format!("{err:?}").contains("InvalidCertificate"), "{err:?}");
}

/// Like [`MotoServer::objstore_yaml`], plus retries and a small part size so that uploads
/// above 5 MiB go up in several parts.
fn s3_yaml(port: u16, bucket: &str, prefix: &str) -> String {
    format!(
        r#"type: S3
prefix: "{prefix}"
config:
  bucket: "{bucket}"
  endpoint: "127.0.0.1:{port}"
  region: "us-east-1"
  insecure: true
  signature_version2: true
  access_key: "testing"
  secret_key: "testing"
  max_retries: 3
  part_size: 5242880
"#
    )
}
