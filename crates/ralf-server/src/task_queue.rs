//! The seam between the API and the task dispatcher. The API stores a task (status `waiting`),
//! or changes one (a stop), and calls [`TaskQueue::changed`]. The
//! dispatcher waits on [`TaskQueue::wakeup`], then reads what to do from the store — the
//! database stays the one truth about tasks, this only says "look now". In a cluster the
//! other servers are told too, since any of them may take the task.

use std::sync::OnceLock;

use tokio::sync::{Notify, watch};

use crate::outbox::Outbox;

#[derive(Debug)]
pub struct TaskQueue {
    wakeup: Notify,
    /// Counts wake-ups, for runners' polls waiting for something to change.
    changes: watch::Sender<u64>,
    /// Where wake-ups for the other servers of a cluster go.
    others: OnceLock<Outbox>,
}

impl Default for TaskQueue {
    fn default() -> Self {
        TaskQueue {
            wakeup: Notify::new(),
            changes: watch::channel(0).0,
            others: OnceLock::new(),
        }
    }
}

impl TaskQueue {
    /// A task was queued, or its status changed from outside the dispatcher (a stop, a
    /// confirmation), or a slot came free.
    pub fn changed(&self) {
        if let Some(others) = self.others.get() {
            others.wake();
        }
        self.wake_here();
    }

    /// Wakes this server's dispatcher only (a wake-up heard from another server).
    pub fn wake_here(&self) {
        self.wakeup.notify_one();
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Sees every wake-up from now on (the dispatcher's [`TaskQueue::wakeup`] is for one
    /// waiter; this is for any number).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// From now on, wake-ups also go to the other servers.
    pub fn attach(&self, others: Outbox) {
        let _ = self.others.set(others);
    }

    /// Resolves when there is something to look at. A signal sent while nobody waits is kept
    /// for the next wait, so none is lost between two looks at the store.
    pub async fn wakeup(&self) {
        self.wakeup.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_before_the_wait_is_not_lost() {
        let queue = TaskQueue::default();
        queue.changed();
        tokio::time::timeout(std::time::Duration::from_secs(1), queue.wakeup())
            .await
            .expect("woken");
    }
}
