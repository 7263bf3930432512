//! Prometheus configuration files for the demo, written as YAML text.

#[derive(Clone, Debug)]
pub struct ScrapeJob {
    pub name: String,
    pub targets: Vec<String>,
}

impl ScrapeJob {
    pub fn new(name: &str, targets: Vec<String>) -> Self {
        ScrapeJob {
            name: name.to_string(),
            targets,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PrometheusConfig {
    pub scrape_interval: String,
    pub external_labels: Vec<(&'static str, String)>,
    pub jobs: Vec<ScrapeJob>,
}

/// YAML double-quoted scalar.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl PrometheusConfig {
    pub fn to_yaml(&self) -> String {
        let mut y = String::from("# Written by `hypnos demo`; rewritten on every start.\nglobal:\n");
        y.push_str(&format!("  scrape_interval: {}\n", self.scrape_interval));
        y.push_str(&format!("  evaluation_interval: {}\n", self.scrape_interval));
        y.push_str("  external_labels:\n");
        for (k, v) in &self.external_labels {
            y.push_str(&format!("    {k}: {}\n", quoted(v)));
        }
        y.push_str("scrape_configs:\n");
        for j in &self.jobs {
            y.push_str(&format!(
                "  - job_name: {}\n    static_configs:\n      - targets:\n",
                quoted(&j.name)
            ));
            for t in &j.targets {
                y.push_str(&format!("          - {}\n", quoted(t)));
            }
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_shape() {
        let c = PrometheusConfig {
            scrape_interval: "15s".into(),
            external_labels: vec![("cluster", "ap-south1".into()), ("replica", "0".into())],
            jobs: vec![ScrapeJob::new("demo-app", vec!["127.0.0.1:8080".into()])],
        };
        let y = c.to_yaml();
        assert!(y.contains("  external_labels:\n    cluster: \"ap-south1\"\n    replica: \"0\"\n"));
        assert!(y.contains(
            "  - job_name: \"demo-app\"\n    static_configs:\n      - targets:\n          - \"127.0.0.1:8080\"\n"
        ));
    }
}
