//! Live output over WebSocket, two ways:
//!
//! * `GET /api/ws` ([`feed`]): Semaphore's feed. Every output line (`log`) and status change
//!   (`update`) of every task in the projects the caller may read, as Semaphore's web UI expects,
//!   and the changes of their service catalog rollouts (`catalog_rollout`, ralf's own).
//! * `GET /api/project/{project_id}/tasks/{task_id}/stream?from=N` ([`stream`]): ralf's stream
//!   of one task: its stored lines from `from`, then the live ones, then `end`.
//!
//! Both listen to the dispatcher's [`LiveHub`](crate::dispatch::live::LiveHub), where a batch
//! of lines is announced only after it is stored. That makes the store a replay buffer. A
//! connection keeps, per task, the index of the next line its client has not had: an `Output`
//! event starting further on reveals a gap, which is read from the store; one starting before
//! it repeats lines already sent, which are skipped. A connection that falls behind the hub
//! (`Lagged`) reads what it missed from the store the same way, so a slow client loses nothing
//! and a fast one is served from memory.

mod feed;
mod stream;

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::header::UPGRADE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use ralf_core::api::ErrorBody;
use ralf_core::api::live::{FeedMessage, StreamMessage};
use ralf_core::{ProjectId, TaskId, Timestamp};
use ralf_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{ProjectAccess, Read};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, Params};
use crate::state::AppState;

/// How often the server pings a client.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A client not heard from (pong or anything else) for this long is gone.
const SILENCE_LIMIT: Duration = Duration::from_secs(90);
/// How long a connection trusts what it learnt about the caller's access to a project.
const ACCESS_TTL: Duration = Duration::from_secs(2);
/// Stored lines read at a time when catching up.
const PAGE: i64 = 5000;
/// The largest message a client may send (clients have nothing to say but pongs).
const MAX_CLIENT_MESSAGE: usize = 4096;
/// How long a client may take no data at all before it is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closing waits for the client's answering close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ws))
        .routes(routes!(task_stream))
}

/// Where a task stream starts.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamQuery {
    /// The first line to send, counted from 0 (default 0): after a dropped connection, the
    /// index after the last line received.
    from: Option<i64>,
}

/// The task named by `{task_id}` in the path.
#[derive(Deserialize)]
struct TaskPath {
    task_id: i64,
}

/// Semaphore's live feed of task output and status changes (WebSocket).
///
/// A `log` frame for every output line and an `update` frame for every status change of the
/// tasks in every project the caller may read (all of them for global admins), and ralf's
/// `catalog_rollout` frame whenever a service catalog rollout of such a project changes. Membership is
/// checked as events arrive, so a user removed from a project stops receiving its tasks within
/// seconds. A task's lines are sent from the first one the connection sees (from its first
/// line if it starts while connected); after that none is lost or repeated, also when the
/// client reads slower than tasks write.
#[utoipa::path(get, path = "/api/ws", tag = "live",
    responses(
        (status = 101, description = "Switching Protocols: each text frame is one FeedMessage", body = FeedMessage),
        (status = 401, body = ErrorBody),
        (status = 426, description = "Not a WebSocket upgrade request", body = ErrorBody)))]
async fn ws(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return not_a_websocket(rejection),
    };
    let events = state.live.subscribe();
    let viewer = Viewer::new(user.id, user.admin);
    configure(upgrade).on_upgrade(move |socket| feed::run(Conn::new(socket), state, viewer, events))
}

/// One task's output, stored and live, each line exactly once (WebSocket).
///
/// The stored lines from `from`, then the live ones as they are stored, in order (`line`
/// frames with their index); `status` frames for the task's status (first when the stream
/// opens, then on every change); when the task is finished and every line has been sent, an
/// `end` frame, and the server closes the connection (code 1000). A client whose connection
/// drops reconnects with `from=<index after the last line it received>` and misses nothing.
#[utoipa::path(get, path = "/api/project/{project_id}/tasks/{task_id}/stream", tag = "live",
    params(("project_id" = i64, Path), ("task_id" = i64, Path), StreamQuery),
    responses(
        (status = 101, description = "Switching Protocols: each text frame is one StreamMessage", body = StreamMessage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 426, description = "Not a WebSocket upgrade request", body = ErrorBody)))]
