//! ralf's domain, free of I/O: the wire types of the Semaphore-compatible API (shared by the
//! server, the client and the store), project roles and their permissions, the task state
//! machine, and the crypto rules for secrets at rest and passwords.

pub mod api;
pub mod ids;
pub mod password;
pub mod role;
pub mod secret;
pub mod task_status;
pub mod time;
pub mod token;
pub mod validate;

pub use ids::{ProjectId, TaskId, TemplateId};
pub use role::{Permission, Role};
pub use task_status::TaskStatus;
pub use time::Timestamp;
