//! XOR chunks (encoding 1): Gorilla-style delta-of-delta timestamps and XOR'd values,
//! with Prometheus's millisecond-sized timestamp buckets.

use super::bstream::{BitReader, BitWriter};
use std::hint::cold_path;

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

/// Samples decoded per batch: the iterator decodes this many in one tight loop (state in
/// registers, no per-sample Result/Option) and hands them out one by one or as a slice.
const BATCH: usize = 64;

/// Decodes an XOR chunk sample by sample.
///
/// Samples are decoded [`XorIterator::BATCH`] at a time (`decode_batch`) into `buf`, and
/// handed out one by one ([`XorIterator::next_sample`]) or as a slice
/// ([`XorIterator::next_batch`]). The loop that decodes them (`run`) keeps its whole state
/// in registers and reads each sample from one 8-byte load at its bit position. The usual
/// samples of scraped series (timestamp delta of delta 0 or within 14 bits, value unchanged
/// or in the previous XOR window) are recognised with one test of the word's top bits and
/// decoded with constant shifts, so their branches predict well and the position of the next
/// sample depends on no load. Other samples take per-bucket branches in the same loop; the
/// first two samples, 64-bit deltas of delta and damaged data go through `slow_sample`,
/// which reads field by field.
#[derive(Clone, Debug)]
pub struct XorIterator<'a> {
    /// Chunk data after the 2-byte sample count.
    stream: Stream<'a>,
    total: u16,
    /// Samples decoded so far (including the buffered ones).
    decoded: u16,
    /// Reader and sample state after the last decoded sample.
    cur: Cursor,
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
            total: u16::from_be_bytes([*a, *b]),
            decoded: 0,
            cur: Cursor::START,
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
            Some(i) if self.len > 0 => self.buf[i % BATCH],
            _ => (self.cur.t, f64::from_bits(self.cur.v)),
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
        if self.error.is_none() && self.decoded < self.total {
            self.len = self.decode_batch() as u8;
        }
        if self.len == 0
            && let Some(e) = self.error.take()
        {
            self.total = self.decoded;
            return Err(e);
        }
        Ok(())
    }

    /// Decodes up to [`BATCH`] samples into `buf`; returns how many. Sets `error` when
    /// decoding stopped at a bad sample.
    fn decode_batch(&mut self) -> usize {
        let want = usize::from(self.total - self.decoded).min(BATCH);
        let stream = &self.stream;
        let mut cur = self.cur;
        let mut done = 0;
        let mut failure = None;
        while done < want {
            let index = self.decoded as usize + done;
            let out = &mut self.buf[done..want];
            let ran = if index < 2 {
                if let Some(next) = first_sample(stream, index, cur) {
                    cur = next;
                    if let Some(slot) = self.buf.get_mut(done) {
                        *slot = (cur.t, f64::from_bits(cur.v));
                    }
                    done += 1;
                    continue;
                }
                Ran {
                    count: 0,
                    stop: Stop::Slow,
                }
            } else if cur.pos / 8 + 8 <= stream.data.len() {
                let ran;
                (ran, cur) = run::<false>(stream, stream.data, 0, cur, out);
                ran
            } else {
                let ran;
                (ran, cur) = run::<true>(stream, &stream.padded, stream.data.len().wrapping_sub(8), cur, out);
                ran
            };
            done += ran.count;
            match ran.stop {
                Stop::Full | Stop::Refill => {}
                Stop::Slow | Stop::SlowValue => {
                    match slow_sample(stream, index + ran.count, matches!(ran.stop, Stop::SlowValue), cur) {
                        Ok(next) => {
                            cur = next;
                            if let Some(slot) = self.buf.get_mut(done) {
                                *slot = (cur.t, f64::from_bits(cur.v));
                            }
                            done += 1;
                        }
                        Err(f) => {
                            failure = Some(f);
                            break;
                        }
                    }
                }
                Stop::Failed(f) => {
                    failure = Some(f);
                    break;
                }
            }
        }
        if let Some(f) = failure {
            self.error = Some(f.into_error());
        }
        // After an error the state is garbage, but nothing is decoded past an error.
        self.cur = cur;
        self.decoded += done as u16;
        done
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

/// The decoder state between samples: the bit position of the next sample and the last sample.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    pos: usize,
    t: i64,
    t_delta: u64,
    v: u64,
    /// The XOR window of the previous value: `win` is `leading | wlen << 8`, where its bits
    /// start `leading` bits from the top and `wlen` is 2 + its width (the length of a "10"
    /// value); `mask` keeps the bits above its trailing zeros. One register for two numbers:
    /// x86 shifts use the low 6 bits of the count, so shifting by `win` shifts by `leading`.
    win: u32,
    mask: u64,
}

