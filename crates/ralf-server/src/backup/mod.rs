//! Project backup and restore in Semaphore's format (see `ralf_core::api::backup`): a project
//! and everything in it as a backup (`assemble`), and a backup checked object by object into
//! the rows of a new project (`restore`). The routes are in `routes/backup`.
//!
//! A backup names objects instead of giving their ids, and holds no secret. A restore puts every
//! object through the checks of its create endpoint and resolves its references by name; the
//! store then creates everything in one transaction, so a refused backup leaves no project
//! behind.

mod assemble;
mod restore;

pub use assemble::{Contents, assemble};
pub use restore::Checked;
