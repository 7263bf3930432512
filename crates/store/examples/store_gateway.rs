//! The store gateway alone, without the rest of the `hypnos` binary: `store_gateway store
//! <hypnos store flags>`. Handy for profiling and for bench/store_memory.sh
//! (`HYPNOS=target/release/examples/store_gateway`).

use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: hypnos_server::LogArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Store(hypnos_store::StoreArgs),
}

#[tokio::main]
async fn main() -> Result<(), hypnos_store::StoreError> {
    let cli = Cli::parse();
    hypnos_server::init_logging(&cli.log);
    let Command::Store(args) = cli.command;
    hypnos_store::run(args, hypnos_server::shutdown_signal()).await
}