/// [`Cursor::win`] of a window.
#[inline(always)]
fn window(leading: u32, sig: u32) -> u32 {
    leading | (2 + sig) << 8
}

impl Cursor {
    /// Before the first sample: Prometheus starts with a window of 0 leading and 0 trailing zeros.
    const START: Cursor = Cursor {
        pos: 0,
        t: 0,
        t_delta: 0,
        v: 0,
        win: 66 << 8,
        mask: u64::MAX,
    };

    /// Trailing zeros and width of the XOR window.
    fn window(&self) -> (u32, u32) {
        let (leading, sig) = (self.win & 0xff, (self.win >> 8) - 2);
        (64 - leading - sig, sig)
    }

    fn set_window(&mut self, leading: u32, sig: u32) {
        self.win = window(leading, sig);
        self.mask = u64::MAX.wrapping_shl(64 - leading - sig);
    }
}

#[derive(Clone, Copy, Debug)]
enum Failure {
    Window { pos: usize, leading: u32, sig: u32 },
    Truncated { pos: usize },
    VarintOverflow { pos: usize },
}

impl Failure {
    #[cold]
    #[inline(never)]
    fn into_error(self) -> DecodeError {
        // Offsets count the chunk's 2-byte header.
        match self {
            Failure::Window { pos, leading, sig } => DecodeError::new(
                2 + (pos / 8) as u64,
                format!("XOR value has {leading} leading zeros and {sig} significant bits"),
            ),
            Failure::Truncated { pos } => DecodeError::new(2 + (pos / 8) as u64, "unexpected end of chunk data"),
            Failure::VarintOverflow { pos } => {
                DecodeError::new(2 + (pos / 8) as u64, "timestamp varint overflows 64 bits")
            }
        }
    }
}

/// Why [`run`] returned.
enum Stop {
    /// `out` is full.
    Full,
    /// The next sample needs [`slow_sample`].
    Slow,
    /// The next sample's timestamp is decoded, its value needs [`slow_sample`].
    SlowValue,
    /// The main loop is within 8 bytes of the end: go on with the padded tail.
    Refill,
    Failed(Failure),
}

struct Ran {
    count: usize,
    stop: Stop,
}

/// Bytes of zero padding after the copy of the data's last 8 bytes in [`Stream::padded`].
const PAD: usize = 16;

/// The chunk data, and its last bytes again in a zero-padded array, so that 8-byte loads
/// near the end need no copy loop.
#[derive(Clone, Debug)]
struct Stream<'a> {
    data: &'a [u8],
    /// `padded[i]` is byte `len - 8 + i` of the data, zero outside it.
    padded: [u8; 8 + PAD],
}

impl<'a> Stream<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut padded = [0u8; 8 + PAD];
        match data.last_chunk::<8>() {
            Some(last) => padded[..8].copy_from_slice(last),
            None => padded[8 - data.len()..8].copy_from_slice(data),
        }
        Stream { data, padded }
    }

    /// The 8 bytes at byte `byte` as a big-endian word, zero past the end.
    #[inline(always)]
    fn word(&self, byte: usize) -> u64 {
        let chunk = match self.data.get(byte..) {
            Some(rest) if rest.len() >= 8 => rest.first_chunk::<8>(),
            _ => (byte + 8)
                .checked_sub(self.data.len())
                .and_then(|i| self.padded.get(i..))
                .and_then(|p| p.first_chunk::<8>()),
        };
        chunk.map_or(0, |c| u64::from_be_bytes(*c))
    }

    /// The 64 bits starting at bit `pos`, zero past the end; only the top 57 are certain to
    /// come from the stream (the load is byte aligned), the others are zero.
    #[inline(always)]
    fn peek(&self, pos: usize) -> u64 {
        self.word(pos >> 3) << (pos & 7)
    }

    /// `n` bits (1..=64) at bit `pos`, right aligned.
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

