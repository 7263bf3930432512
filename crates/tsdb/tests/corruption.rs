//! Corrupt blocks: truncated files, flipped bits, wrong CRCs, bad magic and absurd
//! lengths must give an error naming the file (and offset), never a panic; and the fuzz
//! entry points must survive random bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use hypnos_model::{Labels, SampleValue};
use hypnos_tsdb::{BlockReader, BlockWriter, BlockWriterOptions, Error};
use proptest::prelude::*;

fn make_block(dir: &Path) -> PathBuf {
    let mut w = BlockWriter::new(BlockWriterOptions::default());
    for s in 0..20 {
        let l = Labels::from_pairs([("__name__", "m".to_string()), ("i", s.to_string())]);
        for k in 0..300 {
            w.append(&l, 1_700_000_000_000 + k * 15_000, &SampleValue::Float((k * s) as f64))
                .unwrap();
        }
    }
    let m = w.flush(dir).unwrap().unwrap();
    dir.join(m.ulid)
}

/// Opens the block and reads every sample; returns the first error.
fn read_all(dir: &Path) -> Result<usize, Error> {
    let b = BlockReader::open(dir)?;
    let mut n = 0;
    for s in b.select(&[], i64::MIN, i64::MAX)? {
        let s = s?;
        for x in b.samples(&s, i64::MIN, i64::MAX) {
            x?;
            n += 1;
        }
    }
    Ok(n)
}

fn copy_block(src: &Path, dst: &Path) {
    fs::create_dir_all(dst.join("chunks")).unwrap();
    for f in ["meta.json", "index", "tombstones", "chunks/000001"] {
        fs::copy(src.join(f), dst.join(f)).unwrap();
    }
}

#[test]
fn intact_block_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let b = make_block(tmp.path());
    assert_eq!(read_all(&b).unwrap(), 20 * 300);
}

#[test]
fn every_truncation_of_index_and_chunks_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let b = make_block(tmp.path());
    for file in ["index", "chunks/000001"] {
        let orig = fs::read(b.join(file)).unwrap();
        let step = (orig.len() / 60).max(1);
        for cut in (0..orig.len()).step_by(step) {
            let work = tmp.path().join("work");
            let _ = fs::remove_dir_all(&work);
            copy_block(&b, &work);
            fs::write(work.join(file), &orig[..cut]).unwrap();
            let e = read_all(&work).expect_err(&format!("{file} truncated to {cut} bytes must fail"));
            let msg = e.to_string();
            let short = file.rsplit('/').next().unwrap();
            assert!(msg.contains(short), "{file} cut at {cut}: {msg}");
        }
    }
}

#[test]
fn flipped_bits_never_panic_and_usually_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let b = make_block(tmp.path());
    let mut detected = 0;
    let mut tried = 0;
    for file in ["index", "chunks/000001", "tombstones"] {
        let orig = fs::read(b.join(file)).unwrap();
        let step = (orig.len() / 80).max(1);
        for pos in (0..orig.len()).step_by(step) {
            let work = tmp.path().join("work");
            let _ = fs::remove_dir_all(&work);
            copy_block(&b, &work);
            let mut m = orig.clone();
            m[pos] ^= 0x10;
            fs::write(work.join(file), &m).unwrap();
            tried += 1;
            if let Err(e) = read_all(&work) {
                detected += 1;
                let msg = e.to_string();
                assert!(msg.contains(file.rsplit('/').next().unwrap()), "{file}@{pos}: {msg}");
            }
        }
    }
    // CRCs cover everything but padding and unused sections: nearly every flip is caught.
    assert!(detected * 10 >= tried * 8, "only {detected} of {tried} flips detected");
}

