#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hypnos_tsdb::fuzz::fuzz_block_files(data));
