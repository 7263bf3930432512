//! `hypnos`: one binary, one subcommand per component. This crate only parses arguments
//! and wires library crates together; behaviour lives in the libraries.

mod cli;
mod tools;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    hypnos_server::init_logging(&cli.log);
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
