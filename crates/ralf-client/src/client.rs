//! The HTTP side: one [`Client`] per server, its calls, retries and what the server supports.

use std::sync::Arc;
use std::time::Duration;

use ralf_core::api::ErrorBody;
use ralf_core::api::tasks::{StopRequest, TaskRequest};
use ralf_core::api::users::{ApiTokenRequest, Login};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::error::Error;
use crate::types::{ApiToken, Info, OutputLine, Project, RawOutputLine, Task, Template, User};

/// How failed requests are tried again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries after the first (3 by default).
    pub retries: u32,
    /// The wait before the first retry; each further wait doubles it (1 s by default).
    pub first_wait: Duration,
    /// How long following or waiting for a task goes on reconnecting to a server that is
    /// away (2 minutes by default); single calls use `retries`.
    pub outage_limit: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            first_wait: Duration::from_secs(1),
            outage_limit: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0 for the first): `first_wait * 2^attempt`,
    /// at most 30 s.
    pub fn wait(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(16));
        self.first_wait
            .saturating_mul(factor)
            .min(Duration::from_secs(30))
    }
}

/// Told before each retry, so a user can see why nothing happens for a moment.
#[derive(Debug, Clone)]
pub struct RetryNotice {
    /// What failed, e.g. `GET /api/project/1/tasks/5`.
    pub request: String,
    pub reason: String,
    pub wait: Duration,
    /// This retry's number (from 1) and how many there may be (`None`: until the outage
    /// limit).
    pub attempt: u32,
    pub of: Option<u32>,
}

type Notify = Arc<dyn Fn(&RetryNotice) + Send + Sync>;

/// Where the server is and how to talk to it.
#[derive(Clone)]
pub struct ClientConfig {
    /// The server's address, e.g. `http://127.0.0.1:3000` (a trailing `/api` is accepted).
    pub url: String,
    /// An API token, sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// A runner's own token, sent as `X-Runner-Token` (the calls of `ralf runner`).
    pub runner_token: Option<String>,
    /// The longest one request may take (30 s by default).
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Called before each retry.
    pub on_retry: Option<Notify>,
}

impl ClientConfig {
    pub fn new(url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            token: None,
            runner_token: None,
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            on_retry: None,
        }
    }
}

/// What a server offers beyond Semaphore's API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Capabilities {
    /// `Some(version)` when the server is ralf (it says so in `/api/openapi.json`).
    pub ralf: Option<String>,
    /// `GET …/tasks/{id}/stream`: a task's log live over a WebSocket.
    pub task_stream: bool,
    /// `GET …/tasks/{id}/output?offset=N`: the output from line N (Semaphore sends it all).
    pub output_offset: bool,
    /// `GET …/tasks?status=&template_id=&limit=` filters on the server.
    pub task_filters: bool,
}

/// Which tasks `tasks` lists.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub template_id: Option<i64>,
    /// Any of these statuses (all when empty).
    pub statuses: Vec<String>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

/// A client of one server. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: Option<String>,
    runner_token: Option<String>,
    pub(crate) retry: RetryPolicy,
    on_retry: Option<Notify>,
    capabilities: Arc<OnceCell<Capabilities>>,
}

