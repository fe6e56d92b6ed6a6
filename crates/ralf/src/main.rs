//! The `ralf` binary: parses the command line and hands off to the command that was asked for.

mod admin;
mod cli;
mod config;
mod server;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ralf: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ralf: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
