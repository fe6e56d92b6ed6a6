//! Whether this server can do its work, for load balancers and Kubernetes probes: the
//! dispatcher's heartbeat (it beats after every look at the queue) and the answers of
//! `/api/health/live` and `/api/health/ready`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How long the dispatcher may go without a look at the queue before the server is not ready
/// (it looks at least every two seconds, and a look waits at most for the database's timeout).
pub const DISPATCHER_SILENCE: Duration = Duration::from_secs(30);

/// The heartbeats the readiness probe reads.
#[derive(Debug, Default)]
pub struct Health {
    /// When the dispatcher last finished a look at the queue (Unix milliseconds; 0 = never).
    dispatcher_looked: AtomicI64,
}

impl Health {
    /// The dispatcher finished a look at the queue (whether or not the look succeeded: a look
    /// that fails on the database shows in the database's own check).
    pub fn dispatcher_looked(&self) {
        let now = chrono::Utc::now().timestamp_millis();
        self.dispatcher_looked.store(now, Ordering::Relaxed);
    }

    /// How long ago the dispatcher last looked; `None` if it never did.
    pub fn dispatcher_silent_for(&self) -> Option<Duration> {
        let looked = self.dispatcher_looked.load(Ordering::Relaxed);
        if looked == 0 {
            return None;
        }
        let ago = chrono::Utc::now().timestamp_millis() - looked;
        Some(Duration::from_millis(ago.max(0) as u64))
    }
}