async fn task_stream(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(TaskPath { task_id }): Ids<TaskPath>,
    Params(q): Params<StreamQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Ok(not_a_websocket(rejection)),
    };
    let from = q.from.unwrap_or(0);
    if from < 0 {
        return Err(ApiError::bad_request("from must not be negative"));
    }
    let task = state
        .store
        .task(access.project_id, TaskId(task_id))
        .await
        .or_not_found("task")?;
    // Listening starts before anything is read from the store, so no line falls between.
    let events = state.live.subscribe();
    let viewer = Viewer::new(access.user.id, access.user.admin);
    let follow = stream::Follow {
        project_id: access.project_id.0,
        task_id: task.id,
        from,
    };
    Ok(configure(upgrade)
        .on_upgrade(move |socket| stream::run(Conn::new(socket), state, viewer, follow, events)))
}

fn configure(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
}

/// A request to a WebSocket route that is not a (valid) upgrade: 426 with `Upgrade: websocket`
/// when it did not ask for one, axum's status (400) for a malformed one; the API's error body.
fn not_a_websocket(rejection: WebSocketUpgradeRejection) -> Response {
    let body = Json(ErrorBody {
        error: format!(
            "this route is a WebSocket; connect with an upgrade request ({})",
            rejection.body_text()
        ),
    });
    match rejection {
        WebSocketUpgradeRejection::InvalidConnectionHeader(_)
        | WebSocketUpgradeRejection::InvalidUpgradeHeader(_) => (
            StatusCode::UPGRADE_REQUIRED,
            [(UPGRADE, HeaderValue::from_static("websocket"))],
            body,
        )
            .into_response(),
        other => (other.status(), body).into_response(),
    }
}

/// Why a connection ends early.
#[derive(Debug)]
enum Stop {
    /// The client closed the connection, vanished or broke the protocol.
    Gone,
    /// The caller may no longer read what is streamed (or no longer exists).
    Denied,
    /// The server is shutting down (the hub is gone).
    Away,
    /// The streamed task was deleted.
    Deleted,
    /// The store failed; the client may reconnect and resume.
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

/// One client's socket.
struct Conn {
    socket: WebSocket,
    /// When the client was last heard from.
    heard: Instant,
}

impl Conn {
    fn new(socket: WebSocket) -> Conn {
        Conn {
            socket,
            heard: Instant::now(),
        }
    }

    /// Queues a JSON text frame; [`Conn::flush`] sends what is queued (frames of one batch go
    /// out together).
    async fn feed(&mut self, message: &impl Serialize) -> Result<(), Stop> {
        let text = serde_json::to_string(message).map_err(|e| {
            tracing::error!(error = %e, "a live message does not serialize");
            Stop::Gone
        })?;
        written(self.socket.feed(Message::Text(text.into()))).await
    }

    /// Sends what is queued. A client that takes data is alive, even when the server, busy
    /// sending, has not read its pongs yet.
    async fn flush(&mut self) -> Result<(), Stop> {
        written(self.socket.flush()).await?;
        self.heard = Instant::now();
        Ok(())
    }

    /// Takes in what the client sent: pongs and anything else show it is alive (its messages
    /// mean nothing); a close or an error ends the connection.
    fn heard(&mut self, frame: Option<Result<Message, axum::Error>>) -> Result<(), Stop> {
        match frame {
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Err(Stop::Gone),
            Some(Ok(_)) => {
                self.heard = Instant::now();
                Ok(())
            }
        }
    }

    /// Pings the client, or gives up on one silent for too long.
    async fn ping(&mut self) -> Result<(), Stop> {
        if self.heard.elapsed() > SILENCE_LIMIT {
            return Err(Stop::Gone);
        }
        written(self.socket.send(Message::Ping(Default::default()))).await
    }

    /// Ends the connection: after a clean end or an early [`Stop`], a close frame saying why,
    /// then waits (briefly) for the client's; a client that is gone is just dropped.
    async fn close(mut self, how: Result<(), Stop>) {
        let (code, reason) = match how {
            Ok(()) => (1000, "finished".to_string()),
            Err(Stop::Gone) => {
                // Answers a client's close frame, if it sent one.
                let _ = written(self.socket.close()).await;
                return;
            }
            Err(Stop::Denied) => (1008, "access to the project was withdrawn".to_string()),
            Err(Stop::Away) => (1001, "the server is shutting down".to_string()),
            Err(Stop::Deleted) => (4404, "the task was deleted".to_string()),
            Err(Stop::Store(e)) => {
                tracing::warn!(error = %e, "live stream ends: the store failed");
                (1011, "internal error; reconnect to resume".to_string())
            }
        };
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if written(self.socket.send(Message::Close(Some(frame))))
            .await
            .is_err()
        {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(_)) = self.socket.recv().await {}
        })
        .await;
    }
}

