//! Block reader/writer behaviour: matcher semantics, tombstones, out-of-order samples,
//! the Thanos meta section, ranged-read pieces.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use hypnos_model::{Labels, MatchOp, Matcher, SampleValue};
use hypnos_tsdb::meta::ThanosMeta;
use hypnos_tsdb::{BlockReader, BlockWriter, BlockWriterOptions, Error, Tombstones};

fn series() -> Vec<Labels> {
    vec![
        Labels::from_pairs([("__name__", "up"), ("job", "a"), ("env", "prod")]),
        Labels::from_pairs([("__name__", "up"), ("job", "b")]),
        Labels::from_pairs([("__name__", "up"), ("job", "c"), ("env", "dev")]),
        Labels::from_pairs([("__name__", "down"), ("job", "a")]),
    ]
}

fn write(dir: &Path, thanos: Option<ThanosMeta>) -> PathBuf {
    let mut w = BlockWriter::new(BlockWriterOptions {
        thanos,
        ..Default::default()
    });
    // Series in any order, interleaved.
    for t in 0..100 {
        for l in series().iter().rev() {
            w.append(l, 1000 + t * 1000, &SampleValue::Float(t as f64)).unwrap();
        }
    }
    let m = w.flush(dir).unwrap().unwrap();
    assert_eq!((m.min_time, m.max_time), (1000, 100_001));
    dir.join(m.ulid)
}

fn names(b: &BlockReader, ms: &[Matcher]) -> Vec<String> {
    b.select(ms, i64::MIN, i64::MAX)
        .unwrap()
        .map(|s| s.unwrap().labels.to_string())
        .collect()
}

