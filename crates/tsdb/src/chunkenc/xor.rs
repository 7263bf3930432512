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
                let mut buf = [0u8; 10];
                let n = varint_into(&mut buf, ((t << 1) ^ (t >> 63)) as u64);
                for &b in &buf[..n] {
                    self.w.write_byte(b);
                }
                self.w.write_bits(v.to_bits(), 64);
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let mut buf = [0u8; 10];
                let n = varint_into(&mut buf, t_delta);
                for &b in &buf[..n] {
                    self.w.write_byte(b);
                }
                xor_write(&mut self.w, v, self.v, &mut self.leading, &mut self.trailing);
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                // Prefix and value in one write: 0, 10+14, 110+17, 1110+20 bits, or 1111+64.
                if dod == 0 {
                    self.w.write_bits(0, 1);
                } else if bit_range(dod, 14) {
                    self.w.write_bits((0b10 << 14) | (dod as u64 & 0x3fff), 16);
                } else if bit_range(dod, 17) {
                    self.w.write_bits((0b110 << 17) | (dod as u64 & 0x1_ffff), 20);
                } else if bit_range(dod, 20) {
                    self.w.write_bits((0b1110 << 20) | (dod as u64 & 0xf_ffff), 24);
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
        if let [a, b, ..] = self.w.bytes_mut() {
            *a = n[0];
            *b = n[1];
        }
    }
}

/// Writes `x` as a uvarint into `buf`; returns its length.
fn varint_into(buf: &mut [u8; 10], mut x: u64) -> usize {
    let mut i = 0;
    while x >= 0x80 && i < 9 {
        buf[i] = (x as u8) | 0x80;
        x >>= 7;
        i += 1;
    }
    buf[i] = x as u8;
    i + 1
}

pub(crate) fn xor_write(w: &mut BitWriter, new: f64, cur: f64, leading: &mut u8, trailing: &mut u8) {
    let delta = new.to_bits() ^ cur.to_bits();
    if delta == 0 {
        w.write_bits(0, 1);
        return;
    }
    let new_leading = (delta.leading_zeros() as u8).min(31);
    let new_trailing = delta.trailing_zeros() as u8;
    if *leading != 0xff && new_leading >= *leading && new_trailing >= *trailing {
        // Control bits 10, then the value in the previous window.
        let sig = 64 - u32::from(*leading) - u32::from(*trailing);
        let bits = delta >> *trailing;
        if sig <= 62 {
            w.write_bits((0b10 << sig) | bits, 2 + sig);
        } else {
            w.write_bits(0b10, 2);
            w.write_bits(bits, sig);
        }
        return;
    }
    *leading = new_leading;
    *trailing = new_trailing;
    let sig = 64 - u32::from(new_leading) - u32::from(new_trailing);
    // Control bits 11, 5 bits of leading zeros, 6 bits of significant bits; 64 significant
    // bits do not fit 6 bits and are written as 0 (0 never occurs otherwise).
    let header = (0b11 << 11) | (u64::from(new_leading) << 6) | u64::from(sig & 63);
    let bits = delta >> new_trailing;
    if sig <= 51 {
        w.write_bits((header << sig) | bits, 13 + sig);
    } else {
        w.write_bits(header, 13);
        w.write_bits(bits, sig);
    }
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

/// A delta of delta stored in `size` bits: Prometheus's buckets hold -2^(size-1)+1 ..= 2^(size-1),
/// so the pattern 2^(size-1) is positive (plain two's complement would make it negative).
#[inline(always)]
fn dod_value(bits: u64, size: u32) -> u64 {
    if bits > 1 << (size - 1) {
        bits.wrapping_sub(1 << size)
    } else {
        bits
    }
}

/// Samples decoded per batch: the iterator decodes this many in one tight loop (state in
/// registers, no per-sample Result/Option) and hands them out one by one or as a slice.
const BATCH: usize = 32;

/// Decodes an XOR chunk sample by sample.
///
/// Samples are decoded in batches of [`BATCH`] by [`XorIterator::decode_batch`], which reads
/// each field from a 64-bit big-endian word loaded at the current bit position (zero padded
/// past the end) and checks the position against the end of the data once per sample
/// instead of once per field.
#[derive(Clone, Debug)]
pub struct XorIterator<'a> {
    /// Chunk data after the 2-byte sample count.
    stream: Stream<'a>,
    /// Bit position in `data` of the next sample to decode.
    pos: usize,
    total: u16,
    /// Samples decoded so far (including the buffered ones).
    decoded: u16,
    /// State after the last decoded sample.
    t: i64,
    v: f64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    /// Significant bits of the current XOR window, 64 - leading - trailing (1..=64).
    sig: u8,
    /// Decoded samples not yet handed out: `buf[next..len]`.
    buf: [(i64, f64); BATCH],
    next: u8,
    len: u8,
    /// The error that stopped decoding, returned once the samples before it are handed out.
    error: Option<DecodeError>,
}

