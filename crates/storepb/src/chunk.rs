//! Chunk encodings and hashes.
//!
//! Thanos numbers chunk encodings one less than the TSDB does: `thanos.Chunk.Encoding` is
//! `XOR=0, HISTOGRAM=1, FLOAT_HISTOGRAM=2`, while TSDB chunk files (and Prometheus's remote-read
//! `prompb.Chunk`) use `XOR=1, histogram=2, float histogram=3`, with `0` meaning "none". The
//! sidecar converts with `Chunk_Encoding(chk.Type - 1)`; every conversion here goes through
//! [`encoding_from_tsdb`] / [`encoding_to_tsdb`] so the off-by-one lives in one place.

use bytes::Bytes;

use crate::convert::ConvertError;
use crate::proto::thanos::{AggrChunk, Chunk, chunk::Encoding};

/// TSDB chunk encoding byte for XOR (Gorilla) float chunks.
pub const TSDB_ENC_XOR: u8 = 1;
/// TSDB chunk encoding byte for integer native-histogram chunks.
pub const TSDB_ENC_HISTOGRAM: u8 = 2;
/// TSDB chunk encoding byte for float native-histogram chunks.
pub const TSDB_ENC_FLOAT_HISTOGRAM: u8 = 3;

/// The StoreAPI encoding for a TSDB chunk encoding byte.
pub fn encoding_from_tsdb(tsdb: u8) -> Result<Encoding, ConvertError> {
    match tsdb {
        TSDB_ENC_XOR => Ok(Encoding::Xor),
        TSDB_ENC_HISTOGRAM => Ok(Encoding::Histogram),
        TSDB_ENC_FLOAT_HISTOGRAM => Ok(Encoding::FloatHistogram),
        other => Err(ConvertError::UnsupportedTsdbEncoding(other)),
    }
}

/// The TSDB chunk encoding byte for a StoreAPI `Chunk.type` as found on the wire.
pub fn encoding_to_tsdb(wire: i32) -> Result<u8, ConvertError> {
    match Encoding::try_from(wire) {
        Ok(Encoding::Xor) => Ok(TSDB_ENC_XOR),
        Ok(Encoding::Histogram) => Ok(TSDB_ENC_HISTOGRAM),
        Ok(Encoding::FloatHistogram) => Ok(TSDB_ENC_FLOAT_HISTOGRAM),
        Err(_) => Err(ConvertError::UnknownChunkEncoding(wire)),
    }
}

/// xxhash64 (seed 0) of the chunk bytes, as Thanos's store gateway, sidecar and receive fill in
/// `Chunk.hash` and the querier's deduplicator compares.
pub fn chunk_hash(data: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(data, 0)
}

/// A StoreAPI chunk for TSDB chunk bytes, with its hash filled in.
pub fn chunk_from_tsdb(tsdb_encoding: u8, data: Bytes) -> Result<Chunk, ConvertError> {
    let encoding = encoding_from_tsdb(tsdb_encoding)?;
    Ok(Chunk {
        r#type: encoding as i32,
        hash: chunk_hash(&data),
        data,
    })
}

/// A raw-resolution `AggrChunk` (only `raw` set) for TSDB chunk bytes.
pub fn raw_aggr_chunk(min_time: i64, max_time: i64, tsdb_encoding: u8, data: Bytes) -> Result<AggrChunk, ConvertError> {
    Ok(AggrChunk {
        min_time,
        max_time,
        raw: Some(chunk_from_tsdb(tsdb_encoding, data)?),
        ..AggrChunk::default()
    })
}

/// The chunk's hash as sent, or computed when the sender left it 0 (as Thanos's querier does).
pub fn hash_or_compute(c: &Chunk) -> u64 {
    if c.hash != 0 { c.hash } else { chunk_hash(&c.data) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thanos_encoding_is_tsdb_minus_one() {
        for tsdb in [TSDB_ENC_XOR, TSDB_ENC_HISTOGRAM, TSDB_ENC_FLOAT_HISTOGRAM] {
            let wire = encoding_from_tsdb(tsdb).unwrap() as i32;
            assert_eq!(wire, i32::from(tsdb) - 1);
            assert_eq!(encoding_to_tsdb(wire).unwrap(), tsdb);
        }
        assert!(encoding_from_tsdb(0).is_err());
        assert!(encoding_from_tsdb(4).is_err());
        assert!(encoding_to_tsdb(3).is_err());
        assert!(encoding_to_tsdb(-1).is_err());
    }

    #[test]
    fn xxhash64_known_values() {
        // Reference values of XXH64 with seed 0 (the xxHash spec's test vectors).
        assert_eq!(chunk_hash(b""), 0xef46db3751d8e999);
        assert_eq!(chunk_hash(b"a"), 0xd24ec4f1a98c6e5b);
        assert_eq!(chunk_hash(b"abc"), 0x44bc2cf5ad770999);
    }

    #[test]
    fn chunk_from_tsdb_fills_hash() {
        let c = chunk_from_tsdb(TSDB_ENC_XOR, Bytes::from_static(b"abc")).unwrap();
        assert_eq!(c.r#type, Encoding::Xor as i32);
        assert_eq!(c.hash, 0x44bc2cf5ad770999);
        assert_eq!(hash_or_compute(&Chunk { hash: 0, ..c.clone() }), c.hash);
    }
}
