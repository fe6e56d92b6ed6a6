//! A typed HTTP client of the Semaphore-compatible API, shared by the `ralf` command line and
//! (later) the runner. It owns:
//!
//! * talking HTTP to one server: the bearer token, a time-out per request, and retries with
//!   exponential back-off on connection errors, time-outs and 5xx answers ([`RetryPolicy`];
//!   requests that change something are retried only when they surely never reached the
//!   server, so a retry cannot start a task twice);
//! * reading answers leniently ([`types`]): Semaphore and ralf agree on the fields this crate
//!   reads, not on every detail, so every field may be missing and unknown ones are kept, and
//!   a value serialized again shows what the server said. Requests are ralf-core's wire types;
//! * telling what a server supports ([`Capabilities`], read from ralf's OpenAPI document; a
//!   Semaphore server has none, and gets the plain Semaphore API);
//! * the service catalog's calls ([`Client::catalog_plan`], [`Client::start_rollout`], …;
//!   ralf only);
//! * following a task's log ([`Client::follow`]): live over ralf's WebSocket stream
//!   (`…/tasks/{id}/stream?from=N`) where the server has it, else by polling `…/output`
//!   (with `?offset=N` where the server honours it). Each line is delivered once, in order,
//!   also when the connection drops or the server restarts in between: the follower knows the
//!   index of the next line and asks for it when it is back;
//! * hearing a catalog rollout change on ralf's live feed (`/api/ws`, [`RolloutFeed`]).

mod catalog;
mod client;
mod error;
mod feed;
mod follow;
mod runner;
pub mod types;

pub use catalog::{CatalogSelection, Rollout, RolloutService, RolloutStep};
pub use client::{Capabilities, Client, ClientConfig, RetryNotice, RetryPolicy, TaskFilter};
pub use error::Error;
pub use feed::RolloutFeed;
pub use follow::{FollowEvent, FollowOptions, Transport};
pub use ralf_core::TaskStatus;
pub use ralf_core::api::tasks::{TaskParams, TaskRequest};