impl<'a> XorIterator<'a> {
    /// Samples decoded at a time.
    pub const BATCH: usize = BATCH;

    /// `data` is the chunk data (starting with the 2-byte sample count).
    pub fn new(data: &'a [u8]) -> Result<Self, DecodeError> {
        let [a, b, rest @ ..] = data else {
            return Err(DecodeError::new(0, "XOR chunk shorter than its 2-byte header"));
        };
        Ok(XorIterator {
            stream: Stream::new(rest),
            pos: 0,
            total: u16::from_be_bytes([*a, *b]),
            decoded: 0,
            t: i64::MIN,
            v: 0.0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
            sig: 64,
            buf: [(0, 0.0); BATCH],
            next: 0,
            len: 0,
            error: None,
        })
    }

    pub fn num_samples(&self) -> usize {
        usize::from(self.total)
    }

    /// The current sample (valid after `next_sample` returned one).
    pub fn at(&self) -> (i64, f64) {
        match usize::from(self.next).checked_sub(1) {
            Some(i) if self.len > 0 => self.buf[i],
            _ => (self.t, self.v),
        }
    }

    #[inline]
    pub fn next_sample(&mut self) -> Result<Option<(i64, f64)>, DecodeError> {
        if self.next >= self.len {
            self.fill()?;
            if self.len == 0 {
                return Ok(None);
            }
        }
        let s = self.buf[usize::from(self.next) % BATCH];
        self.next += 1;
        Ok(Some(s))
    }

    /// The next decoded samples (up to [`XorIterator::BATCH`]; empty at the end of the chunk).
    /// Faster than [`XorIterator::next_sample`] for callers that can take samples in runs:
    /// their loop over the slice keeps its state in registers.
    #[inline]
    pub fn next_batch(&mut self) -> Result<&[(i64, f64)], DecodeError> {
        if self.next >= self.len {
            self.fill()?;
        }
        let (start, end) = (usize::from(self.next), usize::from(self.len));
        self.next = self.len;
        Ok(self.buf.get(start..end).unwrap_or(&[]))
    }

    /// Decodes the next samples into `buf` (which has been handed out); leaves it empty at
    /// the end of the chunk. An error comes after the samples decoded before it.
    #[cold]
    #[inline(never)]
    fn fill(&mut self) -> Result<(), DecodeError> {
        self.next = 0;
        self.len = 0;
        if let Some(e) = self.error.take() {
            self.total = self.decoded;
            return Err(e);
        }
        let mut filled = 0;
        while self.decoded < 2 && self.decoded < self.total {
            let first = first_samples(
                self.stream.data,
                self.decoded,
                self.pos,
                self.t,
                self.v,
                self.leading,
                self.trailing,
            );
            match first {
                Ok((pos, t, v, t_delta, leading, trailing)) => {
                    self.pos = pos;
                    self.t = t;
                    self.v = v;
                    self.leading = leading;
                    self.trailing = trailing;
                    self.sig = 64 - leading - trailing;
                    self.t_delta = t_delta;
                    self.decoded += 1;
                    self.buf[filled] = (t, v);
                    filled += 1;
                }
                Err(e) if filled == 0 => {
                    self.total = self.decoded;
                    return Err(e);
                }
                Err(e) => {
                    self.error = Some(e);
                    self.len = filled as u8;
                    return Ok(());
                }
            }
        }
        if self.decoded < self.total {
            filled = self.decode_batch(filled);
        }
        self.len = filled as u8;
        if filled == 0
            && let Some(e) = self.error.take()
        {
            self.total = self.decoded;
            return Err(e);
        }
        Ok(())
    }

