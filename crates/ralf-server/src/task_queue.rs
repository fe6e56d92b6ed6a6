//! The seam between the API and the task dispatcher. The API stores a task (status `waiting`)
//! and calls [`TaskQueue::queued`]; a stop request calls [`TaskQueue::changed`]. The
//! dispatcher waits on [`TaskQueue::wakeup`], then reads what to do from the store — the
//! database stays the one truth about tasks, this only says "look now".
//!
//! Secret survey answers (`secret` of a new task) are never stored: they wait here, in memory,
//! until the dispatcher takes them for the run (or the task is stopped or deleted first). A
//! restart forgets them, as Semaphore's in-memory queue does.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Default)]
pub struct TaskQueue {
    wakeup: Notify,
    secrets: Mutex<HashMap<i64, String>>,
}

impl std::fmt::Debug for TaskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.secrets.lock().map(|s| s.len()).unwrap_or(0);
        f.debug_struct("TaskQueue")
            .field("secrets_held", &held)
            .finish()
    }
}

impl TaskQueue {
    /// A task was queued, with the secret answers it runs with.
    pub fn queued(&self, task_id: i64, secret: Option<String>) {
        if let Some(secret) = secret {
            self.lock().insert(task_id, secret);
        }
        self.wakeup.notify_one();
    }

    /// A task's status changed from outside the dispatcher (a stop, a confirmation).
    pub fn changed(&self) {
        self.wakeup.notify_one();
    }

    /// Resolves when there is something to look at. A signal sent while nobody waits is kept
    /// for the next wait, so none is lost between two looks at the store.
    pub async fn wakeup(&self) {
        self.wakeup.notified().await;
    }

    /// The secret answers of a task, handed out once.
    pub fn take_secret(&self, task_id: i64) -> Option<String> {
        self.lock().remove(&task_id)
    }

    /// Drops what is held for a task that will not run.
    pub fn forget(&self, task_id: i64) {
        self.lock().remove(&task_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, String>> {
        // The map stays consistent even if a holder panicked: every operation is one call.
        self.secrets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_before_the_wait_is_not_lost() {
        let queue = TaskQueue::default();
        queue.queued(7, Some("{\"token\":\"t\"}".into()));
        tokio::time::timeout(std::time::Duration::from_secs(1), queue.wakeup())
            .await
            .expect("woken");
        assert_eq!(queue.take_secret(7).as_deref(), Some("{\"token\":\"t\"}"));
        assert_eq!(queue.take_secret(7), None);
    }
}
