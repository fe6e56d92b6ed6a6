//! Test helpers: start the real ralf server on 127.0.0.1:0 with a fresh SQLite file or a fresh
//! PostgreSQL database (`ralf-testdb`'s, re-exported here), and talk to it over HTTP like any
//! client would.

use std::time::Duration;

mod fixture;
mod wait;

pub use fixture::{ProjectFixture, TestProject, merge_fields};
pub use ralf_server::DatabaseSettings;
use ralf_server::{AdminBootstrap, RunningServer, Settings};
pub use ralf_testdb::{Backend, TestDatabase, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub use reqwest;
pub use serde_json::json;
pub use wait::wait_until;

pub const ADMIN_LOGIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
/// A fixed encryption key so tests can check what is stored.
pub const TEST_ENCRYPTION_KEY: &str = "hgmC7G6Gj5dKpbj4l5Y+e2DyQ3t7kp0ZpkvXkmMvmQ4=";

/// A running server with a first admin, on its own database.
pub struct TestServer {
    pub url: String,
    pub backend: Backend,
    server: Option<RunningServer>,
    // Dropped after the server, so the database outlives every connection.
    pub db: TestDatabase,
    _work: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with settings changed by `configure` first.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestServer {
        Self::start_on(TestDatabase::new(backend).await, configure).await
    }

    /// Starts on an existing database (e.g. one that [`TestServer::stop_keeping_database`]
    /// handed back, as a server restarted after a crash would), with settings changed by
    /// `configure` first.
    pub async fn start_on(db: TestDatabase, configure: impl FnOnce(&mut Settings)) -> TestServer {
        let backend = match db.settings {
            DatabaseSettings::Sqlite { .. } => Backend::Sqlite,
            DatabaseSettings::Postgres { .. } => Backend::Postgres,
        };
        let work = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::for_sqlite("unused".into());
        settings.database = db.settings.clone();
        settings.work_dir = work.path().join("work");
        settings.access_key_encryption = Some(TEST_ENCRYPTION_KEY.into());
        settings.admin = Some(AdminBootstrap {
            login: ADMIN_LOGIN.into(),
            password: ADMIN_PASSWORD.into(),
            name: "Admin".into(),
            email: "admin@example.test".into(),
        });
        configure(&mut settings);
        let server = ralf_server::start(settings).await.expect("server starts");
        TestServer {
            url: format!("http://{}", server.addr),
            backend,
            server: Some(server),
            db,
            _work: work,
        }
    }

    pub fn store(&self) -> &ralf_store::Store {
        &self.server.as_ref().expect("server running").store
    }

    /// Where the server serves `/metrics` on a listener of its own, if it does.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().expect("server running").metrics_addr
    }

    /// Where the server's tasks run (`<work_dir>/tasks/<id>/`).
    pub fn work_dir(&self) -> std::path::PathBuf {
        self._work.path().join("work")
    }

    /// The server's live news of tasks (what WebSocket clients hear), for tests that crowd it.
    pub fn live(&self) -> &ralf_server::dispatch::live::LiveHub {
        &self.server.as_ref().expect("server running").live
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> Api {
        Api::new(&self.url, None)
    }

    /// A client logged in as the first admin, with a bearer token.
    pub async fn admin(&self) -> Api {
        self.login(ADMIN_LOGIN, ADMIN_PASSWORD).await
    }

    /// Logs in with a password (cookie), then switches to a fresh bearer token.
    pub async fn login(&self, login: &str, password: &str) -> Api {
        Api::login(&self.url, login, password).await
    }

    /// Creates a user (through the admin API) and returns its id and a client logged in as it.
    pub async fn user(&self, username: &str, admin: bool) -> (i64, Api) {
        let password = format!("{username}-password");
        let r = self
            .admin()
            .await
            .post(
                "/api/users",
                json!({"username": username, "name": username, "email": format!("{username}@example.test"),
                       "password": password, "admin": admin}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "create user {username}: {}",
            r.body
        );
        let id = r.body["id"].as_i64().expect("user id");
        (id, self.login(username, &password).await)
    }

    /// Stops the server and waits for it to close its connections.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }

    /// Stops the server like [`TestServer::stop`] and hands back its database, to start
    /// another server on it with [`TestServer::start_on`].
    pub async fn stop_keeping_database(mut self) -> TestDatabase {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        self.db
    }
}

/// An HTTP client of the API: each call returns the status and the body (JSON when it parses,
/// else the text as a JSON string).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The `error` message of an error answer.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }
}

impl Api {
    /// A client of the server at `base`, logged in with a password (cookie) and then
    /// switched to a fresh bearer token.
    pub async fn login(base: &str, login: &str, password: &str) -> Api {
        let (cookie_client, _) = Api::cookie_login(base, login, password).await;
        let r = cookie_client.post("/api/user/tokens", json!({})).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "token for {login}: {}",
            r.body
        );
        Api::new(
            base,
            Some(r.body["id"].as_str().expect("token id").to_string()),
        )
    }

    /// A client of the server at `base` logged in with a password: it keeps the session
    /// cookie. Returns it and the login's answer (which sets the cookie).
    pub async fn cookie_login(base: &str, login: &str, password: &str) -> (Api, Reply) {
        let client = Api::new(base, None);
        let r = client
            .post(
                "/api/auth/login",
                json!({"auth": login, "password": password}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::NO_CONTENT,
            "login as {login}: {}",
            r.body
        );
        (client, r)
    }

    pub fn new(base: &str, token: Option<String>) -> Api {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        Api {
            base: base.to_string(),
            token,
            http,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::send(req, path).await
    }

    /// Sends a raw body with the JSON content type (for malformed-JSON tests).
    pub async fn send_raw(&self, method: Method, path: &str, raw: &str) -> Reply {
        let req = self
            .request(method, path)
            .header("content-type", "application/json")
            .body(raw.to_string());
        Self::send(req, path).await
    }

    /// Sends `raw` as the body with these headers (and the client's token, if any), as a
    /// webhook's sender does.
    pub async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        raw: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.request(method, path).body(raw.to_string());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Self::send(req, path).await
    }

    /// A request to `path` with the client's token, if any.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    async fn send(req: reqwest::RequestBuilder, path: &str) -> Reply {
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// POSTs and expects 201; returns the created object.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "POST {path}: {}", r.text);
        r.body
    }
}

