//! What every request handler shares: the store, the secret cipher, the settings, and the
//! guard against password guessing.

use std::sync::Arc;

use ralf_core::api::events::NewEvent;
use ralf_core::secret::SecretCipher;
use ralf_store::Store;

use crate::login_throttle::LoginThrottle;
use crate::settings::Settings;
use crate::task_queue::TaskQueue;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub cipher: SecretCipher,
    pub settings: Arc<Settings>,
    pub login_throttle: Arc<LoginThrottle>,
    /// Wakes the task dispatcher; holds secret answers until a task runs.
    pub task_queue: Arc<TaskQueue>,
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
