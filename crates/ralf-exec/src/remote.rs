//! The wire between a server and a remote `ralf runner` (under `/api/internal/runners`, each
//! request authenticated by the runner's own token in `X-Runner-Token`; registration is
//! `ralf_core::api::runners`' `RunnerRegistration` and `RegisteredRunner`): the runner asks for
//! work and reports what it holds (`poll`, which is also its heartbeat), streams each task's
//! output in batches, and reports each task's status changes. The server answers a poll with
//! new jobs (a [`Job`], secrets decrypted, sent only on this channel) and with the current
//! status of every task the runner holds, from which the runner learns of stops,
//! confirmations and rejections.

use serde::{Deserialize, Serialize};

use crate::{CheckoutInfo, Job};

/// `POST /api/internal/runners/poll`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Poll {
    /// The tasks the runner holds (running, or with a plan waiting for a confirmation), each
    /// with the status the runner last knew of it. The server answers at once when one of
    /// them has changed.
    #[serde(default)]
    pub holding: Vec<HeldTask>,
    /// How many more tasks it can take now.
    pub free: u32,
    /// How long the server may hold the answer back while there is nothing to say, in
    /// seconds (capped by the server).
    #[serde(default)]
    pub wait_secs: u32,
}

/// The answer to a [`Poll`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PollAnswer {
    /// Tasks claimed for this runner: each is `starting`; the runner reports `running` when it
    /// begins.
    #[serde(default)]
    pub jobs: Vec<Job>,
    /// The status now of each task named in `holding`.
    #[serde(default)]
    pub held: Vec<HeldTask>,
}

/// A task a runner holds and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldTask {
    pub task_id: i64,
    /// As the API spells it (`running`, `stopping`, `confirmed`, ...); `None`: deleted.
    pub status: Option<String>,
}

/// `POST /api/internal/runners/tasks/{id}/output`: the next lines of a task, in order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutputBatch {
    /// `(time, text)`, times in RFC 3339.
    #[serde(default)]
    pub lines: Vec<(chrono::DateTime<chrono::Utc>, String)>,
    /// The commit the task checked out, once known.
    #[serde(default)]
    pub checkout: Option<CheckoutInfo>,
}

/// `POST /api/internal/runners/tasks/{id}/status`: the task moved on the runner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// `running` (it began, or began applying a confirmed plan), `waiting_confirmation`,
    /// `success`, `error` or `stopped`.
    pub status: String,
}

/// The answer to a [`StatusReport`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusAnswer {
    /// Whether the task went on as reported; `false` when it was stopped or ended meanwhile,
    /// and the runner should stop it.
    pub accepted: bool,
}
