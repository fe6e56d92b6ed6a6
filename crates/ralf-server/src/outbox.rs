//! What this server tells the other servers of a cluster: wake-ups ("look at the queue now")
//! and live news of tasks and catalog rollouts, as [`Notice`]s put in an [`Outbox`]. The cluster's sender carries
//! them over PostgreSQL's NOTIFY (see [`crate::cluster`]). Nothing here depends on the rest of
//! the server, so the task queue and the live hub hold an outbox without depending on the
//! cluster.

use std::sync::Arc;

use ralf_core::TaskStatus;
use ralf_core::api::live::CatalogServiceState;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// What one server tells the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notice {
    /// The sender, so it ignores its own notices.
    pub node: String,
    #[serde(flatten)]
    pub news: News,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum News {
    /// Something changed in the queue.
    Wake,
    /// A task changed status.
    Status {
        task_id: i64,
        project_id: i64,
        template_id: i64,
        status: TaskStatus,
    },
    /// Lines `first_index..first_index + count` of a task are stored.
    Output {
        task_id: i64,
        project_id: i64,
        first_index: i64,
        count: i64,
    },
    /// A catalog rollout changed.
    CatalogRollout {
        project_id: i64,
        rollout_id: i64,
        state: String,
        services: Vec<CatalogServiceState>,
    },
}

/// Where the live hub and the task queue put what other servers should hear.
#[derive(Debug, Clone)]
pub struct Outbox {
    node: Arc<str>,
    tx: mpsc::UnboundedSender<Notice>,
}

impl Outbox {
    /// An outbox of the server `node`, and the receiver its notices come out of.
    pub fn new(node: Arc<str>) -> (Outbox, mpsc::UnboundedReceiver<Notice>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Outbox { node, tx }, rx)
    }

    pub fn wake(&self) {
        self.send(News::Wake);
    }

    pub fn send(&self, news: News) {
        // The receiver lives as long as the server; after that nobody needs to hear.
        let _ = self.tx.send(Notice {
            node: self.node.to_string(),
            news,
        });
    }
}