/// A delta of delta whose `size` bits are left aligned in `x` (lower bits: whatever follows).
/// Prometheus's buckets hold -2^(size-1)+1 ..= 2^(size-1), so the pattern 2^(size-1) is
/// positive: subtracting one, sign-extending and adding one back gets that without a branch.
#[inline(always)]
fn bucket_dod(x: u64, size: u32) -> u64 {
    ((x.wrapping_sub(1 << (64 - size)) as i64 >> (64 - size)) as u64).wrapping_add(1)
}

/// Decodes samples (from the third on) into `out`; returns how many and why it stopped,
/// with the state after the last one.
///
/// Each sample starts with one big-endian 8-byte load at its bit position, whose top 57 bits
/// usually hold the whole sample: timestamp prefix and delta of delta, then value control
/// bits, header and bits, all taken with shifts from that word. Wider values read again.
///
/// `src` holds stream bytes from byte `base` on: without `TAIL` it is the data (`base` 0) and
/// the loop returns when the 8 bytes at the position are not all data; with `TAIL` it is
/// [`Stream::padded`] and each sample is checked against the end of the data. Without
/// `TAIL`, a sample that fits the first load cannot reach past the end.
///
/// Plain values in and out keep the state in registers.
#[inline(never)]
fn run<const TAIL: bool>(
    stream: &Stream<'_>,
    src: &[u8],
    base: usize,
    cur: Cursor,
    out: &mut [(i64, f64)],
) -> (Ran, Cursor) {
    let Cursor {
        mut pos,
        mut t,
        mut t_delta,
        mut v,
        mut win,
        mut mask,
    } = cur;
    // The value of a sample whose timestamp took `$d` bits, from `$x`, the rest of the
    // sample's first load (57 - $d bits of it come from the stream): 0 (unchanged), 10 and
    // the bits of the previous window, or 11, 5 bits of leading zeros, 6 of width, and the
    // bits. The bits are XOR'd in place with a shift and a mask kept per window. Evaluates
    // to the value's length; leaves the loop with a reason if the sample cannot be decoded
    // here. A macro, so that each timestamp bucket gets constant shifts.
    macro_rules! value {
        ($x:expr, $d:expr) => {{
            const D: u32 = $d;
            let x: u64 = $x;
            if (x as i64) >= 0 {
                1
            } else if x < 0b11 << 62 {
                let wlen = win >> 8;
                let bits = if wlen <= 57 - D {
                    x << 2
                } else {
                    cold_path();
                    match wide_field(stream, pos + D as usize + 2, wlen - 2) {
                        Some(bits) => bits,
                        None => break Stop::Failed(Failure::Truncated { pos }),
                    }
                };
                v ^= bits.wrapping_shr(win) & mask;
                wlen
            } else {
                let new_leading = ((x >> 57) & 31) as u32;
                let sig = match ((x >> 51) & 63) as u32 {
                    0 => 64,
                    m => m,
                };
                if new_leading + sig > 64 {
                    // A window past bit 0: the slow path reports it.
                    cold_path();
                    pos += D as usize;
                    break Stop::SlowValue;
                }
                win = window(new_leading, sig);
                mask = u64::MAX << (64 - new_leading - sig);
                let bits = if 13 + sig <= 57 - D {
                    x << 13
                } else {
                    cold_path();
                    match wide_field(stream, pos + D as usize + 13, sig) {
                        Some(bits) => bits,
                        None => break Stop::Failed(Failure::Truncated { pos }),
                    }
                };
                v ^= (bits >> new_leading) & mask;
                13 + sig
            }
        }};
    }

    let mut i = 0;
    // Stores the sample decoded up to `pos`; in the tail, only if it ends within the data.
    macro_rules! done {
        () => {
            if TAIL && pos > stream.data.len() * 8 {
                cold_path();
                break Stop::Failed(Failure::Truncated { pos });
            }
            out[i] = (t, f64::from_bits(v));
            i += 1;
        };
    }

    let stop = loop {
        if i >= out.len() {
            break Stop::Full;
        }
        let byte = (pos >> 3).wrapping_sub(base);
        let Some(word) = src.get(byte..).and_then(|r| r.first_chunk::<8>()) else {
            // Main loop: on to the padded tail. Tail: only reachable past the end.
            cold_path();
            break if TAIL {
                Stop::Failed(Failure::Truncated { pos })
            } else {
                Stop::Refill
            };
        };
        let w = u64::from_be_bytes(*word) << (pos & 7);

        // The usual sample of a scraped series first, in one test of prefix 10 and value
        // control bits 10: a delta of delta in 14 bits and a value in the previous window.
        if (w >> 46) & 0x3_0003 == 0x2_0002 && win < (57 - 16 + 1) << 8 {
            t_delta = t_delta.wrapping_add(bucket_dod(w << 2, 14));
            t = t.wrapping_add(t_delta as i64);
            v ^= (w << 18).wrapping_shr(win) & mask;
            pos += 16 + (win >> 8) as usize;
            done!();
            continue;
        }
        // Same timestamp delta, same value: two zero bits.
        if w < 1 << 62 {
            t = t.wrapping_add(t_delta as i64);
            pos += 2;
            done!();
            continue;
        }
        // Same timestamp delta, a value in the previous window (aligned scrape timestamps).
        if w >> 61 == 0b010 && win < (57 - 1 + 1) << 8 {
            t = t.wrapping_add(t_delta as i64);
            v ^= (w << 3).wrapping_shr(win) & mask;
            pos += 1 + (win >> 8) as usize;
            done!();
            continue;
        }

        // Timestamp: 0, or 10/110/1110 and a 14/17/20-bit delta of delta (1111: 64 bits, slow).
        // The timestamp is complete before the value, which may go to the slow path.
        let n = if (w as i64) >= 0 {
            t = t.wrapping_add(t_delta as i64);
            1 + value!(w << 1, 1)
        } else if w < 0b11 << 62 {
            t_delta = t_delta.wrapping_add(bucket_dod(w << 2, 14));
            t = t.wrapping_add(t_delta as i64);
            16 + value!(w << 16, 16)
        } else if w < 0b111 << 61 {
            cold_path();
            t_delta = t_delta.wrapping_add(bucket_dod(w << 3, 17));
            t = t.wrapping_add(t_delta as i64);
            20 + value!(w << 20, 20)
        } else if w < 0b1111 << 60 {
            cold_path();
            t_delta = t_delta.wrapping_add(bucket_dod(w << 4, 20));
            t = t.wrapping_add(t_delta as i64);
            24 + value!(w << 24, 24)
        } else {
            cold_path();
            break Stop::Slow;
        };
        pos += n as usize;
        done!();
    };
    (
        Ran { count: i, stop },
        Cursor {
            pos,
            t,
            t_delta,
            v,
            win,
            mask,
        },
    )
}

