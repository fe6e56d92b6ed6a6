//! One `GET /api/ws` connection: every event of the hub, filtered by what the caller may read,
//! as Semaphore's `log` and `update` frames.
//!
//! A task is followed (its [`Cursor`] kept) from the first line the connection sends of it, or
//! from its `starting` status, until a while after it finishes. Followed tasks lose no line when
//! the connection lags: what the hub dropped is read from the store.

use std::collections::HashMap;
use std::time::Duration;

use ralf_core::api::live::FeedMessage;
use ralf_core::{ProjectId, TaskId, TaskStatus};
use ralf_store::{Store, StoreError};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::{Conn, Cursor, LineShape, PING_EVERY, Stop, Viewer, every};
use crate::dispatch::live::LiveEvent;
use crate::state::AppState;

/// How long a finished task stays followed, so late lines of it (a task stopped by force may
/// write after its status changed) still go through its cursor.
const FORGET_AFTER: Duration = Duration::from_secs(30);

pub(super) async fn run(
    mut conn: Conn,
    state: AppState,
    viewer: Viewer,
    mut events: Receiver<LiveEvent>,
) {
    let mut feed = Feed {
        store: state.store.clone(),
        viewer,
        tasks: HashMap::new(),
    };
    let result = feed.serve(&mut conn, &mut events).await;
    conn.close(result).await;
}

struct Feed {
    store: Store,
    viewer: Viewer,
    tasks: HashMap<i64, Followed>,
}

/// A task this connection follows.
struct Followed {
    project_id: i64,
    /// `None` for a task seen starting, of which no line has been sent yet.
    cursor: Option<Cursor>,
    /// The status last sent.
    status: Option<TaskStatus>,
    /// When it was seen finished.
    finished: Option<Instant>,
}

impl Followed {
    fn new(project_id: i64) -> Followed {
        Followed {
            project_id,
            cursor: None,
            status: None,
            finished: None,
        }
    }
}

impl Feed {
    async fn serve(
        &mut self,
        conn: &mut Conn,
        events: &mut Receiver<LiveEvent>,
    ) -> Result<(), Stop> {
        let mut ping = every(PING_EVERY);
        let mut tidy = every(FORGET_AFTER);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => self.event(conn, event).await?,
                    Err(RecvError::Lagged(skipped)) => self.catch_up(conn, skipped).await?,
                    Err(RecvError::Closed) => return Err(Stop::Away),
                },
                frame = conn.socket.recv() => conn.heard(frame)?,
                _ = ping.tick() => conn.ping().await?,
                _ = tidy.tick() => self
                    .tasks
                    .retain(|_, f| f.finished.is_none_or(|at| at.elapsed() < FORGET_AFTER)),
            }
        }
    }

    async fn event(&mut self, conn: &mut Conn, event: LiveEvent) -> Result<(), Stop> {
        let project_id = event.project_id();
        let task_id = match &event {
            LiveEvent::Output { task_id, .. } | LiveEvent::Status { task_id, .. } => Some(*task_id),
            LiveEvent::CatalogRollout { .. } => None,
        };
        if !self.viewer.may_read(&self.store, project_id).await? {
            if let Some(task_id) = task_id {
                self.tasks.remove(&task_id);
            }
            return Ok(());
        }
        match event {
            LiveEvent::CatalogRollout {
                rollout_id,
                state,
                services,
                ..
            } => {
                conn.feed(&FeedMessage::CatalogRollout {
                    project_id,
                    rollout_id,
                    state,
                    services: services.as_ref().clone(),
                })
                .await?;
            }
            LiveEvent::Output {
                task_id,
                first_index,
                lines,
                ..
            } => {
                let followed = self
                    .tasks
                    .entry(task_id)
                    .or_insert_with(|| Followed::new(project_id));
                // The first lines seen of a task: it is followed from here.
                let cursor = followed.cursor.get_or_insert(Cursor {
                    task_id,
                    next: first_index,
                    shape: LineShape::Log { project_id },
                });
                cursor
                    .announced(conn, &self.store, first_index, &lines)
                    .await?;
            }
            LiveEvent::Status {
                task_id,
                template_id,
                status,
                ..
            } => {
                match self.tasks.get_mut(&task_id) {
                    Some(followed) => {
                        if status.is_finished()
                            && followed.finished.is_none()
                            && let Some(cursor) = &mut followed.cursor
                        {
                            // Lines written after the last batch (a rejection's, say).
                            cursor.stored(conn, &self.store, None).await?;
                        }
                    }
                    None if status == TaskStatus::Starting => {
                        self.tasks.insert(task_id, Followed::new(project_id));
                    }
                    None => {}
                }
                send_update(conn, &self.store, project_id, task_id, template_id, status).await?;
                if let Some(followed) = self.tasks.get_mut(&task_id) {
                    followed.status = Some(status);
                    if status.is_finished() {
                        followed.finished.get_or_insert_with(Instant::now);
                    }
                }
            }
        }
        conn.flush().await
    }

    /// After the hub dropped events for this connection: each followed task's lines since its
    /// cursor, from the store, and the status changes it missed.
    async fn catch_up(&mut self, conn: &mut Conn, skipped: u64) -> Result<(), Stop> {
        tracing::debug!(
            skipped,
            "a /api/ws client fell behind; catching up from the store"
        );
        let ids: Vec<i64> = self
            .tasks
            .iter()
            .filter(|(_, f)| f.finished.is_none())
            .map(|(id, _)| *id)
            .collect();
        // Statuses before lines: a task finished by now has every line stored.
        let statuses: HashMap<i64, TaskStatus> =
            self.store.task_statuses(&ids).await?.into_iter().collect();
        for id in ids {
            let Some(project_id) = self.tasks.get(&id).map(|f| f.project_id) else {
                continue;
            };
            let status = statuses.get(&id).copied();
            if status.is_none() || !self.viewer.may_read(&self.store, project_id).await? {
                self.tasks.remove(&id); // deleted, or no longer readable
                continue;
            }
            let Some(followed) = self.tasks.get_mut(&id) else {
                continue;
            };
            // A task seen starting whose first lines were all dropped: from its first line.
            let cursor = followed.cursor.get_or_insert(Cursor {
                task_id: id,
                next: 0,
                shape: LineShape::Log { project_id },
            });
            cursor.stored(conn, &self.store, None).await?;
            if let Some(status) = status
                && followed.status != Some(status)
            {
                followed.status = Some(status);
                if status.is_finished() {
                    followed.finished = Some(Instant::now());
                }
                send_update(conn, &self.store, project_id, id, 0, status).await?;
            }
            conn.flush().await?;
        }
        Ok(())
    }
}

/// An `update` frame, with the task's `start`, `end` and `version` as stored now.
async fn send_update(
    conn: &mut Conn,
    store: &Store,
    project_id: i64,
    task_id: i64,
    template_id: i64,
    status: TaskStatus,
) -> Result<(), Stop> {
    let (template_id, start, end, version) =
        match store.task(ProjectId(project_id), TaskId(task_id)).await {
            Ok(task) => (task.template_id, task.start, task.end, task.version),
            Err(StoreError::NotFound) => (template_id, None, None, None),
            Err(e) => return Err(e.into()),
        };
    conn.feed(&FeedMessage::Update {
        task_id,
        project_id,
        template_id,
        status,
        start,
        end,
        version,
    })
    .await
}