#[test]
fn matchers_follow_prometheus_semantics() {
    let tmp = tempfile::tempdir().unwrap();
    let b = BlockReader::open(&write(tmp.path(), None)).unwrap();
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
    assert_eq!(
        names(&b, &[Matcher::equal("job", "a")]),
        vec![r#"down{job="a"}"#, r#"up{env="prod", job="a"}"#]
    );
    // env!="prod" also selects series without env.
    assert_eq!(
        names(
            &b,
            &[Matcher::equal("__name__", "up"), m(MatchOp::NotEqual, "env", "prod")]
        ),
        vec![r#"up{env="dev", job="c"}"#, r#"up{job="b"}"#]
    );
    // env="" selects series without env.
    assert_eq!(
        names(&b, &[Matcher::equal("env", "")]),
        vec![r#"down{job="a"}"#, r#"up{job="b"}"#]
    );
    // env!="" selects series with env.
    assert_eq!(names(&b, &[m(MatchOp::NotEqual, "env", "")]).len(), 2);
    assert_eq!(names(&b, &[m(MatchOp::RegexMatch, "job", "a|c")]).len(), 3);
    assert_eq!(names(&b, &[m(MatchOp::RegexMatch, "env", ".*")]).len(), 4);
    assert_eq!(names(&b, &[m(MatchOp::RegexMatch, "env", ".+")]).len(), 2);
    assert_eq!(
        names(
            &b,
            &[m(MatchOp::RegexNoMatch, "job", "a|b"), Matcher::equal("__name__", "up")]
        )
        .len(),
        1
    );
    assert!(names(&b, &[Matcher::equal("job", "zzz")]).is_empty());
    assert_eq!(b.index().label_names(), vec!["__name__", "env", "job"]);
    assert_eq!(b.index().label_values("job"), vec!["a", "b", "c"]);
    // Time range: outside the block selects nothing, partial overlap restricts samples.
    assert!(b.select(&[], 200_000, 300_000).unwrap().next().is_none());
    let s = b
        .select(&[Matcher::equal("job", "b")], 5000, 7000)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let ts: Vec<i64> = b.samples(&s, 5000, 7000).map(|x| x.unwrap().0).collect();
    assert_eq!(ts, vec![5000, 6000, 7000]);
}

#[test]
fn tombstones_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write(tmp.path(), None);
    let b = BlockReader::open(&dir).unwrap();
    let s = b
        .select(&[Matcher::equal("job", "b")], i64::MIN, i64::MAX)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut t = Tombstones::default();
    t.add(s.series_ref, 2000, 50_000);
    t.write(&dir).unwrap();
    let b = BlockReader::open(&dir).unwrap();
    let s = b
        .select(&[Matcher::equal("job", "b")], i64::MIN, i64::MAX)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let ts: Vec<i64> = b.samples(&s, i64::MIN, i64::MAX).map(|x| x.unwrap().0).collect();
    assert_eq!(ts.len(), 100 - 49);
    assert!(ts.iter().all(|t| !(2000..=50_000).contains(t)));
}

#[test]
fn out_of_order_samples_are_refused_with_a_clear_error() {
    let mut w = BlockWriter::new(BlockWriterOptions::default());
    let l = Labels::from_pairs([("__name__", "x")]);
    w.append(&l, 10, &SampleValue::Float(1.0)).unwrap();
    let e = w.append(&l, 5, &SampleValue::Float(1.0)).unwrap_err();
    assert!(matches!(e, Error::OutOfOrder { t: 5, last: 10, .. }));
    assert!(
        e.to_string().contains("x") && e.to_string().contains("out-of-order"),
        "{e}"
    );
}

#[test]
fn thanos_meta_is_filled_in() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = ThanosMeta {
        source: "test".into(),
        ..Default::default()
    };
    t.labels.insert("replica".into(), "a".into());
    let dir = write(tmp.path(), Some(t));
    let b = BlockReader::open(&dir).unwrap();
    let t = b.meta().thanos.as_ref().unwrap();
    assert_eq!(t.segment_files, vec!["000001"]);
    let rels: Vec<&str> = t.files.iter().map(|f| f.rel_path.as_str()).collect();
    assert_eq!(rels, vec!["chunks/000001", "index", "meta.json"]);
    assert_eq!(
        t.files[1].size_bytes as u64,
        std::fs::metadata(dir.join("index")).unwrap().len()
    );
    assert!(t.index_stats.series_max_size > 0 && t.index_stats.chunk_max_size > 0);
}

#[test]
fn ranged_read_pieces_agree_with_the_reader() {
    use hypnos_tsdb::index::{
        parse_postings, parse_postings_offset_table, parse_series_entry, parse_symbols, parse_toc,
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = write(tmp.path(), None);
    let idx = std::fs::read(dir.join("index")).unwrap();
    let n = idx.len();
    let toc = parse_toc(&idx[n - 52..], (n - 52) as u64).unwrap();
    let syms = parse_symbols(&idx[toc.symbols as usize..], toc.symbols).unwrap();
    let table = parse_postings_offset_table(&idx[toc.postings_table as usize..], toc.postings_table).unwrap();
    assert_eq!((table[0].name.as_str(), table[0].value.as_str()), ("", ""));
    let all = parse_postings(&idx[table[0].offset as usize..], table[0].offset).unwrap();
    assert_eq!(all.len(), 4);
    let b = BlockReader::open(&dir).unwrap();
    let chunks = std::fs::read(dir.join("chunks/000001")).unwrap();
    for r in all {
        let e = parse_series_entry(&idx[r as usize * 16..], u64::from(r) * 16).unwrap();
        let (labels, metas) = b.index().series(r).unwrap();
        assert_eq!(labels.len(), e.label_refs.len());
        assert_eq!(syms[e.label_refs[0].0 as usize], labels.as_slice()[0].name);
        assert_eq!(metas, e.chunks);
        for m in metas {
            let off = m.chunk_ref.offset() as usize;
            let (c, _) = hypnos_tsdb::chunks::parse_chunk_record(&chunks[off..], off as u64).unwrap();
            assert_eq!(c.data, b.chunk(&m).unwrap().data);
        }
    }
}
