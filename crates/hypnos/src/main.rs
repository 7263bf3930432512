//! `hypnos`: one binary, one subcommand per component. This crate only parses arguments
//! and wires library crates together; behaviour lives in the libraries.

mod cli;
mod tools;
mod trim;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    hypnos_server::init_logging(&cli.log);
    // reqwest 0.13 (used for S3) has no TLS crypto provider of its own: install ring's once,
    // before any component can open a bucket or an HTTPS client.
    hypnos_objstore::install_tls_provider();
    trim::spawn(std::time::Duration::from_secs(1));
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