    /// Decodes samples (from the third on) into `buf[start..]`; returns the new end of `buf`.
    fn decode_batch(&mut self, start: usize) -> usize {
        let n = usize::from(self.total - self.decoded).min(BATCH - start);
        let mut state = Cursor {
            pos: self.pos,
            t: self.t,
            v: self.v.to_bits(),
            t_delta: self.t_delta,
            trailing: u32::from(self.trailing),
            sig: u32::from(self.sig),
        };
        let (done, failure) = decode_run(&self.stream, &mut state, &mut self.buf[start..start + n]);
        if let Some(f) = failure {
            self.error = Some(match f {
                Failure::Window { pos, leading, sig } => bad_window(pos, leading, sig),
                Failure::Truncated => truncated(self.stream.data.len() * 8),
            });
        }
        // After an error this is garbage, but nothing is decoded past an error.
        self.pos = state.pos;
        self.t = state.t;
        self.v = f64::from_bits(state.v);
        self.t_delta = state.t_delta;
        self.leading = (64 - state.sig - state.trailing) as u8;
        self.trailing = state.trailing as u8;
        self.sig = state.sig as u8;
        self.decoded += done as u16;
        start + done
    }

    /// Advances to the first sample at or after `t`.
    pub fn seek(&mut self, t: i64) -> Result<Option<(i64, f64)>, DecodeError> {
        // The sample handed out last (none before the first, or after an error).
        if let Some(&cur) = usize::from(self.next).checked_sub(1).and_then(|i| self.buf.get(i))
            && cur.0 >= t
        {
            return Ok(Some(cur));
        }
        while let Some((st, v)) = self.next_sample()? {
            if st >= t {
                return Ok(Some((st, v)));
            }
        }
        Ok(None)
    }
}

impl Iterator for XorIterator<'_> {
    type Item = Result<(i64, f64), DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_sample().transpose()
    }
}

/// The decoder state between samples, in registers during [`decode_run`].
#[derive(Clone, Copy)]
struct Cursor {
    pos: usize,
    t: i64,
    v: u64,
    t_delta: u64,
    trailing: u32,
    sig: u32,
}

enum Failure {
    Window { pos: usize, leading: u32, sig: u32 },
    Truncated,
}

/// The chunk data with its last bytes copied into a zero-padded array, so that a 64-bit load
/// at any position is one bounds check and never a copy loop.
#[derive(Clone, Debug)]
struct Stream<'a> {
    data: &'a [u8],
    /// `tail[i]` is byte `len - 8 + i` of the data, zero outside it.
    tail: [u8; 16],
}

