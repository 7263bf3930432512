//! The seed's layout: names, ports, external labels and flags of every process.

use std::path::{Path, PathBuf};

use crate::DemoArgs;
use crate::config::{PrometheusConfig, ScrapeJob};
use crate::history::HistoryTargets;

/// One process of the topology.
#[derive(Clone, Debug)]
pub struct Component {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// host:port of its HTTP endpoint.
    pub http_addr: String,
    /// Path answering 200 once the component is ready.
    pub ready_path: &'static str,
    /// What the URL table says the component is for.
    pub role: &'static str,
    /// host:port of its gRPC StoreAPI, if it has one.
    pub grpc_addr: Option<String>,
}

impl Component {
    pub fn url(&self) -> String {
        format!("http://{}", self.http_addr)
    }
}

/// Every process, in start order, and the configuration files they need.
#[derive(Clone, Debug)]
pub struct Topology {
    pub components: Vec<Component>,
    pub files: Vec<(PathBuf, String)>,
    /// Directories that must exist before start (the FILESYSTEM bucket).
    pub dirs: Vec<PathBuf>,
    /// The objstore configuration the sidecar and the store gateway use.
    pub objstore_config: PathBuf,
}

struct PromSpec {
    name: &'static str,
    port: u16,
    cluster: &'static str,
    replica: &'static str,
    data: &'static str,
    /// The HA pair cuts 2h blocks (min = max) so the sidecar can ship them uncompacted.
    ha: bool,
}

const PROMETHEUS: [PromSpec; 3] = [
    PromSpec {
        name: "prometheus-0-apsouth1",
        port: 9090,
        cluster: "ap-south1",
        replica: "0",
        data: "prom1",
        ha: true,
    },
    PromSpec {
        name: "prometheus-1-apsouth1",
        port: 9091,
        cluster: "ap-south1",
        replica: "1",
        data: "prom10",
        ha: true,
    },
    PromSpec {
        name: "prometheus-0-apsouth2",
        port: 9092,
        cluster: "ap-south2",
        replica: "0",
        data: "prom2",
        ha: false,
    },
];

const DEMO_APP_PORT: u16 = 8080;
const QUERIER_HTTP_PORT: u16 = 29090;
const QUERIER_GRPC_PORT: u16 = 29190;

impl Topology {
    /// The seed's topology: the demo-app, the three Prometheus servers, a sidecar for each
    /// (the first uploading to the bucket), the store gateway and the querier.
    pub fn seed(args: &DemoArgs, hypnos_exe: &Path) -> Topology {
        let host = args.listen_host.as_str();
        let addr = |port: u16| format!("{host}:{}", port + args.port_offset);
        let data_dir = &args.data_dir;
        let mut components = Vec::new();
        let mut files = Vec::new();

        let app = Component {
            name: "demo-app".into(),
            program: hypnos_exe.to_path_buf(),
            args: vec![
                "demo-app".into(),
                format!("--listen-address={}", addr(DEMO_APP_PORT)),
                format!("--self-load={}", args.self_load),
            ],
            http_addr: addr(DEMO_APP_PORT),
            ready_path: "/-/healthy",
            role: "instrumented service (POST / with {\"prod\": 69420})",
            grpc_addr: None,
        };

        let ha_targets: Vec<String> = PROMETHEUS.iter().filter(|p| p.ha).map(|p| addr(p.port)).collect();
        for p in &PROMETHEUS {
            let mut jobs = Vec::new();
            if p.ha {
                jobs.push(ScrapeJob::new("demo-app", vec![app.http_addr.clone()]));
                jobs.push(ScrapeJob::new("prometheus", ha_targets.clone()));
                jobs.push(ScrapeJob::new("sidecar", vec![addr(19091), addr(19092)]));
                jobs.push(ScrapeJob::new("store", vec![addr(19094)]));
                jobs.push(ScrapeJob::new("query", vec![addr(QUERIER_HTTP_PORT)]));
            } else {
                jobs.push(ScrapeJob::new("prometheus", vec![addr(p.port)]));
                jobs.push(ScrapeJob::new("sidecar", vec![addr(19090)]));
            }
            let cfg = PrometheusConfig {
                scrape_interval: args.scrape_interval.clone(),
                external_labels: vec![("cluster", p.cluster.to_string()), ("replica", p.replica.to_string())],
                jobs,
            };
            let cfg_path = data_dir.join("config").join(format!("{}.yml", p.name));
            files.push((cfg_path.clone(), cfg.to_yaml()));
            let mut pargs = vec![
                format!("--config.file={}", cfg_path.display()),
                format!("--storage.tsdb.path={}", data_dir.join("data").join(p.data).display()),
                format!("--web.listen-address={}", addr(p.port)),
                "--enable-feature=native-histograms".into(),
                "--web.enable-admin-api".into(),
                "--web.enable-lifecycle".into(),
            ];
            if p.ha {
                pargs.extend([
                    "--storage.tsdb.min-block-duration=2h".into(),
                    "--storage.tsdb.max-block-duration=2h".into(),
                    "--storage.tsdb.retention.time=10d".into(),
                ]);
            }
            components.push(Component {
                name: p.name.into(),
                program: PathBuf::from(&args.prometheus_binary),
                args: pargs,
                http_addr: addr(p.port),
                ready_path: "/-/ready",
                role: if p.ha {
                    "Prometheus, HA pair (cluster=ap-south1)"
                } else {
                    "Prometheus, short-term (cluster=ap-south2)"
                },
                grpc_addr: None,
            });
        }
        components.insert(0, app);
        let mut topology = Topology {
            components,
            files,
            dirs: Vec::new(),
            objstore_config: PathBuf::new(),
        };
        topology.add_thanos_components(args, hypnos_exe, &addr);
        topology
    }