/// The 64 bits at bit `pos`, for a value wider than what is left of the sample's first load,
/// if the `n` of them the value needs end within the data. Inline: a call in [`run`]'s loop
/// would force its state into the few callee-saved registers.
#[inline(always)]
fn wide_field(stream: &Stream<'_>, pos: usize, n: u32) -> Option<u64> {
    (pos + n as usize <= stream.data.len() * 8)
        .then(|| (stream.peek(pos) & (u64::MAX << 32)) | (stream.peek(pos + 32) >> 32))
}

/// Sample 0 (varint timestamp, raw value) or 1 (uvarint delta, XOR'd value) straight from
/// the bytes: both start on a byte boundary. None when anything is unusual (a 10-byte varint,
/// a value wider than one load, the end of the data near), for [`slow_sample`] to decode or
/// report.
#[inline(always)]
fn first_sample(stream: &Stream<'_>, index: usize, mut cur: Cursor) -> Option<Cursor> {
    let start = cur.pos / 8;
    let (x, len) = short_uvarint(stream.data.get(start..)?)?;
    let pos = (start + len) * 8;
    if index == 0 {
        let v = stream.data.get(start + len..)?.first_chunk::<8>()?;
        cur.t = crate::encoding::zigzag_decode(x);
        cur.v = u64::from_be_bytes(*v);
        cur.pos = pos + 64;
        return Some(cur);
    }
    cur.t_delta = x;
    cur.t = cur.t.wrapping_add(x as i64);
    let w = stream.peek(pos);
    let n = if (w as i64) >= 0 {
        1
    } else if w < 0b11 << 62 {
        // The window before sample 1 is 0 leading and 0 trailing zeros: 64 bits.
        return None;
    } else {
        let leading = ((w >> 57) & 31) as u32;
        let sig = ((w >> 51) & 63) as u32;
        if sig == 0 || leading + sig > 64 || 13 + sig > 57 {
            return None;
        }
        cur.set_window(leading, sig);
        cur.v ^= ((w << 13) >> leading) & cur.mask;
        13 + sig as usize
    };
    cur.pos = pos + n;
    (cur.pos <= stream.data.len() * 8).then_some(cur)
}

