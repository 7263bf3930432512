//! S3 buckets against a real S3 server on 127.0.0.1: `moto_server` (PyPI `moto[server]`),
//! started by the test. A missing `moto_server` fails the test; it is never skipped.
// Setup helpers outside #[test] fns panic on failure too.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hypnos_objstore::{install_tls_provider, load_bucket};

/// Kills the server when the test ends, pass or fail.
struct MotoServer {
    child: Child,
    port: u16,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_moto() -> MotoServer {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting moto_server (pip install 'moto[server]'): {e}"));
    let server = MotoServer { child, port };
    install_tls_provider();
    let client = object_store_reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(resp) = client.get(format!("http://127.0.0.1:{port}/")).send().await
            && resp.status().is_success()
        {
            return server;
        }
        assert!(Instant::now() < deadline, "moto_server did not come up on port {port}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create_bucket(port: u16, name: &str) {
    let resp = object_store_reqwest::Client::new()
        .put(format!("http://127.0.0.1:{port}/{name}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "creating bucket {name}: {}", resp.status());
}

fn s3_yaml(port: u16, bucket: &str, prefix: &str) -> String {
    // The tutorial's MinIO config shape, including fields object_store cannot honour.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_acceptance_on_moto() {
    let moto = start_moto().await;
    create_bucket(moto.port, "thanos").await;
    let bkt = load_bucket(None, Some(&s3_yaml(moto.port, "thanos", ""))).unwrap();
    assert_eq!(bkt.name(), "s3://thanos");
    common::acceptance(bkt.as_ref()).await;

    // With a prefix, keys live under it in the same bucket.
    let prefixed = load_bucket(None, Some(&s3_yaml(moto.port, "thanos", "tenant-a"))).unwrap();
    prefixed.put("blk/meta.json", "{}".into()).await.unwrap();
    assert!(bkt.exists("tenant-a/blk/meta.json").await.unwrap());
    assert_eq!(prefixed.iter("", false).await.unwrap(), ["blk/"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_missing_bucket_is_a_clear_error() {
    let moto = start_moto().await;
    let bkt = load_bucket(None, Some(&s3_yaml(moto.port, "no-such-bucket", ""))).unwrap();
    let err = bkt.put("a", "x".into()).await.unwrap_err();
    let msg = err.to_string();
    assert!(!err.is_not_found(), "a missing bucket is not a missing object: {msg}");
    assert!(
        msg.contains("s3://no-such-bucket") && msg.contains("NoSuchBucket"),
        "{msg}"
    );
    eprintln!("{msg}");
}
