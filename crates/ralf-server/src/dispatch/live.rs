//! Live news of tasks for whoever listens (WebSocket clients, the catalog's conductor): output
//! lines as they are stored, status changes, and catalog rollouts' changes, this server's and,
//! in a cluster, the other servers' (see
//! [`crate::cluster`]). A listener that falls behind is told it lagged and catches up from the
//! store, where every line is before it is announced here.

use std::sync::{Arc, OnceLock};

use ralf_core::api::live::CatalogServiceState;
use ralf_core::{TaskStatus, Timestamp};
use tokio::sync::broadcast;

use crate::outbox::{News, Outbox};

/// How many events a slow listener may be behind before it is told it lagged.
const CAPACITY: usize = 4096;

#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// Lines `first_index..first_index + lines.len()` of a task's output (0-based), stored.
    Output {
        task_id: i64,
        project_id: i64,
        first_index: i64,
        lines: Arc<Vec<(Timestamp, String)>>,
    },
    /// A task changed status.
    Status {
        task_id: i64,
        project_id: i64,
        template_id: i64,
        status: TaskStatus,
    },
    /// A catalog rollout changed: how it and its services stand now.
    CatalogRollout {
        project_id: i64,
        rollout_id: i64,
        state: String,
        services: Arc<Vec<CatalogServiceState>>,
    },
}

impl LiveEvent {
    pub fn project_id(&self) -> i64 {
        match self {
            LiveEvent::Output { project_id, .. }
            | LiveEvent::Status { project_id, .. }
            | LiveEvent::CatalogRollout { project_id, .. } => *project_id,
        }
    }

    /// The event as the other servers of a cluster hear it: output lines by their indices
    /// only (each server reads the lines from the store).
    fn news(&self) -> News {
        match self {
            LiveEvent::Status {
                task_id,
                project_id,
                template_id,
                status,
            } => News::Status {
                task_id: *task_id,
                project_id: *project_id,
                template_id: *template_id,
                status: *status,
            },
            LiveEvent::Output {
                task_id,
                project_id,
                first_index,
                lines,
            } => News::Output {
                task_id: *task_id,
                project_id: *project_id,
                first_index: *first_index,
                count: lines.len() as i64,
            },
            LiveEvent::CatalogRollout {
                project_id,
                rollout_id,
                state,
                services,
            } => News::CatalogRollout {
                project_id: *project_id,
                rollout_id: *rollout_id,
                state: state.clone(),
                services: services.as_ref().clone(),
            },
        }
    }
}

pub struct LiveHub {
    tx: broadcast::Sender<LiveEvent>,
    /// Where news for the other servers of a cluster goes.
    others: OnceLock<Outbox>,
}

impl Default for LiveHub {
    fn default() -> Self {
        LiveHub {
            tx: broadcast::channel(CAPACITY).0,
            others: OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("listeners", &self.tx.receiver_count())
            .finish()
    }
}

impl LiveHub {
    /// Tells this server's listeners, and those of the other servers of the cluster.
    pub fn publish(&self, event: LiveEvent) {
        if let Some(others) = self.others.get() {
            others.send(event.news());
        }
        self.deliver(event);
    }

    /// Tells this server's listeners only (news heard from another server).
    pub fn deliver(&self, event: LiveEvent) {
        // No listener is not an error: nobody is watching.
        let _ = self.tx.send(event);
    }

    /// From now on, what is published here also goes to the other servers.
    pub fn attach(&self, others: Outbox) {
        let _ = self.others.set(others);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }
}