/// A uvarint of at most 9 bytes (63 bits: no overflow to check) and its length.
#[inline(always)]
fn short_uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &b) in bytes.iter().take(9).enumerate() {
        x |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

/// Reads fields at a bit position, each checked against the end of the data.
struct FieldReader<'s, 'a> {
    stream: &'s Stream<'a>,
    pos: usize,
}

impl FieldReader<'_, '_> {
    /// `n` bits (1..=64).
    fn read(&mut self, n: u32) -> Result<u64, Failure> {
        if self.pos + n as usize > self.stream.data.len() * 8 {
            return Err(Failure::Truncated { pos: self.pos });
        }
        let x = self.stream.bits(self.pos, n);
        self.pos += n as usize;
        Ok(x)
    }

    /// A uvarint in whole bytes, as Go's `binary.ReadUvarint` (at most 10 bytes, no overflow).
    fn uvarint(&mut self) -> Result<u64, Failure> {
        let start = self.pos;
        let mut x = 0u64;
        for i in 0..10 {
            let b = self.read(8)?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    break;
                }
                return Ok(x | (b << (7 * i)));
            }
            x |= (b & 0x7f) << (7 * i);
        }
        Err(Failure::VarintOverflow { pos: start })
    }

    /// An XOR'd value into `cur` (its `v` and window).
    fn value(&mut self, cur: &mut Cursor) -> Result<(), Failure> {
        if self.read(1)? == 0 {
            return Ok(());
        }
        let start = self.pos - 1;
        if self.read(1)? == 1 {
            let leading = self.read(5)? as u32;
            let sig = match self.read(6)? as u32 {
                0 => 64,
                m => m,
            };
            if leading + sig > 64 {
                return Err(Failure::Window {
                    pos: start,
                    leading,
                    sig,
                });
            }
            cur.set_window(leading, sig);
        }
        let (trailing, sig) = cur.window();
        cur.v ^= self.read(sig)? << trailing;
        Ok(())
    }
}

