//! Link options of the `hypnos` executable.
//!
//! **Linked at a fixed address (`-no-pie`).** A position-independent executable carries a
//! relocation for every pointer in its data (vtables, tables of string slices: 1 MB of
//! `.rela.dyn` here) that the loader reads and applies at each start, writing to 700 KB of
//! `.data.rel.ro` in every process. Both stay resident for the life of the process: the
//! store gateway's and the querier's resident sizes at idle fell from 16.7 and 14.1 MiB to 13.9
//! and 12.4 MiB without them, and the peak of both together over the benchmark's 1k-series
//! query sets from 40.3 to 36.2 MiB (gen) and from 51.5 to 48.5 MiB (om). Go links Prometheus
//! and Thanos the same way (`-buildmode=exe`); the cost is that the executable's own code and
//! data are not placed at a random address (libraries, stacks and the heap still are).
//! Packed relative relocations (`-z pack-relative-relocs`) keep position independence but
//! still write `.data.rel.ro` at start-up, and need glibc 2.36 wherever the binary runs.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