impl<'a> Stream<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut tail = [0u8; 16];
        let from = data.len().saturating_sub(8);
        let last = &data[from..];
        for (dst, &b) in tail[8 - last.len()..8].iter_mut().zip(last) {
            *dst = b;
        }
        Stream { data, tail }
    }

    /// The 64 bits starting at bit `pos`, zero past the end; only the top 57 are certain to
    /// come from the stream (the load is byte aligned).
    #[inline(always)]
    fn peek(&self, pos: usize) -> u64 {
        let byte = pos >> 3;
        let word = match self.data.get(byte..byte + 8) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_be_bytes(a)
            }
            None => self.tail_word(byte),
        };
        word << (pos & 7)
    }

    /// The 8 bytes at `byte` when they reach past the end (`byte > len - 8`), from `tail`.
    #[cold]
    #[inline(never)]
    fn tail_word(&self, byte: usize) -> u64 {
        let off = (byte + 8).wrapping_sub(self.data.len());
        match self.tail.get(off..off + 8) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_be_bytes(a)
            }
            None => 0,
        }
    }

    /// `n` bits (1..=64) at bit `pos`, right aligned.
    #[inline(always)]
    fn bits(&self, pos: usize, n: u32) -> u64 {
        if n <= 57 {
            self.peek(pos) >> (64 - n)
        } else {
            let hi = self.peek(pos) >> 32;
            let lo = self.peek(pos + 32) >> (96 - n);
            (hi << (n - 32)) | lo
        }
    }
}

/// Decodes `out.len()` samples (from the third on) into `out`; returns how many were good and
/// why decoding stopped early. Plain values in and out keep the state in registers.
#[inline(never)]
fn decode_run(stream: &Stream<'_>, state: &mut Cursor, out: &mut [(i64, f64)]) -> (usize, Option<Failure>) {
    let end = stream.data.len() * 8;
    let Cursor {
        mut pos,
        mut t,
        mut v,
        mut t_delta,
        mut trailing,
        mut sig,
    } = *state;
    let mut failure = None;
    let mut done = 0;
    for slot in out.iter_mut() {
        let word = stream.peek(pos);
        // Constant shifts per bucket; the branches follow the data's usual jitter well.
        let dod = if word >> 63 == 0 {
            pos += 1;
            0
        } else if word >> 62 == 0b10 {
            pos += 2 + 14;
            dod_value((word << 2) >> (64 - 14), 14)
        } else if word >> 61 == 0b110 {
            pos += 3 + 17;
            dod_value((word << 3) >> (64 - 17), 17)
        } else if word >> 60 == 0b1110 {
            pos += 4 + 20;
            dod_value((word << 4) >> (64 - 20), 20)
        } else {
            let bits = stream.bits(pos + 4, 64);
            pos += 68;
            bits
        };
        t_delta = t_delta.wrapping_add(dod);
        t = t.wrapping_add(t_delta as i64);

        let word = stream.peek(pos);
        if word >> 63 == 0 {
            pos += 1;
        } else if word >> 62 == 0b10 {
            // Same window as the previous value.
            let bits = if sig <= 55 {
                (word << 2) >> (64 - sig)
            } else {
                stream.bits(pos + 2, sig)
            };
            pos += 2 + sig as usize;
            v ^= bits << trailing;
        } else {
            let new_leading = ((word >> 57) & 31) as u32;
            let new_sig = match ((word >> 51) & 63) as u32 {
                0 => 64,
                m => m,
            };
            if new_leading + new_sig > 64 {
                failure = Some(Failure::Window {
                    pos,
                    leading: new_leading,
                    sig: new_sig,
                });
                break;
            }
            sig = new_sig;
            trailing = 64 - new_leading - new_sig;
            let bits = if sig <= 44 {
                (word << 13) >> (64 - sig)
            } else {
                stream.bits(pos + 13, sig)
            };
            pos += 13 + sig as usize;
            v ^= bits << trailing;
        }
        if pos > end {
            failure = Some(Failure::Truncated);
            break;
        }
        *slot = (t, f64::from_bits(v));
        done += 1;
    }
    *state = Cursor {
        pos,
        t,
        v,
        t_delta,
        trailing,
        sig,
    };
    (done, failure)
}

#[cold]
#[inline(never)]
fn bad_window(pos: usize, leading: u32, sig: u32) -> DecodeError {
    DecodeError::new(
        2 + (pos / 8) as u64,
        format!("XOR value has {leading} leading zeros and {sig} significant bits"),
    )
}