/// Decodes one sample field by field: sample 0 (varint timestamp, raw value) or 1 (uvarint
/// delta, XOR'd value) when [`first_sample`] declines, a later sample that [`run`] leaves
/// (64-bit delta of delta), or only its value (`value_only`: [`run`] did the timestamp and
/// found a window past bit 0, which this reports).
/// Returns the state after it, its reader at the next sample.
#[cold]
#[inline(never)]
fn slow_sample(stream: &Stream<'_>, index: usize, value_only: bool, mut cur: Cursor) -> Result<Cursor, Failure> {
    let mut r = FieldReader { stream, pos: cur.pos };
    match index {
        _ if value_only => r.value(&mut cur)?,
        0 => {
            cur.t = crate::encoding::zigzag_decode(r.uvarint()?);
            cur.v = r.read(64)?;
        }
        1 => {
            cur.t_delta = r.uvarint()?;
            cur.t = cur.t.wrapping_add(cur.t_delta as i64);
            r.value(&mut cur)?;
        }
        _ => {
            let mut ones = 0;
            while ones < 4 && r.read(1)? == 1 {
                ones += 1;
            }
            let dod = match ones {
                0 => 0,
                1 => bucket_dod(r.read(14)? << 50, 14),
                2 => bucket_dod(r.read(17)? << 47, 17),
                3 => bucket_dod(r.read(20)? << 44, 20),
                _ => r.read(64)?,
            };
            cur.t_delta = cur.t_delta.wrapping_add(dod);
            cur.t = cur.t.wrapping_add(cur.t_delta as i64);
            r.value(&mut cur)?;
        }
    }
    cur.pos = r.pos;
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

        /// Timestamp deltas at the edges of every bucket (64-bit ones included) and values
        /// whose XOR windows have every width at every offset, so that fields fall on both
        /// sides of what one 8-byte load holds; then the chunk cut anywhere.
        #[test]
        fn fast_decoder_matches_reference_on_edge_fields(
            samples in edge_strategy(),
            cut in any::<prop::sample::Index>(),
            mode in 0u8..3,
        ) {
            let bytes = encode(&samples);
            let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            prop_assert_eq!(reference_decode(&bytes), (want.clone(), false));
            prop_assert_eq!(fast_decode(&bytes, mode), (want, false));
            let cut = &bytes[..cut.index(bytes.len() + 1)];
            prop_assert_eq!(fast_decode(cut, mode), reference_decode(cut));
        }
    }

    fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut a = XorAppender::new();
        for &(t, v) in samples {
            a.append(t, v);
        }
        a.into_bytes()
    }

    /// Deltas of delta on bucket edges (Prometheus's buckets are -2^(n-1)+1 ..= 2^(n-1) for
    /// n = 14, 17, 20; beyond, 64 bits), mixed with plain steps; values that differ from the
    /// previous one in a run of `width` bits ending `shift` bits above bit 0, or not at all, or NaN.
    fn edge_strategy() -> impl Strategy<Value = Vec<(i64, f64)>> {
        let edges: Vec<i64> = [0i64, 1, 13, 16, 19, 30, 40, 62]
            .iter()
            .flat_map(|&b| {
                let e = 1i64 << b;
                [e - 1, e, e + 1, -e + 1, -e, -e - 1]
            })
            .chain([i64::MAX / 4, i64::MIN / 4])
            .collect();
        let dod = prop_oneof![
            2 => Just(0i64),
            4 => proptest::sample::select(edges),
            1 => any::<i64>().prop_map(|d| d >> 2),
        ];
        let change = prop_oneof![
            2 => Just(None),
            1 => Just(Some(u64::MAX)),
            8 => (1u32..=64, 0u32..64, any::<u64>()).prop_map(|(width, shift, bits)| {
                let field = if width == 64 { bits } else { bits & ((1 << width) - 1) } | 1 << (width - 1);
                Some(field.checked_shl(shift).unwrap_or(0) | 1 << shift.min(63))
            }),
        ];
        (
            any::<i64>(),
            0i64..100_000,
            proptest::collection::vec((dod, change), 0..200),
        )
            .prop_map(|(start, step, steps)| {
                let (mut t, mut delta, mut v) = (start / 4, step, 0x4059_0000_0000_0000u64);
                steps
                    .into_iter()
                    .map(|(dod, change)| {
                        delta = delta.wrapping_add(dod);
                        t = t.wrapping_add(delta);
                        v = match change {
                            None => v,
                            Some(u64::MAX) => f64::NAN.to_bits(),
                            Some(x) => v ^ x,
                        };
                        (t, f64::from_bits(v))
                    })
                    .collect()
            })
    }

    /// Every cut of chunks that exercise the tail of the data: realistic scrapes, wide values
    /// and 64-bit deltas of delta.
    #[test]
    fn fast_decoder_matches_reference_at_every_cut() {
        let mut seed = 7u64;
        let mut rnd = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        let mut chunks = Vec::new();
        let mut v = 100.0;
        let scrape: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                v += (rnd() % 21) as f64 - 10.0;
                (1_700_000_000_000 + i * 15_000 + (rnd() % 5) as i64, v)
            })
            .collect();
        chunks.push(encode(&scrape));
        let wide: Vec<(i64, f64)> = (0..60)
            .map(|i| (i * 1000 + (rnd() % 3) as i64, f64::from_bits(rnd() << 31 ^ rnd())))
            .collect();
        chunks.push(encode(&wide));
        let jumps: Vec<(i64, f64)> = (0..40)
            .map(|i| ((i * i * i) << 30, if i % 3 == 0 { f64::NAN } else { i as f64 }))
            .collect();
        chunks.push(encode(&jumps));
        for bytes in &chunks {
            for cut in 0..=bytes.len() {
                for mode in 0..3 {
                    assert_eq!(
                        fast_decode(&bytes[..cut], mode),
                        reference_decode(&bytes[..cut]),
                        "cut at {cut} of {}",
                        bytes.len()
                    );
                }
            }
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
