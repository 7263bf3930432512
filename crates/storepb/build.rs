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
        .compile_fds(fds)?;
    Ok(())
}
