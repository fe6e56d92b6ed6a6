//! The built `ralf` binary, started as a user would start it.

mod admin;
mod catalog;
mod cli;
mod cluster;
mod front_door;
mod interop;
mod migrate;
mod ops;
mod secrets;
mod startup;

pub const RALF: &str = env!("CARGO_BIN_EXE_ralf");
