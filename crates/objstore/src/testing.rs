//! Test support shared with other crates' tests: a real S3 server on 127.0.0.1
//! (`moto_server` from PyPI `moto[server]`), and the objstore YAML pointing at it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("starting moto_server (install it with `pip install 'moto[server]'`): {0}")]
    Spawn(std::io::Error),
    #[error("finding a free port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    #[error("moto_server did not answer on 127.0.0.1:{0} within 30s")]
    NotReady(u16),
    #[error("building the HTTP client for moto_server: {0}")]
    Client(String),
    #[error("creating bucket {bucket:?} on moto_server: {message}")]
    CreateBucket { bucket: String, message: String },
}

/// A `moto_server -H 127.0.0.1 -p <free port>` child process, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    tls: bool,
}

impl MotoServer {
    /// Plain HTTP.
    pub async fn start() -> Result<Self, MotoError> {
        Self::start_with(false).await
    }

    /// HTTPS with a self-signed certificate (`moto_server -s`): clients must skip verification.
    pub async fn start_tls() -> Result<Self, MotoError> {
        Self::start_with(true).await
    }

    fn client(&self) -> Result<object_store_reqwest::Client, MotoError> {
        object_store_reqwest::Client::builder()
            .danger_accept_invalid_certs(self.tls)
            .build()
            .map_err(|e| MotoError::Client(e.to_string()))
    }

    async fn start_with(tls: bool) -> Result<Self, MotoError> {
        crate::install_tls_provider();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(MotoError::Port)?
            .port();
        let mut cmd = Command::new("moto_server");
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        if tls {
            cmd.arg("-s");
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(MotoError::Spawn)?;
        let server = MotoServer { child, port, tls };
        let client = server.client()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = client.get(server.url()).send().await
                && resp.status().is_success()
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(MotoError::NotReady(port));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// moto accepts any credentials; buckets are created with a plain `PUT /<bucket>`.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), MotoError> {
        let err = |message: String| MotoError::CreateBucket {
            bucket: bucket.to_string(),
            message,
        };
        let resp = self
            .client()?
            .put(format!("{}{bucket}", self.url()))
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(err(resp.status().to_string()));
        }
        Ok(())
    }

    /// Thanos objstore YAML for `bucket` on this server, shaped like the tutorial's MinIO
    /// config (including `signature_version2`, which is accepted and ignored).
    pub fn objstore_yaml(&self, bucket: &str, prefix: &str) -> String {
        let tls = if self.tls {
            "  insecure: false\n  http_config:\n    insecure_skip_verify: true\n"
        } else {
            "  insecure: true\n"
        };
        format!(
            "type: S3\nprefix: \"{prefix}\"\nconfig:\n  bucket: \"{bucket}\"\n  endpoint: \"127.0.0.1:{port}\"\n  \
             region: \"us-east-1\"\n{tls}  signature_version2: true\n  access_key: \"testing\"\n  \
             secret_key: \"testing\"\n",
            port = self.port
        )
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
