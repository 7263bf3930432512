//! XOR chunks (encoding 1): Gorilla-style delta-of-delta timestamps and XOR'd values,
//! with Prometheus's millisecond-sized timestamp buckets.

use super::bstream::{BitReader, BitWriter};
use super::varbit::bit_range;
use crate::error::DecodeError;

/// Builds one XOR chunk.
#[derive(Clone, Debug)]
pub struct XorAppender {
    w: BitWriter,
    num: u16,
    t: i64,
    v: f64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    pub fn new() -> Self {
        XorAppender {
            w: BitWriter::with_header(&[0, 0]),
            num: 0,
            t: 0,
            v: 0.0,
            t_delta: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    /// The chunk data so far (sample count header included).
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }

    pub fn last_timestamp(&self) -> Option<i64> {
        (self.num > 0).then_some(self.t)
    }

    /// Appends a sample. The caller keeps timestamps increasing and the count below 65535.
    pub fn append(&mut self, t: i64, v: f64) {
        let mut t_delta = 0u64;
        match self.num {
            0 => {
                let mut buf = Vec::with_capacity(10);
                crate::encoding::put_varint(&mut buf, t);
                for b in buf {
                    self.w.write_byte(b);
                }
                self.w.write_bits(v.to_bits(), 64);
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let mut buf = Vec::with_capacity(10);
                crate::encoding::put_uvarint(&mut buf, t_delta);
                for b in buf {
                    self.w.write_byte(b);
                }
                xor_write(&mut self.w, v, self.v, &mut self.leading, &mut self.trailing);
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.w.write_bit(false);
                } else if bit_range(dod, 14) {
                    self.w.write_bits(0b10, 2);
                    self.w.write_bits(dod as u64, 14);
                } else if bit_range(dod, 17) {
                    self.w.write_bits(0b110, 3);
                    self.w.write_bits(dod as u64, 17);
                } else if bit_range(dod, 20) {
                    self.w.write_bits(0b1110, 4);
                    self.w.write_bits(dod as u64, 20);
                } else {
                    self.w.write_bits(0b1111, 4);
                    self.w.write_bits(dod as u64, 64);
                }
                xor_write(&mut self.w, v, self.v, &mut self.leading, &mut self.trailing);
            }
        }
        self.t = t;
        self.v = v;
        self.t_delta = t_delta;
        self.num = self.num.wrapping_add(1);
        let n = self.num.to_be_bytes();
        let b = self.w.bytes_mut();
        b[0] = n[0];
        b[1] = n[1];
    }
}

pub(crate) fn xor_write(w: &mut BitWriter, new: f64, cur: f64, leading: &mut u8, trailing: &mut u8) {
    let delta = new.to_bits() ^ cur.to_bits();
    if delta == 0 {
        w.write_bit(false);
        return;
    }
    w.write_bit(true);
    let new_leading = (delta.leading_zeros() as u8).min(31);
    let new_trailing = delta.trailing_zeros() as u8;
    if *leading != 0xff && new_leading >= *leading && new_trailing >= *trailing {
        w.write_bit(false);
        w.write_bits(delta >> *trailing, 64 - u32::from(*leading) - u32::from(*trailing));
        return;
    }
    *leading = new_leading;
    *trailing = new_trailing;
    w.write_bit(true);
    w.write_bits(u64::from(new_leading), 5);
    let sigbits = 64 - u32::from(new_leading) - u32::from(new_trailing);
    // 64 significant bits do not fit 6 bits; they are written as 0 (0 never occurs otherwise).
    w.write_bits(u64::from(sigbits & 63), 6);
    w.write_bits(delta >> new_trailing, sigbits);
}

/// Takes `n` bits (1..=56) that start `skip` bits into `word` (a `peek_word`).
#[inline(always)]
fn take(word: u64, skip: u32, n: u32) -> u64 {
    (word << skip) >> (64 - n)
}

#[inline(always)]
pub(crate) fn xor_read(
    r: &mut BitReader<'_>,
    value: &mut f64,
    leading: &mut u8,
    trailing: &mut u8,
) -> Result<(), DecodeError> {
    // One look at the next 57+ bits usually covers control bits, header and value bits.
    let word = r.peek_word();
    if word >> 63 == 0 {
        return r.consume(1);
    }
    let (skip, mbits) = if (word >> 62) & 1 == 0 {
        (2, 64u32.saturating_sub(u32::from(*leading) + u32::from(*trailing)))
    } else {
        let hdr = (word >> 51) & 0x7ff;
        let new_leading = (hdr >> 6) as u32;
        let mut m = (hdr & 63) as u32;
        if m == 0 {
            m = 64;
        }
        if new_leading + m > 64 {
            return Err(r.err(format!(
                "XOR value has {new_leading} leading zeros and {m} significant bits"
            )));
        }
        *leading = new_leading as u8;
        *trailing = (64 - new_leading - m) as u8;
        (13, m)
    };
    let bits = if mbits == 0 {
        r.consume(skip)?;
        0
    } else if skip + mbits <= 56 {
        r.consume(skip + mbits)?;
        take(word, skip, mbits)
    } else {
        r.consume(skip)?;
        r.read_bits(mbits)?
    };
    let shifted = if *trailing >= 64 { 0 } else { bits << *trailing };
    *value = f64::from_bits(value.to_bits() ^ shifted);
    Ok(())
}

