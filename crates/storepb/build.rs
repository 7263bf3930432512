//! Compiles the StoreAPI protos with protox (pure Rust, no `protoc`) and generates prost
//! messages plus tonic clients and servers.

const PROTO_ROOT: &str = "proto";
const PROTOS: &[&str] = &[
    "store/labelpb/types.proto",
    "store/storepb/types.proto",
    "store/storepb/rpc.proto",
    "store/hintspb/hints.proto",
    "info/infopb/rpc.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    for p in PROTOS {
        println!("cargo:rerun-if-changed={PROTO_ROOT}/{p}");
    }
    let fds = protox::compile(PROTOS, [PROTO_ROOT])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .emit_rerun_if_changed(false)
        // Chunk data is shared, not copied, between decoding and re-encoding in proxies.
        .bytes(".thanos.Chunk.data")
        // Raw chunks are the common case; boxing the five downsampled aggregates makes an
        // AggrChunk 104 bytes instead of 304, and every series' chunk vector moves that much
        // less on its way from the wire to the decoder.
        .boxed(".thanos.AggrChunk.count")
        .boxed(".thanos.AggrChunk.sum")
        .boxed(".thanos.AggrChunk.min")
        .boxed(".thanos.AggrChunk.max")
        .boxed(".thanos.AggrChunk.counter")
        .compile_fds(fds)?;
    Ok(())
}
