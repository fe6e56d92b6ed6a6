//! Following a task to its end: its status, and its output lines each exactly once.
//!
//! The follower keeps the index of the next line it has not delivered. Over ralf's stream
//! (`…/tasks/{id}/stream?from=N`) every `line` frame carries its index; over polling, lines
//! come from `…/output?offset=N` where the server honours `offset`, else from the whole output
//! with the first N skipped. Lines before the index are dropped, a gap after it is read from
//! `…/output`, so neither a reconnect nor a restarted server makes a line appear twice or go
//! missing. While the server is away the follower reconnects with exponential back-off until
//! [`RetryPolicy::outage_limit`](crate::RetryPolicy::outage_limit) has passed.

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use serde::Deserialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::client::{Client, RetryNotice, RetryPolicy, api_error, describe};
use crate::error::Error;
use crate::types::{OutputLine, Task};

/// How a follower reads the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// ralf's live stream where the server has it, else polling.
    #[default]
    Auto,
    /// Polling `…/output` (for servers or proxies without WebSockets).
    Poll,
}

#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// The index of the first line to deliver (0: from the start).
    pub from: i64,
    /// Deliver output lines; without, only status changes are told (waiting for a task).
    pub lines: bool,
    pub transport: Transport,
    /// How often polling asks (1 s by default).
    pub poll_every: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            from: 0,
            lines: true,
            transport: Transport::Auto,
            poll_every: Duration::from_secs(1),
        }
    }
}

/// What a follower tells as it goes.
#[derive(Debug, Clone, Copy)]
pub enum FollowEvent<'a> {
    /// The next output line.
    Line(&'a OutputLine),
    /// The task's status changed (the first status is told too).
    Status(&'a str),
}

/// A stream frame (`GET …/tasks/{id}/stream`).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Frame {
    Line {
        index: i64,
        #[serde(default)]
        time: String,
        #[serde(default)]
        output: String,
    },
    Status {
        status: String,
    },
    End {
        status: String,
    },
    #[serde(other)]
    Other,
}

/// An open WebSocket of the server.
pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A stream that says nothing this long (the server pings every 30 s) is gone.
pub(crate) const SILENCE: Duration = Duration::from_secs(90);
/// Lines the API writes with a final status are stored just after it.
const SETTLE: Duration = Duration::from_secs(1);

enum Pass {
    /// The task is finished and every line was delivered.
    Done,
    /// The server has no working stream: poll instead.
    NoStream,
}

struct Follower<'f> {
    next: i64,
    status: Option<String>,
    on: &'f mut dyn FnMut(FollowEvent<'_>),
}

impl Follower<'_> {
    fn line(&mut self, line: &OutputLine) {
        if line.index == self.next {
            (self.on)(FollowEvent::Line(line));
            self.next += 1;
        }
    }

    fn status(&mut self, status: &str) {
        if self.status.as_deref() != Some(status) {
            self.status = Some(status.to_string());
            (self.on)(FollowEvent::Status(status));
        }
    }
}

/// Consecutive failures while following, and since when.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    attempt: u32,
}

impl Outage {
    fn reset(&mut self) {
        *self = Outage::default();
    }

    /// The wait before the next try, or `None` once the outage has lasted too long.
    fn next_wait(&mut self, policy: &RetryPolicy) -> Option<Duration> {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= policy.outage_limit {
            return None;
        }
        let wait = policy.wait(self.attempt);
        self.attempt += 1;
        Some(wait)
    }
}

