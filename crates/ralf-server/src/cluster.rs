//! This server among others on one database: its node id and heartbeat, the sweep that ends
//! the tasks of servers and runners gone silent, and the bus that carries wake-ups and live
//! news of tasks between servers (PostgreSQL's LISTEN/NOTIFY; on SQLite there is one server
//! and nothing to carry).
//!
//! A notification can be lost (a dropped listener connection reconnects, but what was sent
//! meanwhile is gone), so nothing depends on one arriving: the dispatcher also looks every
//! few seconds, and a WebSocket connection fills any gap in a task's lines from the store.

use std::sync::Arc;
use std::time::Duration;

use ralf_core::{TaskId, Timestamp};
use ralf_store::cluster::Leases;
use tokio::sync::{Mutex, mpsc};

use crate::dispatch::live::LiveEvent;
use crate::outbox::{News, Notice, Outbox};
use crate::state::AppState;
use crate::supervise;

/// How often a server touches its row and looks for silent servers and runners.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long a silent server or runner is still taken for alive. Runners report at least every
/// [`crate::routes::runner_jobs::POLL_WAIT`] plus a request's time.
pub const LEASES: Leases = Leases {
    node: Duration::from_secs(10),
    runner: Duration::from_secs(30),
};

/// The channel of wake-ups ("look at the queue now").
const WAKE: &str = "ralf_wake";
/// The channel of live news (status changes, stored output lines).
const LIVE: &str = "ralf_live";

/// A new random id for this server's run.
pub fn new_node_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Starts the heartbeat and, on PostgreSQL, the bus. Runs until the process ends; failures are
/// logged and retried, and a loop that panics is started again (see [`crate::supervise`]).
pub async fn start(state: &AppState) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = vec![supervise::spawn_restarting("heartbeat", {
        let state = state.clone();
        move || heartbeat(state.clone())
    })];
    let Some(listener) = state.store.listen(&[WAKE, LIVE]).await? else {
        return Ok(tasks);
    };
    let (outbox, rx) = Outbox::new(state.node_id.clone());
    state.live.attach(outbox.clone());
    state.task_queue.attach(outbox);
    // A loop started again takes up the same channel and the same listener.
    let rx = Arc::new(Mutex::new(rx));
    tasks.push(supervise::spawn_restarting(
        "sender of notices to the other servers",
        {
            let state = state.clone();
            move || send_notices(state.clone(), rx.clone())
        },
    ));
    let listener = Arc::new(Mutex::new(listener));
    tasks.push(supervise::spawn_restarting(
        "listener to the other servers",
        {
            let state = state.clone();
            move || hear_notices(state.clone(), listener.clone())
        },
    ));
    Ok(tasks)
}

/// Touches this server's row and ends the tasks of whoever went silent, every [`HEARTBEAT`].
async fn heartbeat(state: AppState) {
    loop {
        if let Err(e) = beat(&state, LEASES).await {
            tracing::error!(error = %e, "heartbeat failed; trying again");
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// One heartbeat: touches this server's row, then settles the tasks of servers and runners
/// silent past `leases` (ended, or back in the queue), telling live listeners.
pub async fn beat(state: &AppState, leases: Leases) -> anyhow::Result<()> {
    let now = Timestamp::now();
    state
        .store
        .touch_node(&state.node_id, &state.address, now)
        .await?;
    let orphans = state
        .store
        .settle_orphaned_tasks(&state.node_id, now, leases)
        .await?;
    for orphan in orphans {
        announce_settled(state, orphan, now);
    }
    Ok(())
}

/// Tells live listeners that a task whose server or runner went away ended or went back to
/// the queue, and wakes the dispatchers.
pub fn announce_settled(
    state: &AppState,
    orphan: ralf_store::cluster::OrphanedTask,
    now: Timestamp,
) {
    tracing::warn!(task.id = orphan.id, status = %orphan.status, reason = %orphan.line, "whoever ran the task went away");
    state.live.publish(LiveEvent::Output {
        task_id: orphan.id,
        project_id: orphan.project_id,
        first_index: orphan.line_index,
        lines: Arc::new(vec![(now, orphan.line)]),
    });
    state.live.publish(LiveEvent::Status {
        task_id: orphan.id,
        project_id: orphan.project_id,
        template_id: orphan.template_id,
        status: orphan.status,
    });
    state.task_queue.changed();
}

/// Sends this server's notices; wake-ups waiting together go out as one.
async fn send_notices(state: AppState, rx: Arc<Mutex<mpsc::UnboundedReceiver<Notice>>>) {
    let mut rx = rx.lock().await;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = rx.try_recv() {
            batch.push(next);
        }
        let mut woke = false;
        for notice in batch {
            let channel = match notice.news {
                News::Wake if woke => continue,
                News::Wake => {
                    woke = true;
                    WAKE
                }
                _ => LIVE,
            };
            let payload = serde_json::to_string(&notice).unwrap_or_default();
            if let Err(e) = state.store.notify(channel, &payload).await {
                // Lost news is made up for by sweeps and by reading the store.
                tracing::warn!(error = %e, "could not notify the other servers");
            }
        }
    }
}

/// Hears the other servers' notices and passes them on here.
async fn hear_notices(state: AppState, listener: Arc<Mutex<ralf_store::cluster::Listener>>) {
    let mut listener = listener.lock().await;
    loop {
        let notification = match listener.recv().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "listening to the other servers failed; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let notice: Notice = match serde_json::from_str(notification.payload()) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "an unreadable notice from another server");
                continue;
            }
        };
        if *notice.node == *state.node_id {
            continue;
        }
        match notice.news {
            News::Wake => state.task_queue.wake_here(),
            News::Status {
                task_id,
                project_id,
                template_id,
                status,
            } => state.live.deliver(LiveEvent::Status {
                task_id,
                project_id,
                template_id,
                status,
            }),
            News::Output {
                task_id,
                project_id,
                first_index,
                count,
            } => match state
                .store
                .task_output(TaskId(task_id), first_index, Some(count))
                .await
            {
                Ok(lines) => state.live.deliver(LiveEvent::Output {
                    task_id,
                    project_id,
                    first_index,
                    lines: Arc::new(lines.into_iter().map(|l| (l.time, l.output)).collect()),
                }),
                Err(e) => {
                    // Listeners fill the gap from the store with the next lines or the status.
                    tracing::warn!(task.id = task_id, error = %e, "could not read announced lines");
                }
            },
            News::CatalogRollout {
                project_id,
                rollout_id,
                state: rollout_state,
                services,
            } => state.live.deliver(LiveEvent::CatalogRollout {
                project_id,
                rollout_id,
                state: rollout_state,
                services: Arc::new(services),
            }),
        }
    }
}
