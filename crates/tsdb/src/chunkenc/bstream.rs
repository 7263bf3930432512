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
        if self.free == 0 {
            self.bytes.push(0);
            self.free = 8;
        }
        if bit && let Some(last) = self.bytes.last_mut() {
            *last |= 1 << (self.free - 1);
        }
        self.free -= 1;
    }

    #[inline]
    pub fn write_byte(&mut self, byte: u8) {
        self.write_bits(u64::from(byte), 8);
    }

    /// Writes the lowest `n` bits of `v` (n ≤ 64).
    #[inline]
    pub fn write_bits(&mut self, v: u64, mut n: u32) {
        debug_assert!(n <= 64);
        while n > 0 {
            if self.free == 0 {
                self.bytes.push(0);
                self.free = 8;
            }
            let take = n.min(u32::from(self.free));
            let chunk = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            let shift = u32::from(self.free) - take;
            if let Some(last) = self.bytes.last_mut() {
                *last |= chunk << shift;
            }
            self.free -= take as u8;
            n -= take;
        }
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
