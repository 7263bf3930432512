//! Fuzz entry points: each takes arbitrary bytes and must return (an error is fine)
//! without panicking or allocating more than the input justifies. They are driven by a
//! proptest in the normal test suite and by the cargo-fuzz crate in `fuzz/`.

use crate::chunkenc::{Encoding, SampleIterator, XorIterator};
use crate::index::IndexReader;
use crate::mmap::FileBytes;

/// Decodes `data` as a chunk of every encoding.
pub fn fuzz_chunk_decoders(data: &[u8]) {
    for enc in [Encoding::Xor, Encoding::Histogram, Encoding::FloatHistogram] {
        if let Ok(mut it) = SampleIterator::new(enc, data) {
            let mut n = 0;
            while let Ok(Some(_)) = it.next_sample() {
                n += 1;
                if n > 70_000 {
                    break;
                }
            }
        }
    }
    // The XOR decoder's other entry points: batches, and a seek into the middle.
    if let Ok(mut it) = XorIterator::new(data) {
        while let Ok(b) = it.next_batch() {
            if b.is_empty() {
                break;
            }
        }
    }
    if let (Ok(mut it), Some(&[a, b])) = (XorIterator::new(data), data.get(2..4)) {
        let _ = it.seek(i64::from(i16::from_be_bytes([a, b])) * 1000);
        let _ = it.next_batch();
    }
    let _ = crate::chunks::parse_chunk_record(data, 0);
    let _ = crate::tombstones::Tombstones::decode(data);
}

/// Parses `data` as meta.json and as a tombstones file, and writes a parsed meta back out.
pub fn fuzz_block_files(data: &[u8]) {
    if let Ok(m) = crate::meta::BlockMeta::from_json(data, std::path::Path::new("fuzz/meta.json")) {
        let _ = m.to_json();
    }
    let _ = crate::tombstones::Tombstones::decode(data);
}

/// Opens `data` as an index and walks everything reachable.
pub fn fuzz_index_reader(data: &[u8]) {
    let Ok(r) = IndexReader::from_bytes("fuzz".into(), FileBytes::from_vec(data.to_vec())) else {
        return;
    };
    let names: Vec<String> = r.label_names().into_iter().map(str::to_string).collect();
    for n in &names {
        for v in r.label_values(n) {
            let _ = r.postings(n, v);
        }
    }
    if let Ok(all) = r.all_postings() {
        for s in all.into_iter().take(10_000) {
            let _ = r.series(s);
        }
    }
}