/// A `ralf server` child process (the real binary), killed when dropped.
pub struct ServerProcess {
    pub url: String,
    port: u16,
    child: std::process::Child,
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl ServerProcess {
    /// Starts `binary server` with exactly `env` (plus PATH and HOME) and the extra `args`,
    /// listening on a free port given as `SEMAPHORE_PORT` unless `env` sets `SEMAPHORE_PORT` or
    /// `RALF_PORT` itself;
    /// waits until `/api/ping` answers.
    pub async fn start(binary: &str, env: &[(&str, String)], args: &[&str]) -> ServerProcess {
        Self::start_logging(binary, env, args, None).await
    }

    /// Starts like [`ServerProcess::start`], writing the server's log (its stderr) to `log`
    /// when given.
    pub async fn start_logging(
        binary: &str,
        env: &[(&str, String)],
        args: &[&str],
        log: Option<&std::path::Path>,
    ) -> ServerProcess {
        // A port given in `env` is kept (to restart a server where clients expect it).
        let port = env
            .iter()
            .rev()
            .find(|(k, _)| *k == "RALF_PORT" || *k == "SEMAPHORE_PORT")
            .and_then(|(_, v)| v.trim_start_matches(':').parse().ok())
            .unwrap_or_else(free_port);
        let mut cmd = std::process::Command::new(binary);
        cmd.arg("server").args(args).env_clear();
        for key in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        cmd.env("SEMAPHORE_PORT", port.to_string())
            .env("RALF_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(log) = log {
            cmd.stderr(std::fs::File::create(log).expect("log file"));
        }
        let child = cmd.spawn().expect("spawn ralf server");
        let url = format!("http://127.0.0.1:{port}");
        let process = ServerProcess { url, port, child };
        process.wait_ready().await;
        process
    }

    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        let ping = format!("{}/api/ping", self.url);
        wait_until(Duration::from_secs(15), async || {
            match http.get(&ping).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("{ping} answers {}", r.status())),
                Err(e) => Err(format!("{ping}: {e}")),
            }
        })
        .await;
    }

    pub fn api(&self, token: Option<String>) -> Api {
        Api::new(&self.url, token)
    }

    /// A client logged in as `login` (see [`Api::login`]).
    pub async fn login(&self, login: &str, password: &str) -> Api {
        Api::login(&self.url, login, password).await
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(mut self) -> bool {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `ralf runner start` child process (the real binary) with its own work directory,
/// killed when dropped.
pub struct RunnerProcess {
    child: std::process::Child,
    _work: tempfile::TempDir,
}

impl RunnerProcess {
    /// Starts `binary runner start` against `url` with the runner token `token`, running up
    /// to `max_parallel` tasks at once; tasks find their programs on `path`.
    pub fn start(
        binary: &str,
        url: &str,
        token: &str,
        max_parallel: u32,
        path: &std::ffi::OsStr,
    ) -> RunnerProcess {
        let work = tempfile::tempdir().expect("temp dir");
        let child = std::process::Command::new(binary)
            .args(["runner", "start", "--url", url, "--work-dir"])
            .arg(work.path())
            .args(["--max-parallel-tasks", &max_parallel.to_string()])
            .env_clear()
            .env("PATH", path)
            .env("RALF_RUNNER_TOKEN", token)
            .env("RALF_LOG", "warn")
            .spawn()
            .expect("spawn ralf runner");
        RunnerProcess { child, _work: work }
    }

    /// Where the runner keeps its checkouts and its tasks' files.
    pub fn work_dir(&self) -> &std::path::Path {
        self._work.path()
    }

    /// Kills the runner at once (SIGKILL), as a crash or a lost host would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RunnerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl ServerProcess {
    /// Kills the server at once (SIGKILL): no shutdown, its tasks' processes orphaned.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A git repository made with the `git` command line in a temp dir, for tasks to check out.
pub struct GitRepo {
    pub dir: tempfile::TempDir,
}

impl GitRepo {
    /// A repository whose `main` branch has one commit with these files (`path`, `content`);
    /// files ending in `.sh` are executable.
    pub fn new(files: &[(&str, &str)]) -> GitRepo {
        let repo = GitRepo {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.email", "test@example.test"]);
        repo.git(&["config", "user.name", "Test"]);
        repo.commit(files, "initial commit");
        repo
    }

    /// `file://` URL of the repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    /// Writes the files and commits them on the current branch; returns the commit hash.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let full = self.dir.path().join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&full, content).expect("write file");
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Runs git in the repository and returns its standard output.
    pub fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `git daemon` serving one repository at a `git://` URL on a free loopback port; killed
/// when dropped. Commits made in the repository afterwards are served at once.
pub struct GitDaemon {
    pub url: String,
    child: std::process::Child,
}

impl GitRepo {
    /// Serves this repository with `git daemon` (its directory and nothing else).
    pub fn serve(&self) -> GitDaemon {
        let dir = self.dir.path();
        let (base, name) = (
            dir.parent().expect("a parent"),
            dir.file_name().expect("a name"),
        );
        let port = free_port();
        // `git-daemon` itself: `git daemon` would run it as a child that outlives a kill.
        let exec_path = std::process::Command::new("git")
            .arg("--exec-path")
            .output()
            .expect("git --exec-path");
        let exec_path = String::from_utf8_lossy(&exec_path.stdout)
            .trim()
            .to_string();
        let child = std::process::Command::new(format!("{exec_path}/git-daemon"))
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "git daemon did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        GitDaemon {
            url: format!("git://127.0.0.1:{port}/{}", name.to_string_lossy()),
            child,
        }
    }
}

impl GitDaemon {
    /// The daemon's process id (the `git upload-pack` it starts for each client are its
    /// children).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Api {
    /// Polls a task until it is finished (or waits for a confirmation) and returns it.
    pub async fn wait_task(&self, project_id: i64, task_id: i64, timeout: Duration) -> Value {
        const ENDS: [&str; 5] = [
            "success",
            "error",
            "stopped",
            "rejected",
            "waiting_confirmation",
        ];
        self.wait_task_until(project_id, task_id, timeout, |status| {
            ENDS.contains(&status)
        })
        .await
    }

    /// Waits until a task has the given status.
    pub async fn wait_status(
        &self,
        project_id: i64,
        task_id: i64,
        status: &str,
        timeout: Duration,
    ) -> Value {
        self.wait_task_until(project_id, task_id, timeout, |now| now == status)
            .await
    }

    /// Polls a task until its status is one that `wanted` accepts, and returns it.
    pub async fn wait_task_until(
        &self,
        project_id: i64,
        task_id: i64,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Value {
        let path = format!("/api/project/{project_id}/tasks/{task_id}");
        wait_until(timeout, async || {
            let task = self.get(&path).await.body;
            match task["status"].as_str() {
                Some(status) if wanted(status) => Ok(task),
                _ => Err(format!("task {task_id} is {}", task["status"])),
            }
        })
        .await
    }

    /// The output lines of a task, as text.
    pub async fn output_lines(&self, project_id: i64, task_id: i64) -> Vec<String> {
        let out = self
            .get(&format!("/api/project/{project_id}/tasks/{task_id}/output"))
            .await
            .body;
        out.as_array()
            .expect("output array")
            .iter()
            .map(|l| l["output"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// The one task slot of a server started with [`TestServer::start_busy`], taken by a task that
/// does not end by itself: `sleep 300` from a real repository, in a project of its own. Every
/// task started after it stays `waiting` — queued for the reason a user would see — until this
/// one is stopped; the server's shutdown stops it.
pub struct BusySlot {
    pub project: i64,
    pub task: i64,
    _project: TestProject,
}

impl TestServer {
    /// Starts a server that runs one task at a time (`max_parallel_tasks = 1`) and takes its
    /// slot with a [`BusySlot`]; returns once that task runs.
    pub async fn start_busy(backend: Backend) -> (TestServer, BusySlot) {
        let server = Self::start_with(backend, |s| s.max_parallel_tasks = 1).await;
        let api = server.admin().await;
        let project = ProjectFixture::new("busy slot")
            .files(&[("hold.sh", "sleep 300\n")])
            .template(json!({"name": "hold", "playbook": "hold.sh"}))
            .create(&api)
            .await;
        let task = api
            .create(
                &project.path("/tasks"),
                json!({"template_id": project.template()}),
            )
            .await["id"]
            .as_i64()
            .expect("task id");
        api.wait_status(project.id, task, "running", Duration::from_secs(60))
            .await;
        let slot = BusySlot {
            project: project.id,
            task,
            _project: project,
        };
        (server, slot)
    }
}
