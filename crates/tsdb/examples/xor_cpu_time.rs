//! CPU time per sample of XOR decode and encode, for the "≤ 3 ns/sample" target on a shared machine:
//! per-thread CPU time from `/proc/thread-self/schedstat` (Linux) does not count time spent waiting for
//! the CPU, so other builds on the machine inflate it far less than wall time.
//!
//! `cargo run --release -p hypnos-tsdb --example xor_cpu_time [ROUNDS]` (default 200000 rounds of the
//! criterion bench's 120-sample chunk, and of a regular one). With `valgrind --tool=callgrind` use few
//! rounds (e.g. 2000) and divide the inclusive instruction count of `decode_round`,
//! `decode_batch_round`, `decode_regular_round` or `encode_round` by rounds × 120.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use hypnos_tsdb::chunkenc::{XorAppender, XorIterator};

/// The same 120 samples as `benches/tsdb.rs`: 15 s apart with millisecond jitter, a wandering gauge.
fn realistic_samples() -> Vec<(i64, f64)> {
    let mut seed = 7u64;
    let mut rnd = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut v = 100.0f64;
    (0..120)
        .map(|i| {
            v += (rnd() % 21) as f64 - 10.0;
            (1_700_000_000_000 + i * 15_000 + (rnd() % 5) as i64, v)
        })
        .collect()
}

/// 120 samples at exact 15 s steps of one constant value: 2 bits per sample, every branch
/// predictable; the floor of the per-sample cost.
fn regular_samples() -> Vec<(i64, f64)> {
    (0..120).map(|i| (1_700_000_000_000 + i * 15_000, 42.0)).collect()
}

/// Nanoseconds this thread has run on a CPU (first field of schedstat).
fn thread_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("needs Linux /proc/thread-self/schedstat");
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// Hands every sample to `black_box`: measures the decoder, not what a caller does with samples.
#[inline(never)]
fn decode_round(chunk: &[u8]) -> usize {
    let mut it = XorIterator::new(black_box(chunk)).unwrap();
    let mut n = 0;
    while let Some(s) = it.next_sample().unwrap() {
        black_box(s);
        n += 1;
    }
    n
}

/// Takes the samples a batch at a time ([`XorIterator::next_batch`]).
#[inline(never)]
fn decode_batch_round(chunk: &[u8]) -> usize {
    batches(chunk)
}

/// The same for the regular chunk: a function of its own (not merged with the one above: the
/// `black_box` differs) for per-function instruction counts.
#[inline(never)]
fn decode_regular_round(chunk: &[u8]) -> usize {
    batches(chunk) + black_box(0)
}

#[inline(always)]
fn batches(chunk: &[u8]) -> usize {
    let mut it = XorIterator::new(black_box(chunk)).unwrap();
    let mut n = 0;
    loop {
        let batch = it.next_batch().unwrap();
        if batch.is_empty() {
            return n;
        }
        for s in batch {
            black_box(s);
        }
        n += batch.len();
    }
}

/// Sums the values, as the criterion bench once did: a 4-cycle floating-point add chain per
/// sample that the compiler keeps in a stack slot across the decoder's out-of-line calls.
#[inline(never)]
fn decode_sum_round(chunk: &[u8]) -> f64 {
    let mut it = XorIterator::new(black_box(chunk)).unwrap();
    let mut sum = 0.0;
    while let Some((_, v)) = it.next_sample().unwrap() {
        sum += v;
    }
    sum
}

#[inline(never)]
fn encode_round(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut a = XorAppender::new();
    for &(t, v) in black_box(samples) {
        a.append(t, v);
    }
    a.into_bytes()
}

fn main() {
    let rounds: u64 = std::env::args().nth(1).map(|a| a.parse().unwrap()).unwrap_or(200_000);
    let samples = realistic_samples();
    let chunk = encode_round(&samples);
    let n = rounds as f64 * samples.len() as f64;

    let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
    let mut count = 0;
    for _ in 0..rounds {
        count += decode_round(&chunk);
    }
    let (cpu, wall) = (thread_cpu_ns() - cpu0, wall0.elapsed());
    assert_eq!(count as f64, n);
    println!(
        "decode: {:.2} ns/sample CPU time, {:.2} ns/sample wall ({rounds} rounds × {} samples, chunk {} bytes)",
        cpu as f64 / n,
        wall.as_nanos() as f64 / n,
        samples.len(),
        chunk.len()
    );

    let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
    let mut count = 0;
    for _ in 0..rounds {
        count += decode_batch_round(&chunk);
    }
    let (cpu, wall) = (thread_cpu_ns() - cpu0, wall0.elapsed());
    assert_eq!(count as f64, n);
    println!(
        "decode with next_batch: {:.2} ns/sample CPU time, {:.2} ns/sample wall",
        cpu as f64 / n,
        wall.as_nanos() as f64 / n
    );

    let regular = encode_round(&regular_samples());
    let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
    let mut count = 0;
    for _ in 0..rounds {
        count += decode_regular_round(&regular);
    }
    let (cpu, wall) = (thread_cpu_ns() - cpu0, wall0.elapsed());
    assert_eq!(count as f64, n);
    println!(
        "decode a regular chunk (15 s steps, constant value) with next_batch: {:.2} ns/sample CPU time, {:.2} ns/sample wall",
        cpu as f64 / n,
        wall.as_nanos() as f64 / n
    );

    let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
    let mut sum = 0.0;
    for _ in 0..rounds {
        sum += decode_sum_round(&chunk);
    }
    let (cpu, wall) = (thread_cpu_ns() - cpu0, wall0.elapsed());
    black_box(sum);
    println!(
        "decode and sum the values: {:.2} ns/sample CPU time, {:.2} ns/sample wall",
        cpu as f64 / n,
        wall.as_nanos() as f64 / n
    );

    let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
    let mut bytes = 0;
    for _ in 0..rounds {
        bytes += encode_round(&samples).len();
    }
    let (cpu, wall) = (thread_cpu_ns() - cpu0, wall0.elapsed());
    black_box(bytes);
    println!(
        "encode: {:.2} ns/sample CPU time, {:.2} ns/sample wall",
        cpu as f64 / n,
        wall.as_nanos() as f64 / n
    );
}