/// Whether a request may be sent again after it may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Reads, and writes that end the same however often they are made: retried on any
    /// failure.
    Safe,
    /// Writes that must not happen twice (starting a task): retried only when the connection
    /// could not even be made.
    OnlyUnsent,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let base = normalize_url(&config.url)?;
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("ralf/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            token: config.token.filter(|t| !t.is_empty()),
            runner_token: config.runner_token.filter(|t| !t.is_empty()),
            retry: config.retry,
            on_retry: config.on_retry,
            capabilities: Arc::new(OnceCell::new()),
        })
    }

    /// The server's address as requests use it (no trailing slash, no `/api`).
    pub fn url(&self) -> &str {
        &self.base
    }

    pub(crate) fn notify(&self, notice: &RetryNotice) {
        if let Some(f) = &self.on_retry {
            f(notice);
        }
    }

    /// Sends one request, retrying as the policy and `replay` allow, and returns the body of
    /// a 2xx answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
        replay: Replay,
        authenticated: bool,
    ) -> Result<Vec<u8>, Error> {
        let url = format!("{}{}", self.base, path);
        let mut attempt = 0u32;
        loop {
            let mut request = self.http.request(method.clone(), &url);
            if !query.is_empty() {
                request = request.query(query);
            }
            if authenticated && let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            if authenticated && let Some(token) = &self.runner_token {
                request = request.header("X-Runner-Token", token);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let failure = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(bytes) if status.is_success() => return Ok(bytes.to_vec()),
                        Ok(bytes) => {
                            let error = api_error(status, &bytes);
                            if !(status.is_server_error() && replay == Replay::Safe) {
                                return Err(error);
                            }
                            (error.to_string(), error)
                        }
                        Err(e) if replay == Replay::Safe => {
                            (describe(&e), self.unreachable(describe(&e)))
                        }
                        Err(e) => return Err(self.unreachable(describe(&e))),
                    }
                }
                Err(e) if e.is_connect() || replay == Replay::Safe => {
                    (describe(&e), self.unreachable(describe(&e)))
                }
                Err(e) => return Err(self.unreachable(describe(&e))),
            };
            let (reason, error) = failure;
            if attempt >= self.retry.retries {
                return Err(error);
            }
            let wait = self.retry.wait(attempt);
            attempt += 1;
            self.notify(&RetryNotice {
                request: format!("{method} {path}"),
                reason,
                wait,
                attempt,
                of: Some(self.retry.retries),
            });
            tokio::time::sleep(wait).await;
        }
    }

    pub(crate) fn unreachable(&self, detail: String) -> Error {
        Error::Unreachable {
            url: self.base.clone(),
            detail,
        }
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        let body = self
            .call(Method::GET, path, query, None, Replay::Safe, true)
            .await?;
        decode(path, &body)
    }

    async fn post(&self, path: &str, body: Value, replay: Replay) -> Result<Vec<u8>, Error> {
        self.call(Method::POST, path, &[], Some(body), replay, true)
            .await
    }

    /// `GET /api/ping`: the server's answer (`pong`); needs no token.
    pub async fn ping(&self) -> Result<String, Error> {
        let body = self
            .call(Method::GET, "/api/ping", &[], None, Replay::Safe, false)
            .await?;
        Ok(String::from_utf8_lossy(&body).trim().to_string())
    }

    pub async fn info(&self) -> Result<Info, Error> {
        self.get("/api/info", &[]).await
    }

    /// The user the token belongs to.
    pub async fn user(&self) -> Result<User, Error> {
        self.get("/api/user", &[]).await
    }

    /// Logs in with a password (a session cookie) and creates an API token named `name`
    /// with it; the session is ended again. The token is the answer's `id`.
    pub async fn create_token(
        &self,
        login: &str,
        password: &str,
        name: &str,
    ) -> Result<ApiToken, Error> {
        let credentials = Login {
            auth: login.to_string(),
            password: password.to_string(),
        };
        self.call(
            Method::POST,
            "/api/auth/login",
            &[],
            Some(to_value(&credentials)),
            Replay::OnlyUnsent,
            false,
        )
        .await?;
        let request = ApiTokenRequest { name: name.into() };
        let created = self
            .call(
                Method::POST,
                "/api/user/tokens",
                &[],
                Some(to_value(&request)),
                Replay::OnlyUnsent,
                false,
            )
            .await;
        // The session was only needed to make the token.
        let _ = self
            .call(
                Method::POST,
                "/api/auth/logout",
                &[],
                None,
                Replay::OnlyUnsent,
                false,
            )
            .await;
        let token: ApiToken = decode("/api/user/tokens", &created?)?;
        if token.id.is_empty() {
            return Err(Error::Decode {
                path: "/api/user/tokens".into(),
                detail: "the answer has no token (`id`)".into(),
            });
        }
        Ok(token)
    }

    /// Deletes an API token of the caller (`ralf logout`).
    pub async fn delete_token(&self, token: &str) -> Result<(), Error> {
        self.call(
            Method::DELETE,
            &format!("/api/user/tokens/{token}"),
            &[],
            None,
            Replay::Safe,
            true,
        )
        .await
        .map(drop)
    }

    pub async fn projects(&self) -> Result<Vec<Project>, Error> {
        self.get("/api/projects", &[]).await
    }

    pub async fn project(&self, project: i64) -> Result<Project, Error> {
        self.get(&format!("/api/project/{project}"), &[]).await
    }

    pub async fn templates(&self, project: i64) -> Result<Vec<Template>, Error> {
        self.get(&format!("/api/project/{project}/templates"), &[])
            .await
    }

    pub async fn template(&self, project: i64, template: i64) -> Result<Template, Error> {
        self.get(&format!("/api/project/{project}/templates/{template}"), &[])
            .await
    }

    /// Starts a task. Sent once: it is retried only when the connection could not be made,
    /// never when the server might have started it already.
    pub async fn start_task(&self, project: i64, request: &TaskRequest) -> Result<Task, Error> {
        let path = format!("/api/project/{project}/tasks");
        let body = self
            .post(&path, to_value(request), Replay::OnlyUnsent)
            .await?;
        decode(&path, &body)
    }

    pub async fn task(&self, project: i64, task: i64) -> Result<Task, Error> {
        self.get(&format!("/api/project/{project}/tasks/{task}"), &[])
            .await
    }

    /// The project's tasks, newest first. ralf filters on the server; Semaphore ignores the
    /// filters and sends every task, so they are applied here as well.
    pub async fn tasks(&self, project: i64, filter: &TaskFilter) -> Result<Vec<Task>, Error> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(id) = filter.template_id {
            query.push(("template_id", id.to_string()));
        }
        if !filter.statuses.is_empty() {
            query.push(("status", filter.statuses.join(",")));
        }
        if let Some(limit) = filter.limit {
            query.push(("limit", limit.to_string()));
        }
        let filtered = filter.template_id.is_some() || !filter.statuses.is_empty();
        // Semaphore's `…/tasks/last` (200 tasks) is enough for an unfiltered short list.
        let path = if !filtered && filter.limit.is_some_and(|n| n <= 200) {
            format!("/api/project/{project}/tasks/last")
        } else {
            format!("/api/project/{project}/tasks")
        };
        let mut tasks: Vec<Task> = self.get(&path, &query).await?;
        tasks.retain(|t| {
            filter.template_id.is_none_or(|id| t.template_id == id)
                && (filter.statuses.is_empty() || filter.statuses.contains(&t.status))
        });
        tasks.sort_by_key(|t| std::cmp::Reverse(t.id));
        if let Some(limit) = filter.limit {
            tasks.truncate(limit);
        }
        Ok(tasks)
    }

    /// The task's output from line `from` (0: all of it), each line with its index.
    pub async fn output(
        &self,
        project: i64,
        task: i64,
        from: i64,
    ) -> Result<Vec<OutputLine>, Error> {
        let path = format!("/api/project/{project}/tasks/{task}/output");
        let from = from.max(0);
        let offset = from > 0 && self.capabilities().await?.output_offset;
        let query = if offset {
            vec![("offset", from.to_string())]
        } else {
            Vec::new()
        };
        let lines: Vec<RawOutputLine> = self.get(&path, &query).await?;
        // Without `offset` the server sent every line: skip those before `from`.
        let (first, skip) = if offset { (from, 0) } else { (0, from) };
        Ok(lines
            .into_iter()
            .enumerate()
            .skip(skip as usize)
            .map(|(i, l)| OutputLine {
                index: first + i as i64,
                time: l.time,
                output: l.output,
            })
            .collect())
    }

    /// Stops a task; `force` kills it at once instead of asking it to end.
    pub async fn stop_task(&self, project: i64, task: i64, force: bool) -> Result<(), Error> {
        let path = format!("/api/project/{project}/tasks/{task}/stop");
        self.post(&path, to_value(&StopRequest { force }), Replay::OnlyUnsent)
            .await
            .map(drop)
    }

    /// Confirms a plan waiting for confirmation, so it is applied.
    pub async fn confirm_task(&self, project: i64, task: i64) -> Result<(), Error> {
        self.decide(project, task, "confirm").await
    }

    /// Rejects a plan waiting for confirmation: the task ends without applying it.
    pub async fn reject_task(&self, project: i64, task: i64) -> Result<(), Error> {
        self.decide(project, task, "reject").await
    }

    async fn decide(&self, project: i64, task: i64, verb: &str) -> Result<(), Error> {
        let path = format!("/api/project/{project}/tasks/{task}/{verb}");
        match self
            .post(&path, Value::Object(Default::default()), Replay::OnlyUnsent)
            .await
        {
            // The task exists (callers read it first), so a 404 or 405 is the route missing.
            Err(Error::Api {
                status: 404 | 405,
                message,
            }) if !message.contains("task") => Err(Error::Unsupported {
                what: format!("{verb}ing a task"),
                detail: format!("POST {path}: {message}"),
            }),
            other => other.map(drop),
        }
    }

    /// What the server supports beyond Semaphore's API; asked once per client.
    pub async fn capabilities(&self) -> Result<&Capabilities, Error> {
        self.capabilities
            .get_or_try_init(|| async {
                match self
                    .call(
                        Method::GET,
                        "/api/openapi.json",
                        &[],
                        None,
                        Replay::Safe,
                        false,
                    )
                    .await
                {
                    Ok(body) => Ok(read_capabilities(&body)),
                    // No such document (Semaphore has none) or a refusal: the plain API.
                    Err(e) if e.is_refusal() => Ok(Capabilities::default()),
                    Err(e) => Err(e),
                }
            })
            .await
    }
}

