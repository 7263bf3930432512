#![allow(clippy::unwrap_used)]
//! The upstream PromQL conformance suite (testdata/promqltest, vendored unchanged).
//!
//! Every stable-core file must pass in full. Per-file pass/fail counts (stable and
//! experimental) are recorded in crates/promql/CONFORMANCE.md; a second test fails on any
//! difference, so regressions fail and improvements must be recorded. Run with
//! `UPDATE_CONFORMANCE=1` to rewrite the table after an improvement.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const STABLE: &[&str] = &[
    "aggregators",
    "at_modifier",
    "collision",
    "functions",
    "histograms",
    "literals",
    "native_histograms",
    "operators",
    "range_queries",
    "selectors",
    "staleness",
    "subquery",
    "trig_functions",
];

const EXPERIMENTAL: &[&str] = &[
    "duration_expression",
    "extended_vectors",
    "fill-modifier",
    "info",
    "limit",
    "name_label_dropping",
    "start_timestamps",
    "type_and_unit",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vendored() -> PathBuf {
    root().join("testdata/promqltest")
}

#[test]
fn vendored_copy_is_unchanged() {
    let upstream = root().join("../shared/promqltest");
    if !upstream.is_dir() {
        return;
    }
    let mut names: Vec<String> = std::fs::read_dir(&upstream)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut ours: Vec<String> = std::fs::read_dir(vendored())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ours.sort();
    assert_eq!(names, ours, "file lists differ");
    for n in names {
        let a = std::fs::read(upstream.join(&n)).unwrap();
        let b = std::fs::read(vendored().join(&n)).unwrap();
        assert!(a == b, "{n} differs from ../shared/promqltest");
    }
}

fn run(name: &str) -> (usize, usize, Vec<String>) {
    let path = vendored().join(format!("{name}.test"));
    let r = hypnos_promql::promqltest::run_file(&path).unwrap();
    let msgs = r
        .failures
        .iter()
        .map(|f| format!("{name}.test:{}: {}", f.line, f.message))
        .collect();
    (r.passed, r.failures.len(), msgs)
}

fn recorded() -> (String, BTreeMap<String, (usize, usize)>) {
    let md_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("CONFORMANCE.md");
    let md = std::fs::read_to_string(md_path).unwrap();
    let mut map = BTreeMap::new();
    for line in md.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() >= 5
            && let Some(name) = cells[1].strip_suffix(".test")
            && let (Ok(p), Ok(f)) = (cells[2].parse(), cells[3].parse())
        {
            map.insert(name.to_string(), (p, f));
        }
    }
    (md, map)
}

#[test]
fn stable_core_passes_in_full() {
    let mut failures = Vec::new();
    for name in STABLE {
        let (_, _, msgs) = run(name);
        failures.extend(msgs);
    }
    assert!(failures.is_empty(), "stable-core failures:\n{}", failures.join("\n"));
}

#[test]
fn conformance_counts_match_record() {
    let (md, rec) = recorded();
    let mut mismatches = Vec::new();
    let mut table = String::from("| file | passed | failed | kind |\n|---|---|---|---|\n");
    let mut details = Vec::new();
    for (names, kind) in [(STABLE, "stable"), (EXPERIMENTAL, "experimental")] {
        for name in names {
            let (p, f, msgs) = run(name);
            table.push_str(&format!("| {name}.test | {p} | {f} | {kind} |\n"));
            if rec.get(*name) != Some(&(p, f)) {
                mismatches.push(format!(
                    "{name}: recorded {:?}, now passed {p} failed {f}",
                    rec.get(*name)
                ));
                details.extend(msgs);
            }
        }
    }
    if std::env::var_os("UPDATE_CONFORMANCE").is_some() {
        let start = md.find("<!-- table -->").unwrap() + "<!-- table -->\n".len();
        let end = md.find("<!-- /table -->").unwrap();
        let new = format!("{}{}{}", &md[..start], table, &md[end..]);
        std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join("CONFORMANCE.md"), new).unwrap();
        return;
    }
    assert!(
        mismatches.is_empty(),
        "conformance counts differ from CONFORMANCE.md (rerun with UPDATE_CONFORMANCE=1 after an improvement):\n{}\n\nfailures:\n{}",
        mismatches.join("\n"),
        details.join("\n")
    );
}