#[cold]
#[inline(never)]
fn truncated(pos: usize) -> DecodeError {
    DecodeError::new(2 + (pos / 8) as u64, "unexpected end of chunk data")
}

/// Decodes sample 0 (varint timestamp, raw value) or 1 (uvarint delta, XOR'd value) at bit
/// `pos`; returns the new position, timestamp, value, timestamp delta and XOR window.
#[cold]
#[inline(never)]
fn first_samples(
    data: &[u8],
    read: u16,
    pos: usize,
    t: i64,
    mut v: f64,
    mut leading: u8,
    mut trailing: u8,
) -> Result<(usize, i64, f64, u64, u8, u8), DecodeError> {
    let mut r = BitReader::new(data, 2);
    r.consume(pos as u32)?;
    if read == 0 {
        let t = crate::encoding::zigzag_decode(read_uvarint_bytes(&mut r)?);
        let v = f64::from_bits(r.read_bits(64)?);
        Ok((r.position(), t, v, 0, leading, trailing))
    } else {
        let t_delta = read_uvarint_bytes(&mut r)?;
        xor_read(&mut r, &mut v, &mut leading, &mut trailing)?;
        Ok((
            r.position(),
            t.wrapping_add(t_delta as i64),
            v,
            t_delta,
            leading,
            trailing,
        ))
    }
}