/// A write to a client, which must take data within [`WRITE_TIMEOUT`]: one that stopped
/// reading is gone, not a reason to hold the connection forever.
async fn written(write: impl Future<Output = Result<(), axum::Error>>) -> Result<(), Stop> {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(Stop::Gone),
    }
}

/// What a connection knows of its caller's right to read projects, refreshed every
/// [`ACCESS_TTL`]: membership (and the admin flag) is checked when an event arrives, not only
/// when the connection opens.
struct Viewer {
    user_id: i64,
    admin: bool,
    checked: Instant,
    projects: HashMap<i64, (bool, Instant)>,
}

impl Viewer {
    fn new(user_id: i64, admin: bool) -> Viewer {
        Viewer {
            user_id,
            admin,
            checked: Instant::now(),
            projects: HashMap::new(),
        }
    }

    /// Whether the caller may read project `project_id` now; a caller whose account is gone is
    /// [`Stop::Denied`].
    async fn may_read(&mut self, store: &Store, project_id: i64) -> Result<bool, Stop> {
        if self.checked.elapsed() >= ACCESS_TTL {
            match store.user(self.user_id).await {
                Ok(user) => self.admin = user.admin,
                Err(StoreError::NotFound) => return Err(Stop::Denied),
                Err(e) => return Err(e.into()),
            }
            self.checked = Instant::now();
        }
        if self.admin {
            return Ok(true);
        }
        if let Some((allowed, at)) = self.projects.get(&project_id)
            && at.elapsed() < ACCESS_TTL
        {
            return Ok(*allowed);
        }
        let allowed = store
            .member_role(ProjectId(project_id), self.user_id)
            .await?
            .is_some();
        self.projects.insert(project_id, (allowed, Instant::now()));
        Ok(allowed)
    }
}

/// How a line is put to the client.
#[derive(Debug, Clone, Copy)]
enum LineShape {
    /// `/api/ws`'s `log` frame.
    Log { project_id: i64 },
    /// The task stream's `line` frame.
    Line,
}

impl LineShape {
    async fn send(
        self,
        conn: &mut Conn,
        task_id: i64,
        index: i64,
        time: Timestamp,
        output: &str,
    ) -> Result<(), Stop> {
        match self {
            LineShape::Log { project_id } => {
                conn.feed(&FeedMessage::Log {
                    output: output.into(),
                    time,
                    task_id,
                    project_id,
                })
                .await
            }
            LineShape::Line => {
                conn.feed(&StreamMessage::Line {
                    index,
                    time,
                    output: output.into(),
                })
                .await
            }
        }
    }
}

/// One task's lines on one connection: `next` is the index of the first line the client has
/// not had.
struct Cursor {
    task_id: i64,
    next: i64,
    shape: LineShape,
}

impl Cursor {
    /// Sends the lines of an `Output` event the client has not had: a gap before them is read
    /// from the store first, lines already sent are skipped.
    async fn announced(
        &mut self,
        conn: &mut Conn,
        store: &Store,
        first_index: i64,
        lines: &[(Timestamp, String)],
    ) -> Result<(), Stop> {
        if first_index > self.next {
            self.stored(conn, store, Some(first_index)).await?;
            if self.next < first_index {
                // Announced lines are stored first, so this does not happen; if it does, the
                // missing lines cannot be had and the stream goes on.
                tracing::warn!(
                    task.id = self.task_id,
                    missing_from = self.next,
                    missing_to = first_index,
                    "announced output lines are not in the store"
                );
                self.next = first_index;
            }
        }
        let skip = usize::try_from(self.next - first_index).unwrap_or(0);
        for (time, output) in lines.iter().skip(skip) {
            self.shape
                .send(conn, self.task_id, self.next, *time, output)
                .await?;
            self.next += 1;
        }
        Ok(())
    }

    /// Sends the stored lines from `next` up to `until` (exclusive), or to the end of what is
    /// stored, a page at a time.
    async fn stored(
        &mut self,
        conn: &mut Conn,
        store: &Store,
        until: Option<i64>,
    ) -> Result<(), Stop> {
        loop {
            let want = until.map_or(PAGE, |until| (until - self.next).min(PAGE));
            if want <= 0 {
                return Ok(());
            }
            let page = store
                .task_output(TaskId(self.task_id), self.next, Some(want))
                .await?;
            let short = (page.len() as i64) < want;
            for line in &page {
                self.shape
                    .send(conn, self.task_id, self.next, line.time, &line.output)
                    .await?;
                self.next += 1;
            }
            if short {
                return Ok(());
            }
            conn.flush().await?;
        }
    }
}

/// A timer that ticks every `period`, the first time after one period; a late tick is not
/// made up for.
fn every(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}
