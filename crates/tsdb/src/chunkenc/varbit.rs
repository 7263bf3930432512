//! Variable bit-width integers used by histogram chunks (`varbit.go`).

use super::bstream::{BitReader, BitWriter};
use crate::error::DecodeError;

/// Whether `x` fits the signed range of an `nbits` field: `-(2^(n-1)-1) <= x <= 2^(n-1)`.
#[inline]
pub fn bit_range(x: i64, nbits: u32) -> bool {
    let lim = 1i64 << (nbits - 1);
    -(lim - 1) <= x && x <= lim
}

const INT_BUCKETS: [(u32, u64, u32); 8] = [
    (3, 0b10, 2),
    (6, 0b110, 3),
    (9, 0b1110, 4),
    (12, 0b11110, 5),
    (18, 0b111110, 6),
    (25, 0b1111110, 7),
    (56, 0b11111110, 8),
    (64, 0b11111111, 8),
];

pub fn put_varbit_int(w: &mut BitWriter, v: i64) {
    if v == 0 {
        w.write_bit(false);
        return;
    }
    for &(size, prefix, plen) in &INT_BUCKETS {
        if size == 64 || bit_range(v, size) {
            w.write_bits(prefix, plen);
            w.write_bits(v as u64, size);
            return;
        }
    }
}

pub fn put_varbit_uint(w: &mut BitWriter, v: u64) {
    if v == 0 {
        w.write_bit(false);
        return;
    }
    for &(size, prefix, plen) in &INT_BUCKETS {
        if size == 64 || v.leading_zeros() >= 64 - size {
            w.write_bits(prefix, plen);
            w.write_bits(v, size);
            return;
        }
    }
}

/// Reads the unary prefix (up to 8 ones) and returns the payload size, or None for value 0.
#[inline]
fn read_prefix(r: &mut BitReader<'_>) -> Result<Option<u32>, DecodeError> {
    let mut ones = 0u32;
    while ones < 8 {
        if !r.read_bit()? {
            break;
        }
        ones += 1;
    }
    Ok(match ones {
        0 => None,
        1 => Some(3),
        2 => Some(6),
        3 => Some(9),
        4 => Some(12),
        5 => Some(18),
        6 => Some(25),
        7 => Some(56),
        _ => Some(64),
    })
}

pub fn read_varbit_int(r: &mut BitReader<'_>) -> Result<i64, DecodeError> {
    let Some(size) = read_prefix(r)? else {
        return Ok(0);
    };
    let bits = r.read_bits(size)?;
    if size == 64 {
        return Ok(bits as i64);
    }
    if bits > (1u64 << (size - 1)) {
        Ok(bits.wrapping_sub(1u64 << size) as i64)
    } else {
        Ok(bits as i64)
    }
}

pub fn read_varbit_uint(r: &mut BitReader<'_>) -> Result<u64, DecodeError> {
    let Some(size) = read_prefix(r)? else {
        return Ok(0);
    };
    r.read_bits(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varbit_round_trip() {
        let ints = [
            0i64,
            1,
            -1,
            4,
            -3,
            5,
            32,
            -31,
            33,
            256,
            -255,
            2048,
            131072,
            16777216,
            1 << 55,
            i64::MIN,
            i64::MAX,
        ];
        let uints = [0u64, 1, 7, 8, 63, 64, 511, 4095, 1 << 18, 1 << 25, 1 << 56, u64::MAX];
        let mut w = BitWriter::default();
        for &v in &ints {
            put_varbit_int(&mut w, v);
        }
        for &v in &uints {
            put_varbit_uint(&mut w, v);
        }
        let b = w.into_bytes();
        let mut r = BitReader::new(&b, 0);
        for &v in &ints {
            assert_eq!(read_varbit_int(&mut r).unwrap(), v);
        }
        for &v in &uints {
            assert_eq!(read_varbit_uint(&mut r).unwrap(), v);
        }
    }
}
