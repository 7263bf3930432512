//! The framing of Prometheus's streamed remote-read response
//! (`application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse`):
//! each frame is `uvarint(len(msg))`, `CRC32-Castagnoli(msg)` as 4 big-endian bytes, then the
//! marshalled `ChunkedReadResponse`.
//!
//! The decoder is fed body pieces as they arrive and yields whole messages, so a response of any
//! size is handled with one frame in memory at a time.

use bytes::{Buf, BytesMut};
use prost::Message;

use crate::prompb::ChunkedReadResponse;

/// Prometheus's client-side frame limit (`DefaultChunkedReadLimit`, 50 MB): a larger frame is
/// refused before it is buffered.
pub const DEFAULT_MAX_FRAME_BYTES: u64 = 50_000_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    #[error("frame at byte {offset}: length varint is malformed")]
    BadVarint { offset: u64 },
    #[error("frame at byte {offset}: {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { offset: u64, size: u64, limit: u64 },
    #[error("frame at byte {offset}: CRC32C mismatch (frame says {want:#010x}, data has {got:#010x})")]
    Checksum { offset: u64, want: u32, got: u32 },
    #[error("frame at byte {offset}: decoding ChunkedReadResponse: {message}")]
    Decode { offset: u64, message: String },
    #[error("stream ended inside the frame at byte {offset} ({buffered} bytes buffered)")]
    Truncated { offset: u64, buffered: usize },
}

/// Splits a byte stream into `ChunkedReadResponse` messages.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    /// Stream offset of `buf[0]`, for error messages.
    offset: u64,
    max_frame: u64,
}

impl FrameDecoder {
    pub fn new(max_frame: u64) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            offset: 0,
            max_frame,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, or `None` until more bytes are pushed.
    pub fn next_frame(&mut self) -> Result<Option<ChunkedReadResponse>, FrameError> {
        let offset = self.offset;
        let Some((size, varint_len)) = read_uvarint(&self.buf).map_err(|()| FrameError::BadVarint { offset })? else {
            return Ok(None);
        };
        if size > self.max_frame {
            return Err(FrameError::TooLarge {
                offset,
                size,
                limit: self.max_frame,
            });
        }
        // `size <= max_frame`, which fits in memory by construction.
        let size = size as usize;
        let total = varint_len + 4 + size;
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(varint_len);
        let want = self.buf.get_u32();
        let msg = self.buf.split_to(size).freeze();
        self.offset += total as u64;
        let got = crc32c::crc32c(&msg);
        if got != want {
            return Err(FrameError::Checksum { offset, want, got });
        }
        ChunkedReadResponse::decode(msg)
            .map(Some)
            .map_err(|e| FrameError::Decode {
                offset,
                message: e.to_string(),
            })
    }

    /// Checks that the stream did not stop inside a frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                offset: self.offset,
                buffered: self.buf.len(),
            })
        }
    }
}

/// `Ok(None)`: needs more bytes. `Err`: more than 10 bytes or overflowing 64 bits.
fn read_uvarint(b: &[u8]) -> Result<Option<(u64, usize)>, ()> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            return Err(());
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    if b.len() >= 10 { Err(()) } else { Ok(None) }
}

/// Encodes one frame; the inverse of [`FrameDecoder`] (tests and fakes).
pub fn encode_frame(msg: &ChunkedReadResponse) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut out = Vec::with_capacity(body.len() + 14);
    prost::encoding::encode_varint(body.len() as u64, &mut out);
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompb::{Chunk, ChunkedSeries, Label};
    use proptest::prelude::*;

    fn msg(name: &str, chunks: usize) -> ChunkedReadResponse {
        ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: name.into(),
                }],
                chunks: (0..chunks)
                    .map(|i| Chunk {
                        min_time_ms: i as i64,
                        max_time_ms: i as i64 + 10,
                        r#type: 1,
                        data: bytes::Bytes::from(vec![i as u8; 300]),
                    })
                    .collect(),
            }],
            query_index: 0,
        }
    }

    #[test]
    fn decodes_frames_split_anywhere() {
        let msgs = [msg("a", 1), msg("b", 3), msg("c", 0)];
        let stream: Vec<u8> = msgs.iter().flat_map(encode_frame).collect();
        for step in [1, 2, 7, 300, stream.len()] {
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
            let mut got = Vec::new();
            for piece in stream.chunks(step) {
                d.push(piece);
                while let Some(m) = d.next_frame().unwrap() {
                    got.push(m);
                }
            }
            d.finish().unwrap();
            assert_eq!(got, msgs, "step {step}");
        }
    }

    #[test]
    fn crc_is_castagnoli_big_endian() {
        let f = encode_frame(&msg("a", 0));
        // 1-byte length, then the CRC.
        let body = &f[5..];
        assert_eq!(u32::from_be_bytes([f[1], f[2], f[3], f[4]]), crc32c::crc32c(body));
        // CRC32C of "123456789" is 0xe3069283 (the Castagnoli check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn corrupt_crc_names_the_offset() {
        let mut s = encode_frame(&msg("a", 0));
        let first = s.len() as u64;
        let mut second = encode_frame(&msg("b", 0));
        let last = second.len() - 1;
        second[last] ^= 0xff;
        s.extend(second);
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        d.push(&s);
        assert!(d.next_frame().unwrap().is_some());
        let err = d.next_frame().unwrap_err();
        assert!(
            matches!(err, FrameError::Checksum { offset, .. } if offset == first),
            "{err}"
        );
    }

    #[test]
    fn oversized_frame_is_refused_before_buffering() {
        let mut d = FrameDecoder::new(100);
        let mut b = Vec::new();
        prost::encoding::encode_varint(1 << 40, &mut b);
        d.push(&b);
        assert!(matches!(d.next_frame(), Err(FrameError::TooLarge { size, .. }) if size == 1 << 40));
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let f = encode_frame(&msg("a", 2));
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        d.push(&f[..f.len() - 3]);
        assert_eq!(d.next_frame().unwrap(), None);
        assert!(matches!(d.finish(), Err(FrameError::Truncated { offset: 0, .. })));
    }

    #[test]
    fn bad_varint() {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        d.push(&[0xff; 11]);
        assert_eq!(d.next_frame(), Err(FrameError::BadVarint { offset: 0 }));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut d = FrameDecoder::new(1000);
            d.push(&data);
            for _ in 0..10 {
                match d.next_frame() {
                    Ok(Some(_)) => continue,
                    _ => break,
                }
            }
        }
    }
}
