//! Builds the executor's job for a task (see `build`).

mod build;

pub use build::{PreparedJob, prepare};
