//! Byte-level helpers: Go's `encoding/binary` varints, big-endian integers and
//! CRC-32C, with every read bounds-checked.

use crate::error::DecodeError;

/// A cursor over a byte slice. Offsets in errors are relative to the slice start plus `base`.
#[derive(Clone, Debug)]
pub struct Decbuf<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Decbuf<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decbuf { buf, pos: 0, base: 0 }
    }

    /// A cursor whose error offsets are reported as `base + position`.
    pub fn with_base(buf: &'a [u8], base: u64) -> Self {
        Decbuf { buf, pos: 0, base }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub fn err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::new(self.offset(), reason)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(|_| ())
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(format!("need {n} bytes, only {} left", self.remaining())));
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    pub fn be32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn be64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let (v, n) = read_uvarint(&self.buf[self.pos..]).map_err(|r| self.err(r))?;
        self.pos += n;
        Ok(v)
    }

    pub fn uvarint32(&mut self) -> Result<u32, DecodeError> {
        let start = self.offset();
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| DecodeError::new(start, format!("varint {v} overflows 32 bits")))
    }

    pub fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(zigzag_decode(u))
    }

    /// A uvarint length followed by that many bytes of UTF-8.
    pub fn uvarint_str(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.offset();
        let len = self.uvarint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::new(start, "string length overflows"))?;
        let b = self.bytes(len)?;
        std::str::from_utf8(b).map_err(|_| DecodeError::new(start, "string is not valid UTF-8"))
    }
}

pub fn zigzag_decode(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

pub fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Go's `binary.Uvarint`, rejecting overlong and overflowing encodings.
pub fn read_uvarint(b: &[u8]) -> Result<(u64, usize), &'static str> {
    let mut x: u64 = 0;
    let mut s: u32 = 0;
    for (i, &byte) in b.iter().enumerate() {
        if i == 10 {
            return Err("varint overflows 64 bits");
        }
        if byte < 0x80 {
            if i == 9 && byte > 1 {
                return Err("varint overflows 64 bits");
            }
            return Ok((x | (u64::from(byte) << s), i + 1));
        }
        x |= u64::from(byte & 0x7f) << s;
        s += 7;
    }
    Err("truncated varint")
}

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag_encode(v));
}

pub fn put_be32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_be64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_uvarint_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(b.len(), uvarint_len(v));
            assert_eq!(Decbuf::new(&b).uvarint().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -1234567] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(Decbuf::new(&b).varint().unwrap(), v);
        }
    }

    #[test]
    fn truncated_and_overlong_varints_fail() {
        assert!(Decbuf::new(&[0x80]).uvarint().is_err());
        assert!(Decbuf::new(&[0xff; 11]).uvarint().is_err());
        assert!(
            Decbuf::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .uvarint()
                .is_err()
        );
    }
}