impl Client {
    /// Follows a task until it is finished and returns it as it ended. `on` hears each
    /// output line from `options.from` exactly once and in order (when `options.lines`), and
    /// each status change.
    pub async fn follow(
        &self,
        project: i64,
        task: i64,
        options: &FollowOptions,
        mut on: impl FnMut(FollowEvent<'_>),
    ) -> Result<Task, Error> {
        let mut follower = Follower {
            next: options.from.max(0),
            status: None,
            on: &mut on,
        };
        let mut stream = options.lines
            && options.transport == Transport::Auto
            && self.capabilities().await?.task_stream;
        let mut outage = Outage::default();
        loop {
            let pass = if stream {
                self.stream_pass(project, task, &mut follower, &mut outage)
                    .await
            } else {
                self.poll_pass(project, task, options, &mut follower, &mut outage)
                    .await
            };
            match pass {
                Ok(Pass::Done) => break,
                Ok(Pass::NoStream) => stream = false,
                Err(e) if e.is_transient() => {
                    let Some(wait) = outage.next_wait(&self.retry) else {
                        return Err(e);
                    };
                    self.notify(&RetryNotice {
                        request: format!("following task {task}"),
                        reason: e.to_string(),
                        wait,
                        attempt: outage.attempt,
                        of: None,
                    });
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.task(project, task).await
    }

    /// Reads the stored lines from the follower's index on.
    async fn catch_up(
        &self,
        project: i64,
        task: i64,
        follower: &mut Follower<'_>,
    ) -> Result<(), Error> {
        for line in self.output(project, task, follower.next).await? {
            follower.line(&line);
        }
        Ok(())
    }

    /// One connection of ralf's stream, until the task ends or the connection does.
    async fn stream_pass(
        &self,
        project: i64,
        task: i64,
        follower: &mut Follower<'_>,
        outage: &mut Outage,
    ) -> Result<Pass, Error> {
        let path = format!(
            "/api/project/{project}/tasks/{task}/stream?from={}",
            follower.next
        );
        let Some(mut socket) = self.open_socket(&path).await? else {
            // Not a stream after all (a proxy, say): polling works everywhere.
            return Ok(Pass::NoStream);
        };
        outage.reset();
        loop {
            let message = match tokio::time::timeout(SILENCE, socket.next()).await {
                Err(_) => return Err(self.unreachable("the log stream went silent".into())),
                Ok(None) => {
                    return Err(self.unreachable("the log stream ended before the task".into()));
                }
                Ok(Some(Err(e))) => return Err(self.unreachable(describe(&e))),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let frame: Frame =
                        serde_json::from_str(text.as_str()).map_err(|e| Error::Decode {
                            path: format!("/api/project/{project}/tasks/{task}/stream"),
                            detail: e.to_string(),
                        })?;
                    match frame {
                        Frame::Line {
                            index,
                            time,
                            output,
                        } => {
                            if index > follower.next {
                                // A gap: what is missing is stored; read it.
                                self.catch_up(project, task, follower).await?;
                            }
                            follower.line(&OutputLine {
                                index,
                                time,
                                output,
                            });
                        }
                        Frame::Status { status } => follower.status(&status),
                        Frame::End { status } => {
                            self.catch_up(project, task, follower).await?;
                            follower.status(&status);
                            let _ = socket.close(None).await;
                            return Ok(Pass::Done);
                        }
                        Frame::Other => {}
                    }
                }
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Err(match code {
                        1008 => Error::Api {
                            status: 403,
                            message: reason,
                        },
                        4404 => Error::Api {
                            status: 404,
                            message: reason,
                        },
                        _ => self.unreachable(format!("the log stream closed ({code} {reason})")),
                    });
                }
                _ => {}
            }
        }
    }

    /// Opens ralf's WebSocket at `path` (with the API token): `None` when the server answers
    /// with something else than a refusal (a proxy without WebSockets, say), which polling
    /// replaces.
    pub(crate) async fn open_socket(&self, path: &str) -> Result<Option<Socket>, Error> {
        let ws_base = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", self.base.trim_start_matches("http://"))
        };
        let url = format!("{ws_base}{path}");
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::Invalid(format!("{url}: {e}")))?;
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Error::Invalid("the API token has characters a header cannot carry".into())
            })?;
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        let connected = tokio::time::timeout(
            Duration::from_secs(30),
            tokio_tungstenite::connect_async(request),
        )
        .await;
        match connected {
            Err(_) => Err(self.unreachable(format!("{path} did not open in time"))),
            Ok(Err(WsError::Http(response))) => {
                let status = response.status().as_u16();
                let body = response.body().clone().unwrap_or_default();
                let code = reqwest::StatusCode::from_u16(status)
                    .unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
                match status {
                    401 | 403 | 404 | 500.. => Err(api_error(code, &body)),
                    _ => Ok(None),
                }
            }
            Ok(Err(e)) => Err(self.unreachable(describe(&e))),
            Ok(Ok((socket, _))) => Ok(Some(socket)),
        }
    }

    /// Polls the task (and its output) until it is finished.
    async fn poll_pass(
        &self,
        project: i64,
        task: i64,
        options: &FollowOptions,
        follower: &mut Follower<'_>,
        outage: &mut Outage,
    ) -> Result<Pass, Error> {
        let mut settled = false;
        // Waiting alone starts quick and slows down to the polling interval.
        let mut pause = if options.lines {
            options.poll_every
        } else {
            Duration::from_millis(200).min(options.poll_every)
        };
        loop {
            // The status first: once it is final, every line of the run is stored.
            let current = self.task(project, task).await?;
            if options.lines {
                self.catch_up(project, task, follower).await?;
            }
            outage.reset();
            follower.status(&current.status);
            if current.is_finished() {
                let recent = current
                    .ended_at()
                    .is_none_or(|end| Utc::now() - end < chrono::Duration::seconds(5));
                if options.lines && recent && !settled {
                    settled = true;
                    tokio::time::sleep(SETTLE).await;
                    continue;
                }
                return Ok(Pass::Done);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(options.poll_every);
        }
    }
}