#[test]
fn bad_magic_and_absurd_lengths() {
    let tmp = tempfile::tempdir().unwrap();
    let b = make_block(tmp.path());
    let work = tmp.path().join("work");
    copy_block(&b, &work);
    let mut idx = fs::read(work.join("index")).unwrap();
    idx[0] = 0;
    fs::write(work.join("index"), &idx).unwrap();
    let e = read_all(&work).unwrap_err().to_string();
    assert!(
        e.contains("index") && e.contains("magic") && e.contains("offset 0"),
        "{e}"
    );

    // A symbol table claiming 4 GiB of symbols.
    let _ = fs::remove_dir_all(&work);
    copy_block(&b, &work);
    let mut idx = fs::read(work.join("index")).unwrap();
    idx[5..9].copy_from_slice(&[0xff, 0xff, 0xff, 0xf0]);
    fs::write(work.join("index"), &idx).unwrap();
    let e = read_all(&work).unwrap_err().to_string();
    assert!(e.contains("symbol table") && e.contains("offset 5"), "{e}");

    // A chunk segment with a bad magic.
    let _ = fs::remove_dir_all(&work);
    copy_block(&b, &work);
    let mut c = fs::read(work.join("chunks/000001")).unwrap();
    c[1] = 0;
    fs::write(work.join("chunks/000001"), &c).unwrap();
    let e = read_all(&work).unwrap_err().to_string();
    assert!(e.contains("000001") && e.contains("magic"), "{e}");

    // A chunk record whose length field is huge.
    let _ = fs::remove_dir_all(&work);
    copy_block(&b, &work);
    let mut c = fs::read(work.join("chunks/000001")).unwrap();
    c[8..13].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    fs::write(work.join("chunks/000001"), &c).unwrap();
    let e = read_all(&work).unwrap_err().to_string();
    assert!(e.contains("000001") && e.contains("offset 8"), "{e}");

    // meta.json that is not JSON.
    let _ = fs::remove_dir_all(&work);
    copy_block(&b, &work);
    fs::write(work.join("meta.json"), b"{nope").unwrap();
    let e = read_all(&work).unwrap_err().to_string();
    assert!(e.contains("meta.json"), "{e}");
}

#[test]
fn verifier_reports_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let b = make_block(tmp.path());
    let mut c = fs::read(b.join("chunks/000001")).unwrap();
    let n = c.len();
    c[n / 2] ^= 0xff;
    fs::write(b.join("chunks/000001"), &c).unwrap();
    let rep = hypnos_tsdb::tools::verify::verify_block(&b, &mut |_, _| {}).unwrap();
    assert!(
        rep.problems.iter().any(|p| p.contains("checksum")),
        "{:?}",
        rep.problems
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The fuzz targets on random bytes (a short run; `fuzz/` does deeper runs).
    #[test]
    fn fuzz_targets_survive_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        hypnos_tsdb::fuzz::fuzz_chunk_decoders(&data);
        hypnos_tsdb::fuzz::fuzz_index_reader(&data);
        hypnos_tsdb::fuzz::fuzz_block_files(&data);
    }

    /// Random mutations of a valid index and chunk.
    #[test]
    fn fuzz_targets_survive_mutations(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let (index, chunk) = valid_index_and_chunk();
        let mut m = index.clone();
        let i = pos.index(m.len());
        m[i] = byte;
        m.truncate(cut.index(m.len()) + 1);
        hypnos_tsdb::fuzz::fuzz_index_reader(&m);
        let mut c = chunk.clone();
        let i = pos.index(c.len());
        c[i] = byte;
        hypnos_tsdb::fuzz::fuzz_chunk_decoders(&c);
    }
}

fn valid_index_and_chunk() -> (Vec<u8>, Vec<u8>) {
    use std::sync::OnceLock;
    static CELL: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    CELL.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let b = make_block(tmp.path());
        let index = fs::read(b.join("index")).unwrap();
        let mut a = hypnos_tsdb::chunkenc::XorAppender::new();
        for i in 0..50 {
            a.append(i * 1000 + (i % 3), (i as f64).sin());
        }
        (index, a.into_bytes())
    })
    .clone()
}