    /// The sidecars, the bucket, the store gateway and the querier of the seed's layout.
    fn add_thanos_components(&mut self, args: &DemoArgs, hypnos_exe: &Path, addr: &dyn Fn(u16) -> String) {
        let data_dir = &args.data_dir;
        let objstore = match &args.objstore_config_file {
            Some(p) => p.clone(),
            None => {
                let path = data_dir.join("config").join("bucket.yml");
                let bucket_dir = data_dir.join("bucket");
                self.files.push((
                    path.clone(),
                    format!("type: FILESYSTEM\nconfig:\n  directory: \"{}\"\n", bucket_dir.display()),
                ));
                self.dirs.push(bucket_dir);
                path
            }
        };
        self.objstore_config = objstore.clone();
        let hypnos = |name: &str, role: &'static str, http: u16, grpc: u16, args: Vec<String>| Component {
            name: name.into(),
            program: hypnos_exe.to_path_buf(),
            args,
            http_addr: addr(http),
            ready_path: "/-/ready",
            role,
            grpc_addr: Some(addr(grpc)),
        };
        let sidecars = [
            ("sidecar-0", 19091, 19191, &PROMETHEUS[0], true),
            ("sidecar-1", 19092, 19192, &PROMETHEUS[1], false),
            ("sidecar-2", 19090, 19190, &PROMETHEUS[2], false),
        ];
        let mut endpoints = Vec::new();
        for (name, http, grpc, prom, upload) in sidecars {
            let mut a = vec![
                "sidecar".to_string(),
                format!("--prometheus.url=http://{}", addr(prom.port)),
                format!("--tsdb.path={}", data_dir.join("data").join(prom.data).display()),
                format!("--http-address={}", addr(http)),
                format!("--grpc-address={}", addr(grpc)),
                format!(
                    "--reloader.config-file={}",
                    data_dir.join("config").join(format!("{}.yml", prom.name)).display()
                ),
            ];
            if upload {
                a.push(format!("--objstore.config-file={}", objstore.display()));
                a.push("--shipper.upload-compacted".into());
            }
            let role = if upload {
                "sidecar: StoreAPI + uploads blocks to the bucket"
            } else {
                "sidecar: StoreAPI"
            };
            endpoints.push(addr(grpc));
            self.components.push(hypnos(name, role, http, grpc, a));
        }
        self.components.push(hypnos(
            "store",
            "store gateway over the bucket",
            19094,
            19194,
            vec![
                "store".into(),
                format!("--objstore.config-file={}", objstore.display()),
                format!("--data-dir={}", data_dir.join("store").display()),
                format!("--http-address={}", addr(19094)),
                format!("--grpc-address={}", addr(19194)),
                "--sync-block-duration=1m".into(),
            ],
        ));
        endpoints.push(addr(19194));
        let mut q = vec![
            "query".to_string(),
            format!("--http-address={}", addr(QUERIER_HTTP_PORT)),
            format!("--grpc-address={}", addr(QUERIER_GRPC_PORT)),
            "--query.replica-label=replica".into(),
        ];
        q.extend(endpoints.iter().map(|e| format!("--endpoint={e}")));
        self.components.push(hypnos(
            "query",
            "querier: PromQL over everything, deduplicated (open in a browser)",
            QUERIER_HTTP_PORT,
            QUERIER_GRPC_PORT,
            q,
        ));
    }

    /// Where `--with-history` writes: the HA pair's and the short-term server's data
    /// directories and the bucket.
    pub fn history_targets(&self, args: &DemoArgs) -> HistoryTargets {
        let data = |p: &PromSpec| args.data_dir.join("data").join(p.data);
        HistoryTargets {
            ha_pair: [data(&PROMETHEUS[0]), data(&PROMETHEUS[1])],
            short_term: data(&PROMETHEUS[2]),
            objstore_config: self.objstore_config.clone(),
        }
    }

    /// The component users should query: the querier.
    pub fn entry_point(&self) -> Option<&Component> {
        self.components.iter().find(|c| c.name == "query")
    }

    /// The table printed once everything is up.
    pub fn url_table(&self) -> String {
        let width = self.components.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.components {
            let grpc = c
                .grpc_addr
                .as_deref()
                .map(|g| format!("  grpc {g}"))
                .unwrap_or_default();
            out.push_str(&format!("  {:width$}  {:28}{grpc}  {}\n", c.name, c.url(), c.role));
        }
        out
    }
}
