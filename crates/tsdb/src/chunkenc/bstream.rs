//! Bit streams, most significant bit first, as Prometheus's `bstream`.

use crate::error::DecodeError;

/// Appends bits to a byte vector.
#[derive(Clone, Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits still free in the last byte (0 means the next bit starts a new byte).
    free: u8,
}

impl BitWriter {
    /// A writer whose stream starts with `header` (whole bytes).
    pub fn with_header(header: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(header);
        BitWriter { bytes, free: 0 }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    #[inline]
    pub fn write_byte(&mut self, byte: u8) {
        self.write_bits(u64::from(byte), 8);
    }

    /// Writes the lowest `n` bits of `v` (n ≤ 64): fills the free bits of the last byte, then
    /// appends the rest as one 8-byte big-endian store and trims the bytes not needed.
    #[inline]
    pub fn write_bits(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64);
        if n == 0 {
            return;
        }
        // Left aligned, nothing below the n bits.
        let mut x = v << (64 - n);
        let mut n = n;
        let free = u32::from(self.free);
        if free > 0 {
            if let Some(last) = self.bytes.last_mut() {
                *last |= (x >> (64 - free)) as u8;
            }
            if n <= free {
                self.free -= n as u8;
                return;
            }
            x <<= free;
            n -= free;
        }
        let len = self.bytes.len();
        let whole = n.div_ceil(8);
        self.bytes.extend_from_slice(&x.to_be_bytes());
        self.bytes.truncate(len + whole as usize);
        self.free = (whole * 8 - n) as u8;
    }
}

/// Reads bits from a byte slice; every read is bounds-checked.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits.
    pos: usize,
    /// Total bits available.
    end: usize,
    /// Byte offset of `data` within the chunk, for error messages.
    base: u64,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8], base: u64) -> Self {
        BitReader {
            data,
            pos: 0,
            end: data.len() * 8,
            base,
        }
    }

    #[cold]
    pub fn err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::new(self.base + (self.pos / 8) as u64, reason)
    }

    #[cold]
    #[inline(never)]
    fn eof(&self) -> DecodeError {
        self.err("unexpected end of chunk data")
    }

    #[inline(always)]
    fn load(&self, byte: usize) -> u64 {
        match self.data.get(byte..byte + 8) {
            Some(s) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                u64::from_be_bytes(a)
            }
            None => {
                let mut a = [0u8; 8];
                let tail = self.data.get(byte..).unwrap_or(&[]);
                a[..tail.len()].copy_from_slice(tail);
                u64::from_be_bytes(a)
            }
        }
    }

    /// The next up-to-56 bits, left aligned, without consuming them; zero beyond the end.
    #[inline(always)]
    pub fn peek_word(&self) -> u64 {
        self.load(self.pos >> 3) << (self.pos & 7)
    }

    /// Position in bits from the start of the data.
    pub fn position(&self) -> usize {
        self.pos
    }

    #[inline(always)]
    pub fn bits_left(&self) -> usize {
        self.end - self.pos
    }

    #[inline(always)]
    pub fn consume(&mut self, n: u32) -> Result<(), DecodeError> {
        if n as usize > self.bits_left() {
            return Err(self.eof());
        }
        self.pos += n as usize;
        Ok(())
    }

    #[inline(always)]
    pub fn read_bit(&mut self) -> Result<bool, DecodeError> {
        if self.pos >= self.end {
            return Err(self.eof());
        }
        let b = (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1;
        self.pos += 1;
        Ok(b == 1)
    }

    /// Reads `n` bits (n ≤ 64) as an unsigned integer.
    #[inline(always)]
    pub fn read_bits(&mut self, n: u32) -> Result<u64, DecodeError> {
        if n == 0 {
            return Ok(0);
        }
        if n as usize > self.bits_left() {
            return Err(self.eof());
        }
        if n <= 56 {
            let v = self.peek_word() >> (64 - n);
            self.pos += n as usize;
            Ok(v)
        } else {
            let hi = self.peek_word() >> 32;
            self.pos += 32;
            let lo = self.peek_word() >> (64 - (n - 32));
            self.pos += (n - 32) as usize;
            Ok((hi << (n - 32)) | lo)
        }
    }

    #[inline]
    pub fn read_byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.read_bits(8)? as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The word-at-a-time writer produces the same bytes as writing bit by bit.
        #[test]
        fn write_bits_matches_bit_by_bit(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..100)) {
            let mut w = BitWriter::with_header(&[7, 9]);
            let mut want = vec![7u8, 9];
            let mut nbits = 16usize;
            for &(v, n) in &fields {
                w.write_bits(v, n);
                for i in (0..n).rev() {
                    if nbits.is_multiple_of(8) {
                        want.push(0);
                    }
                    if (v >> i) & 1 == 1 {
                        let last = want.len() - 1;
                        want[last] |= 0x80 >> (nbits % 8);
                    }
                    nbits += 1;
                }
            }
            prop_assert_eq!(w.bytes(), &want[..]);
        }
    }

    #[test]
    fn bits_round_trip() {
        let mut w = BitWriter::default();
        w.write_bit(true);
        w.write_bits(0b1011, 4);
        w.write_bits(u64::MAX, 64);
        w.write_byte(0xab);
        w.write_bits(0x1234_5678_9abc, 60);
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes, 0);
        assert!(r.read_bit().unwrap());
        assert_eq!(r.read_bits(4).unwrap(), 0b1011);
        assert_eq!(r.read_bits(64).unwrap(), u64::MAX);
        assert_eq!(r.read_byte().unwrap(), 0xab);
        assert_eq!(r.read_bits(60).unwrap(), 0x1234_5678_9abc);
        assert!(r.read_bits(8).is_err());
    }
}
