//! What every request handler shares: the store, the secret cipher, the settings, the guard
//! against password guessing, the task queue, the live news of tasks, who this server is in a
//! cluster, the service catalog's engine, and the notifier of tasks' ends.

use std::sync::Arc;

use ralf_core::api::events::NewEvent;
use ralf_core::secret::SecretCipher;
use ralf_store::Store;

use crate::dispatch::live::LiveHub;
use crate::login_throttle::{LoginThrottle, PasswordChecks};
use crate::settings::Settings;
use crate::task_queue::TaskQueue;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub cipher: SecretCipher,
    pub settings: Arc<Settings>,
    pub login_throttle: Arc<LoginThrottle>,
    /// At most one password check per core at a time (each holds ~19 MiB).
    pub password_checks: Arc<PasswordChecks>,
    /// Wakes the task dispatcher; holds secret answers until a task runs.
    pub task_queue: Arc<TaskQueue>,
    /// Live output and status changes of tasks, for WebSocket listeners.
    pub live: Arc<LiveHub>,
    /// This server's id among the servers sharing the database, new at every start.
    pub node_id: Arc<str>,
    /// Where this server listens, as the other servers see it in the `nodes` table.
    pub address: Arc<str>,
    /// Wakes the scheduler when a schedule changes.
    pub schedules: Arc<crate::scheduler::ScheduleWakeup>,
    /// The service catalog: how it reads repositories, and its conductor's wake-up.
    pub catalog: Arc<crate::catalog::CatalogEngine>,
    /// Sends the news of tasks' ends to the configured channels.
    pub notifier: Arc<crate::notify::Notifier>,
    /// The heartbeats the readiness probe reads.
    pub health: Arc<crate::health::Health>,
}

impl AppState {
    /// Records an event in the activity log. A failure to record is logged, never fatal to
    /// the request that caused it.
    pub async fn event(&self, event: NewEvent) {
        if let Err(e) = self.store.record_event(&event).await {
            tracing::warn!(error = %e, object_type = event.object_type, "could not record event");
        }
    }
}
