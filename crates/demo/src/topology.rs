//! The seed's layout: names, ports, external labels and flags of every process.

use std::path::{Path, PathBuf};

use crate::DemoArgs;
use crate::config::{PrometheusConfig, ScrapeJob};

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

impl Topology {
    /// The seed's topology with what Hypnos implements today: the demo-app and the three
    /// Prometheus servers. Sidecars, the bucket, the store gateway and the querier join as
    /// their subcommands land.
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
            } else {
                jobs.push(ScrapeJob::new("prometheus", vec![addr(p.port)]));
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
        Topology { components, files }
    }

    /// The table printed once everything is up.
    pub fn url_table(&self) -> String {
        let width = self.components.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.components {
            let grpc = c.grpc_addr.as_deref().map(|g| format!("  grpc {g}")).unwrap_or_default();
            out.push_str(&format!("  {:width$}  {:28}{grpc}  {}\n", c.name, c.url(), c.role));
        }
        out
    }
}
