//! The Prometheus text exposition format 0.0.4, laid out as client_golang writes it.

use std::fmt::Write;

use super::{Family, FamilyKind, format_go_float};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn escape_label_value(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n").replace('"', "\\\"")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n")
}

fn write_sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, String)],
    extra: Option<(&str, &str)>,
    v: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        let mut first = true;
        for (n, val) in labels.iter().map(|(n, v)| (*n, v.as_str())).chain(extra) {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{n}=\"{}\"", escape_label_value(val));
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&format_go_float(v));
    out.push('\n');
}

pub fn encode(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let kind = match f.kind {
            FamilyKind::Counter(_) => "counter",
            FamilyKind::Gauge(_) => "gauge",
            FamilyKind::Classic(_) | FamilyKind::Native(_) => "histogram",
        };
        let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
        let _ = writeln!(out, "# TYPE {} {kind}", f.name);
        match &f.kind {
            FamilyKind::Counter(series) | FamilyKind::Gauge(series) => {
                for (labels, v) in series {
                    write_sample(&mut out, f.name, "", labels, None, *v);
                }
            }
            FamilyKind::Classic(series) => {
                for (labels, h) in series {
                    for (le, c) in h.cumulative() {
                        let le = format_go_float(le);
                        write_sample(&mut out, f.name, "_bucket", labels, Some(("le", &le)), c as f64);
                    }
                    write_sample(
                        &mut out,
                        f.name,
                        "_bucket",
                        labels,
                        Some(("le", "+Inf")),
                        h.count as f64,
                    );
                    write_sample(&mut out, f.name, "_sum", labels, None, h.sum);
                    write_sample(&mut out, f.name, "_count", labels, None, h.count as f64);
                }
            }
            // The text format cannot carry sparse buckets: like client_golang, a native-only
            // histogram shows just its +Inf bucket, sum and count.
            FamilyKind::Native(series) => {
                for (labels, h) in series {
                    write_sample(
                        &mut out,
                        f.name,
                        "_bucket",
                        labels,
                        Some(("le", "+Inf")),
                        h.count as f64,
                    );
                    write_sample(&mut out, f.name, "_sum", labels, None, h.sum);
                    write_sample(&mut out, f.name, "_count", labels, None, h.count as f64);
                }
            }
        }
    }
    out
}
