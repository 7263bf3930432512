//! S3 buckets against a real S3 server on 127.0.0.1: `moto_server` (PyPI `moto[server]`),
//! started by the test. A missing `moto_server` fails the test; it is never skipped.
// Setup helpers outside #[test] fns panic on failure too.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use hypnos_objstore::blocks::{delete_block, list_blocks, upload_block};
use hypnos_objstore::load_bucket;
use hypnos_objstore::testing::MotoServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// A TCP proxy in front of moto whose first `failures` connections get `503 Slow Down`.
async fn flaky_proxy(target: u16, failures: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served_errors = Arc::new(AtomicUsize::new(0));
    let counter = served_errors.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            if counter.fetch_add(1, Ordering::SeqCst) < failures {
                let mut buf = vec![0u8; 64 << 10];
                let _ = client.read(&mut buf).await;
                let _ = client
                    .write_all(b"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                continue;
            }
            counter.fetch_sub(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target)).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (port, served_errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_retries_server_errors() {
    let moto = MotoServer::start().await.unwrap();
    moto.create_bucket("retry").await.unwrap();
    let direct = load_bucket(None, Some(&s3_yaml(moto.port(), "retry", ""))).unwrap();
    direct.put("obj", Bytes::from_static(b"payload")).await.unwrap();

    // Two 503s, then the real server: max_retries 3 gets through.
    let (port, errors) = flaky_proxy(moto.port(), 2).await;
    let flaky = load_bucket(None, Some(&s3_yaml(port, "retry", ""))).unwrap();
    assert_eq!(&flaky.get("obj").await.unwrap()[..], b"payload");
    assert_eq!(errors.load(Ordering::SeqCst), 2, "both 503s were served and retried");

    // More failures than retries: the error names the status.
    let (port, _) = flaky_proxy(moto.port(), 10).await;
    let yaml = s3_yaml(port, "retry", "").replace("max_retries: 3", "max_retries: 1");
    let flaky = load_bucket(None, Some(&yaml)).unwrap();
    let err = flaky.get("obj").await.unwrap_err();
    assert!(format!("{err:?}").contains("503"), "{err:?}");
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