/// What ralf's OpenAPI document says about its routes; anything else is a plain Semaphore.
fn read_capabilities(body: &[u8]) -> Capabilities {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return Capabilities::default();
    };
    let title = doc["info"]["title"].as_str().unwrap_or_default();
    if !title.to_ascii_lowercase().starts_with("ralf") {
        return Capabilities::default();
    }
    let paths = &doc["paths"];
    let has_param = |path: &str, name: &str| {
        paths[path]["get"]["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == name))
    };
    Capabilities {
        ralf: Some(
            doc["info"]["version"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        task_stream: paths
            .get("/api/project/{project_id}/tasks/{task_id}/stream")
            .is_some(),
        output_offset: has_param("/api/project/{project_id}/tasks/{task_id}/output", "offset"),
        task_filters: has_param("/api/project/{project_id}/tasks", "status"),
    }
}

/// `http://host:3000`, `http://host:3000/`, `http://host:3000/api` → `http://host:3000`.
fn normalize_url(url: &str) -> Result<String, Error> {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix("/api").unwrap_or(url);
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::Invalid(format!("invalid server URL {url:?}: {e}")))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host().is_some() => Ok(url.to_string()),
        "http" | "https" => Err(Error::Invalid(format!(
            "invalid server URL {url:?}: it names no host"
        ))),
        other => Err(Error::Invalid(format!(
            "invalid server URL {url:?}: the scheme must be http or https, not {other}"
        ))),
    }
}

