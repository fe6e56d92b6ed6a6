//! Stopping a running task from outside.

use std::sync::Arc;

use tokio::sync::watch;

/// What has been asked of a running task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StopRequest {
    /// Nothing: let it run.
    #[default]
    None,
    /// SIGTERM to the process group, SIGKILL after [`crate::ExecConfig::stop_grace`].
    Graceful,
    /// SIGKILL at once.
    Force,
}

/// The handle a server keeps for each running task to stop it. Cheap to clone; every clone
/// controls the same task.
///
/// A stop ends the task as [`crate::Outcome::Stopped`], whatever it was doing (fetching,
/// running the app, applying a plan). A forced stop after a graceful one skips the rest of the
/// grace period.
#[derive(Clone, Debug)]
pub struct Control {
    tx: Arc<watch::Sender<StopRequest>>,
}

impl Default for Control {
    fn default() -> Self {
        Control::new()
    }
}

impl Control {
    /// A control with no stop requested.
    pub fn new() -> Control {
        Control {
            tx: Arc::new(watch::Sender::new(StopRequest::None)),
        }
    }

    /// Asks the task to stop: SIGTERM then SIGKILL, or SIGKILL at once when `force`.
    pub fn stop(&self, force: bool) {
        let want = if force {
            StopRequest::Force
        } else {
            StopRequest::Graceful
        };
        self.tx.send_if_modified(|now| {
            if *now == StopRequest::Force || *now == want {
                false
            } else {
                *now = want;
                true
            }
        });
    }

    /// What has been asked so far.
    pub fn requested(&self) -> StopRequest {
        *self.tx.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<StopRequest> {
        self.tx.subscribe()
    }
}