fn read_uvarint_bytes(r: &mut BitReader<'_>) -> Result<u64, DecodeError> {
    let mut x: u64 = 0;
    let mut s: u32 = 0;
    for i in 0..10 {
        let b = r.read_byte()?;
        if b < 0x80 {
            if i == 9 && b > 1 {
                break;
            }
            return Ok(x | (u64::from(b) << s));
        }
        x |= u64::from(b & 0x7f) << s;
        s += 7;
    }
    Err(r.err("timestamp varint overflows 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Prometheus's XOR decoding, field by field with a checked bit reader: the reference the
    /// fast decoder must match on every input, garbage included. Returns the samples decoded
    /// before the first error and whether there was one.
    fn reference_decode(data: &[u8]) -> (Vec<(i64, u64)>, bool) {
        let mut out = Vec::new();
        let Some((head, rest)) = data.split_first_chunk::<2>() else {
            return (out, true);
        };
        let total = u16::from_be_bytes(*head);
        let mut r = BitReader::new(rest, 2);
        let (mut t, mut v, mut t_delta, mut leading, mut trailing) = (0i64, 0f64, 0u64, 0u8, 0u8);
        let mut step = |i: u16, r: &mut BitReader<'_>| -> Result<(i64, u64), DecodeError> {
            match i {
                0 => {
                    t = crate::encoding::zigzag_decode(read_uvarint_bytes(r)?);
                    v = f64::from_bits(r.read_bits(64)?);
                }
                1 => {
                    t_delta = read_uvarint_bytes(r)?;
                    t = t.wrapping_add(t_delta as i64);
                    xor_read(r, &mut v, &mut leading, &mut trailing)?;
                }
                _ => {
                    let mut ones = 0;
                    while ones < 4 && r.read_bit()? {
                        ones += 1;
                    }
                    let dod = match ones {
                        0 => 0,
                        4 => r.read_bits(64)?,
                        _ => {
                            let size = [14, 17, 20][ones - 1];
                            let bits = r.read_bits(size)?;
                            if bits > 1 << (size - 1) {
                                bits.wrapping_sub(1 << size)
                            } else {
                                bits
                            }
                        }
                    };
                    t_delta = t_delta.wrapping_add(dod);
                    t = t.wrapping_add(t_delta as i64);
                    xor_read(r, &mut v, &mut leading, &mut trailing)?;
                }
            }
            Ok((t, v.to_bits()))
        };
        for i in 0..total {
            match step(i, &mut r) {
                Ok(s) => out.push(s),
                Err(_) => return (out, true),
            }
        }
        (out, false)
    }

    /// Decodes with `next_sample`, `next_batch` or a mix, as `(samples, error seen)`.
    fn fast_decode(data: &[u8], mode: u8) -> (Vec<(i64, u64)>, bool) {
        let mut out = Vec::new();
        let Ok(mut it) = XorIterator::new(data) else {
            return (out, true);
        };
        let mut round = 0u32;
        loop {
            round += 1;
            if mode == 0 || (mode == 2 && round.is_multiple_of(3)) {
                match it.next_sample() {
                    Ok(Some((t, v))) => {
                        assert_eq!(it.at().0, t);
                        out.push((t, v.to_bits()));
                    }
                    Ok(None) => return (out, false),
                    Err(_) => {
                        assert_eq!(it.next_sample(), Ok(None), "nothing after an error");
                        return (out, true);
                    }
                }
            } else {
                match it.next_batch() {
                    Ok([]) => return (out, false),
                    Ok(b) => out.extend(b.iter().map(|&(t, v)| (t, v.to_bits()))),
                    Err(_) => {
                        assert_eq!(it.next_sample(), Ok(None), "nothing after an error");
                        return (out, true);
                    }
                }
            }
        }
    }

    fn sample_strategy() -> impl Strategy<Value = Vec<(i64, f64)>> {
        let step = prop_oneof![
            4 => Just(15_000i64),
            4 => 14_990i64..15_010,
            1 => 0i64..100_000,
            1 => 0i64..(1 << 40),
        ];
        let value = prop_oneof![
            Just(f64::NAN),
            -1e3f64..1e3,
            (0u32..1000).prop_map(f64::from),
            any::<u64>().prop_map(f64::from_bits),
        ];
        (any::<i64>(), proptest::collection::vec((step, value), 0..300)).prop_map(|(start, steps)| {
            let mut t = start / 2;
            steps
                .into_iter()
                .map(|(d, v)| {
                    t = t.wrapping_add(d);
                    (t, v)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn fast_decoder_round_trips(samples in sample_strategy(), mode in 0u8..3) {
            let mut a = XorAppender::new();
            for &(t, v) in &samples {
                a.append(t, v);
            }
            let bytes = a.into_bytes();
            let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            prop_assert_eq!(reference_decode(&bytes), (want.clone(), false));
            prop_assert_eq!(fast_decode(&bytes, mode), (want, false));
        }

        #[test]
        fn fast_decoder_matches_reference_on_damaged_chunks(
            samples in sample_strategy(),
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..4),
            count in proptest::option::of(any::<u16>()),
            mode in 0u8..3,
        ) {
            let mut a = XorAppender::new();
            for &(t, v) in &samples {
                a.append(t, v);
            }
            let mut bytes = a.into_bytes();
            for (i, bit) in flips {
                let i = i.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
            if let Some(c) = count {
                bytes[..2].copy_from_slice(&c.to_be_bytes());
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            prop_assert_eq!(fast_decode(&bytes, mode), reference_decode(&bytes));
        }

        #[test]
        fn fast_decoder_matches_reference_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..200), mode in 0u8..3) {
            prop_assert_eq!(fast_decode(&bytes, mode), reference_decode(&bytes));
        }
    }

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
    fn nothing_after_an_error_not_even_by_seek() {
        let mut a = XorAppender::new();
        for i in 0..100 {
            a.append(i * 15_000 + i % 3, (i * i) as f64);
        }
        let b = a.into_bytes();
        let mut it = XorIterator::new(&b[..b.len() / 2]).unwrap();
        let mut good = 0;
        while let Ok(Some(_)) = it.next_sample() {
            good += 1;
        }
        assert!(good > 10 && good < 100, "{good}");
        assert_eq!(it.seek(i64::MIN), Ok(None));
        assert_eq!(it.next_batch(), Ok(&[][..]));
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
