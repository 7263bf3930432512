//! `hypnos`: one binary, one subcommand per component. This crate only parses arguments
//! and wires library crates together; behaviour lives in the libraries.

mod cli;
mod heap;
mod tools;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let one_arena = heap::limit_arenas();
    let cli = cli::Cli::parse();
    hypnos_server::init_logging(&cli.log);
    if !one_arena {
        tracing::warn!("could not limit malloc to one arena");
    }
    // reqwest 0.13 (used for S3) has no TLS crypto provider of its own: install ring's once,
    // before any component can open a bucket or an HTTPS client.
    hypnos_objstore::install_tls_provider();
    heap::spawn_trim(std::time::Duration::from_secs(1));
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