/// Decodes an XOR chunk sample by sample.
#[derive(Clone, Debug)]
pub struct XorIterator<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    v: f64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl<'a> XorIterator<'a> {
    /// `data` is the chunk data (starting with the 2-byte sample count).
    pub fn new(data: &'a [u8]) -> Result<Self, DecodeError> {
        if data.len() < 2 {
            return Err(DecodeError::new(0, "XOR chunk shorter than its 2-byte header"));
        }
        Ok(XorIterator {
            r: BitReader::new(&data[2..], 2),
            total: u16::from_be_bytes([data[0], data[1]]),
            read: 0,
            t: i64::MIN,
            v: 0.0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
        })
    }

    pub fn num_samples(&self) -> usize {
        usize::from(self.total)
    }

    /// The current sample (valid after `next_sample` returned one).
    pub fn at(&self) -> (i64, f64) {
        (self.t, self.v)
    }

    #[inline]
    pub fn next_sample(&mut self) -> Result<Option<(i64, f64)>, DecodeError> {
        if self.read >= self.total {
            return Ok(None);
        }
        match self.read {
            0 => {
                let u = self.read_uvarint_bytes()?;
                self.t = crate::encoding::zigzag_decode(u);
                self.v = f64::from_bits(self.r.read_bits(64)?);
            }
            1 => {
                self.t_delta = self.read_uvarint_bytes()?;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                xor_read(&mut self.r, &mut self.v, &mut self.leading, &mut self.trailing)?;
            }
            _ => {
                let word = self.r.peek_word();
                let ones = (!word).leading_zeros().min(4);
                let dod = if ones == 0 {
                    self.r.consume(1)?;
                    0
                } else if ones < 4 {
                    let (plen, size) = match ones {
                        1 => (2, 14),
                        2 => (3, 17),
                        _ => (4, 20),
                    };
                    self.r.consume(plen + size)?;
                    let bits = take(word, plen, size);
                    if bits > (1u64 << (size - 1)) {
                        bits.wrapping_sub(1u64 << size) as i64
                    } else {
                        bits as i64
                    }
                } else {
                    self.r.consume(4)?;
                    self.r.read_bits(64)? as i64
                };
                self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                xor_read(&mut self.r, &mut self.v, &mut self.leading, &mut self.trailing)?;
            }
        }
        self.read += 1;
        Ok(Some((self.t, self.v)))
    }

    /// Advances to the first sample at or after `t`.
    pub fn seek(&mut self, t: i64) -> Result<Option<(i64, f64)>, DecodeError> {
        if self.read > 0 && self.t >= t {
            return Ok(Some((self.t, self.v)));
        }
        while let Some((st, v)) = self.next_sample()? {
            if st >= t {
                return Ok(Some((st, v)));
            }
        }
        Ok(None)
    }

    fn read_uvarint_bytes(&mut self) -> Result<u64, DecodeError> {
        let mut x: u64 = 0;
        let mut s: u32 = 0;
        for i in 0..10 {
            let b = self.r.read_byte()?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    break;
                }
                return Ok(x | (u64::from(b) << s));
            }
            x |= u64::from(b & 0x7f) << s;
            s += 7;
        }
        Err(self.r.err("timestamp varint overflows 64 bits"))
    }
}

impl Iterator for XorIterator<'_> {
    type Item = Result<(i64, f64), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_sample() {
            Ok(Some(s)) => Some(Ok(s)),
            Ok(None) => None,
            Err(e) => {
                self.read = self.total;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(samples: &[(i64, f64)]) {
        let mut a = XorAppender::new();
        for &(t, v) in samples {
            a.append(t, v);
        }
        let bytes = a.into_bytes();
        let got: Vec<(i64, f64)> = XorIterator::new(&bytes).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), samples.len());
        for (g, w) in got.iter().zip(samples) {
            assert_eq!(g.0, w.0);
            assert_eq!(g.1.to_bits(), w.1.to_bits());
        }
    }

    #[test]
    fn round_trips() {
        round_trip(&[]);
        round_trip(&[(1000, 1.0)]);
        round_trip(&[
            (-5, f64::NAN),
            (10, f64::INFINITY),
            (20, -0.0),
            (1 << 40, 3.25),
            (i64::MAX, f64::MIN),
        ]);
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000 + (i % 7) * 3, (i as f64).sqrt()))
            .collect();
        round_trip(&s);
    }

    #[test]
    fn matches_prometheus_bytes() {
        // Chunk written by promtool 2.42 for samples (1700000000000, 1) and (1700000015500, 2).
        let mut a = XorAppender::new();
        a.append(1_700_000_000_000, 1.0);
        a.append(1_700_000_015_500, 2.0);
        assert_eq!(
            a.bytes(),
            &[
                0x00, 0x02, 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x8c, 0x79, 0xc2, 0x5f,
                0xff
            ][..]
        );
    }

    #[test]
    fn seek_finds_first_at_or_after() {
        let mut a = XorAppender::new();
        for i in 0..10 {
            a.append(i * 10, i as f64);
        }
        let b = a.into_bytes();
        let mut it = XorIterator::new(&b).unwrap();
        assert_eq!(it.seek(35).unwrap(), Some((40, 4.0)));
        assert_eq!(it.seek(10).unwrap(), Some((40, 4.0)));
        assert_eq!(it.seek(1000).unwrap(), None);
    }
}
