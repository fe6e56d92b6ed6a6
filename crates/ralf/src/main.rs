//! The `ralf` binary: parses the command line and hands off to the command that was asked for.

mod admin;
mod cli;
mod client;
mod config;
mod data_dir;
mod ops;
mod runner;
mod server;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are answers; anything else is a bad command line, exit 64
            // (clap's own 2 would read as "task stopped").
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    std::process::ExitCode::SUCCESS
                }
                _ => std::process::ExitCode::from(client::code::USAGE),
            };
        }
    };
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