/// The error of a non-2xx answer: the server's `error` message unchanged when it sent one,
/// else its text, else the status.
pub(crate) fn api_error(status: reqwest::StatusCode, body: &[u8]) -> Error {
    let message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) if !e.error.is_empty() => e.error,
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() || text.starts_with('<') {
                format!("HTTP {status}")
            } else {
                let mut t: String = text.chars().take(500).collect();
                if t.len() < text.len() {
                    t.push('…');
                }
                t
            }
        }
    };
    Error::Api {
        status: status.as_u16(),
        message,
    }
}

pub(crate) fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        path: path.to_string(),
        detail: e.to_string(),
    })
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A transport error with its causes (reqwest's own message alone says little).
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized() {
        assert_eq!(normalize_url("http://h:3000/").unwrap(), "http://h:3000");
        assert_eq!(
            normalize_url(" http://h:3000/api/ ").unwrap(),
            "http://h:3000"
        );
        assert_eq!(normalize_url("http://h/sub/api").unwrap(), "http://h/sub");
        assert_eq!(normalize_url("https://h/").unwrap(), "https://h");
        assert!(
            normalize_url("ftp://h")
                .unwrap_err()
                .to_string()
                .contains("scheme")
        );
        assert!(normalize_url("h:3000").is_err());
    }

    #[test]
    fn back_off_doubles() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (0..4).map(|a| p.wait(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8]);
        assert_eq!(p.wait(40), Duration::from_secs(30));
    }

    #[test]
    fn error_messages_are_the_servers() {
        let e = api_error(
            reqwest::StatusCode::BAD_REQUEST,
            br#"{"error":"template_id: no"}"#,
        );
        assert_eq!(e.to_string(), "template_id: no");
        let e = api_error(reqwest::StatusCode::NOT_FOUND, b"404 page not found\n");
        assert_eq!(e.to_string(), "404 page not found");
        let e = api_error(reqwest::StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!(e.to_string(), "HTTP 502 Bad Gateway");
        assert!(e.is_transient() && !e.is_refusal());
    }

    #[test]
    fn only_ralfs_document_means_ralf() {
        assert!(read_capabilities(b"<html></html>").ralf.is_none());
        assert!(
            read_capabilities(br#"{"info":{"title":"other"}}"#)
                .ralf
                .is_none()
        );
        let doc = serde_json::json!({
            "info": {"title": "ralf API", "version": "0.1.0"},
            "paths": {
                "/api/project/{project_id}/tasks/{task_id}/stream": {"get": {}},
                "/api/project/{project_id}/tasks/{task_id}/output":
                    {"get": {"parameters": [{"name": "offset"}]}}
            }
        });
        let caps = read_capabilities(doc.to_string().as_bytes());
        assert_eq!(caps.ralf.as_deref(), Some("0.1.0"));
        assert!(caps.task_stream && caps.output_offset && !caps.task_filters);
    }
}
