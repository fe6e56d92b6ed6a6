//! ralf's domain, free of I/O: the wire types of the Semaphore-compatible API (shared by the
//! server, the client and the store), what a task runs and the wire of remote runners (`job`,
//! `runner_wire`; shared by the server, the executor and `ralf runner`), project roles and
//! their permissions, the task state machine, where the store lives (`database`), secrets kept
//! out of messages (`redact`), the crypto rules for secrets at rest and passwords, and the
//! checks of webhooks' signatures (`signature`).

pub mod api;
pub mod database;
pub mod ids;
pub mod job;
pub mod password;
pub mod redact;
pub mod role;
pub mod runner_wire;
pub mod secret;
pub mod signature;
pub mod task_status;
pub mod time;
pub mod token;
pub mod validate;

pub use ids::{ProjectId, RolloutId, TaskId, TemplateId};
pub use role::{Permission, Role};
pub use task_status::TaskStatus;
pub use time::Timestamp;
