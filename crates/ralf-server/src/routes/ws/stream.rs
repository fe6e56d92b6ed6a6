//! One task stream: the task's stored lines from `from`, then the live ones, then `end`.
//!
//! The connection listened to the hub before it read anything from the store, so every line is
//! either stored by the time it reads or announced after; the [`Cursor`] sends each once.
//! Status changes come as events too; a status read from the store (at the start, after a lag,
//! and every few seconds as a safety net) covers any change that was not announced.

use std::time::Duration;

use ralf_core::api::live::StreamMessage;
use ralf_core::{ProjectId, TaskId, TaskStatus, Timestamp};
use ralf_store::Store;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::{Conn, Cursor, LineShape, PING_EVERY, Stop, Viewer, every};
use crate::dispatch::live::LiveEvent;
use crate::state::AppState;

/// How often the task's status (and the caller's access) is read from the store.
const STATUS_POLL: Duration = Duration::from_secs(5);
/// How long the last lines of a task may follow its final status: a task stopped by force is
/// `stopped` while its processes are still being killed, and lines the API writes with a
/// status change are stored just after it.
const SETTLE: Duration = Duration::from_secs(1);

/// Which task, from which line.
pub(super) struct Follow {
    pub project_id: i64,
    pub task_id: i64,
    pub from: i64,
}

pub(super) async fn run(
    mut conn: Conn,
    state: AppState,
    viewer: Viewer,
    follow: Follow,
    mut events: Receiver<LiveEvent>,
) {
    let mut stream = TaskStream {
        store: state.store.clone(),
        viewer,
        project_id: follow.project_id,
        cursor: Cursor {
            task_id: follow.task_id,
            next: follow.from,
            shape: LineShape::Line,
        },
        sent: None,
    };
    let result = stream.serve(&mut conn, &mut events).await;
    conn.close(result).await;
}

struct TaskStream {
    store: Store,
    viewer: Viewer,
    project_id: i64,
    cursor: Cursor,
    /// The status last sent.
    sent: Option<TaskStatus>,
}

impl TaskStream {
    async fn serve(
        &mut self,
        conn: &mut Conn,
        events: &mut Receiver<LiveEvent>,
    ) -> Result<(), Stop> {
        let task_id = self.cursor.task_id;
        let task = match self
            .store
            .task(ProjectId(self.project_id), TaskId(task_id))
            .await
        {
            Ok(task) => task,
            Err(ralf_store::StoreError::NotFound) => return Err(Stop::Deleted),
            Err(e) => return Err(e.into()),
        };
        self.status(conn, task.status).await?;
        self.cursor.stored(conn, &self.store, None).await?;
        conn.flush().await?;
        if task.status.is_finished() {
            let recent = task.end.is_none_or(recently);
            return self.finish(conn, task.status, recent).await;
        }
        let mut ping = every(PING_EVERY);
        let mut poll = every(STATUS_POLL);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(LiveEvent::Output { task_id: id, first_index, lines, .. }) if id == task_id => {
                        self.cursor.announced(conn, &self.store, first_index, &lines).await?;
                        conn.flush().await?;
                    }
                    Ok(LiveEvent::Status { task_id: id, status, .. }) if id == task_id => {
                        if status.is_finished() {
                            return self.finish(conn, status, status == TaskStatus::Stopped).await;
                        }
                        self.status(conn, status).await?;
                        conn.flush().await?;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, task.id = task_id, "a task stream fell behind; catching up from the store");
                        if let Some(status) = self.look(conn).await? {
                            return self.finish(conn, status, true).await;
                        }
                    }
                    Err(RecvError::Closed) => return Err(Stop::Away),
                },
                frame = conn.socket.recv() => conn.heard(frame)?,
                _ = ping.tick() => conn.ping().await?,
                _ = poll.tick() => {
                    if !self.viewer.may_read(&self.store, self.project_id).await? {
                        return Err(Stop::Denied);
                    }
                    if let Some(status) = self.look(conn).await? {
                        return self.finish(conn, status, true).await;
                    }
                }
            }
        }
    }

    /// Reads the task's status, then sends the lines stored since the cursor; a finished
    /// status is returned (every line of the run is stored before a task finishes), any other
    /// is sent if it is news.
    async fn look(&mut self, conn: &mut Conn) -> Result<Option<TaskStatus>, Stop> {
        let Some(status) = self.store.task_status(TaskId(self.cursor.task_id)).await? else {
            return Err(Stop::Deleted);
        };
        self.cursor.stored(conn, &self.store, None).await?;
        if status.is_finished() {
            return Ok(Some(status));
        }
        self.status(conn, status).await?;
        conn.flush().await?;
        Ok(None)
    }

    /// The task is finished: the last lines (after a moment, when they may still be coming),
    /// the final status, `end`.
    async fn finish(
        &mut self,
        conn: &mut Conn,
        status: TaskStatus,
        settle: bool,
    ) -> Result<(), Stop> {
        if settle {
            tokio::time::sleep(SETTLE).await;
        }
        self.cursor.stored(conn, &self.store, None).await?;
        self.status(conn, status).await?;
        conn.feed(&StreamMessage::End { status }).await?;
        conn.flush().await
    }

    /// A `status` frame, unless the client has it already.
    async fn status(&mut self, conn: &mut Conn, status: TaskStatus) -> Result<(), Stop> {
        if self.sent == Some(status) {
            return Ok(());
        }
        self.sent = Some(status);
        conn.feed(&StreamMessage::Status { status }).await
    }
}

/// Whether a task that ended at `end` may still be getting its last lines.
fn recently(end: Timestamp) -> bool {
    let settle = chrono::Duration::from_std(SETTLE).unwrap_or_default();
    end.0 > chrono::Utc::now() - settle * 2
}
