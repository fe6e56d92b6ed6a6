//! A project wired to a git repository, for execution tests, and the Python environment
//! (ansible-core, terraform) the ansible and terraform tests run with.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ralf_server::Settings;
use ralf_testkit::{
    Api, Backend, GitRepo, ProjectFixture, TestProject, TestServer, json, merge_fields, wait_until,
};
use serde_json::Value;

/// How long a test waits for a task to end.
pub const WAIT: Duration = Duration::from_secs(60);

/// The Python virtual environment with ansible-core and terraform (made by
/// `scripts/python-env.sh`): `$RALF_VENV`, by default `.venv` at the repository's root. A test
/// that needs it fails, saying so, when it is missing.
pub fn venv() -> PathBuf {
    let dir = match std::env::var_os("RALF_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
    };
    for tool in ["python", "ansible-playbook", "ansible-vault", "terraform"] {
        let path = dir.join("bin").join(tool);
        assert!(
            path.is_file(),
            "{} is missing: the ansible and terraform execution tests need the Python \
             environment with ansible-core and terraform; create it with scripts/python-env.sh \
             (or point RALF_VENV at one)",
            path.display()
        );
    }
    dir
}

/// `<venv>/bin` followed by the test's own `PATH`.
pub fn venv_path() -> OsString {
    let mut dirs = vec![venv().join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("PATH entries without ':'")
}

/// A server whose tasks find the venv's tools first on their `PATH` (`configure` may change
/// more settings).
pub async fn venv_server(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestServer {
    let path = venv_path();
    TestServer::start_with(backend, move |s| {
        s.exec_path = Some(path);
        configure(s);
    })
    .await
}

/// The `ANSIBLE_PYTHON_INTERPRETER` ansible tasks need here (its discovery does not work in
/// this environment): the venv's python. Tasks get it through a variable group's `env`.
pub fn ansible_python() -> String {
    venv().join("bin/python").display().to_string()
}

pub struct Project {
    pub id: i64,
    pub repository: i64,
    pub api: Api,
    pub(crate) made: TestProject,
}

impl Project {
    /// A project with a `none` key, a repository at `repo` and a localhost inventory.
    pub async fn new(server: &TestServer, repo: &GitRepo) -> Project {
        Self::with(server, &repo.url(), json!({})).await
    }

    /// A project (its fields added to `{name}`) with a `none` key, a repository at `url`
    /// (branch `main`) and a localhost inventory.
    pub async fn with(server: &TestServer, url: &str, fields: Value) -> Project {
        let api = server.admin().await;
        let made = ProjectFixture::new("exec")
            .project(fields)
            .git_url(url)
            .inventory(json!({"inventory": "localhost ansible_connection=local"}))
            .create(&api)
            .await;
        Project {
            id: made.id,
            repository: made.repository,
            api,
            made,
        }
    }

    /// Creates a template; `fields` add to or override `{name, app, playbook, repository_id,
    /// inventory_id}`.
    pub async fn template(&self, name: &str, app: &str, playbook: &str, fields: Value) -> i64 {
        let mut body = json!({"name": name, "app": app, "playbook": playbook});
        merge_fields(&mut body, fields);
        self.made.add_template(&self.api, body).await
    }

    /// Creates an object under `/api/project/{id}/{what}` and returns its id.
    pub async fn create(&self, what: &str, body: Value) -> i64 {
        self.api
            .create(&format!("/api/project/{}/{what}", self.id), body)
            .await["id"]
            .as_i64()
            .unwrap()
    }

    /// A variable group: `json` (extra variables) and `env` are JSON objects, `secrets` a list
    /// of `{name, secret, type}`.
    pub async fn environment(&self, json: Value, env: Value, secrets: Value) -> i64 {
        self.create(
            "environment",
            json!({"name": "vars", "json": json.to_string(), "env": env.to_string(),
                   "secrets": secrets}),
        )
        .await
    }

    /// Starts a task and returns its id.
    pub async fn start(&self, body: Value) -> i64 {
        self.create("tasks", body).await
    }

    /// POSTs `body` to `/api/project/{id}/{what}` and returns the reply (for refusals).
    pub async fn post(&self, what: &str, body: Value) -> ralf_testkit::Reply {
        self.api
            .post(&format!("/api/project/{}/{what}", self.id), body)
            .await
    }

    /// The task as the API shows it now.
    pub async fn task(&self, task: i64) -> Value {
        self.api
            .get(&format!("/api/project/{}/tasks/{task}", self.id))
            .await
            .body
    }

    /// Waits for the task to finish (or to wait for a confirmation); returns it and its
    /// output lines.
    pub async fn finish(&self, task: i64) -> (Value, Vec<String>) {
        let done = self.api.wait_task(self.id, task, WAIT).await;
        (done, self.output(task).await)
    }

    /// Starts a task and waits for it to finish.
    pub async fn run(&self, body: Value) -> (Value, Vec<String>) {
        let task = self.start(body).await;
        self.finish(task).await
    }

    /// The task's output lines.
    pub async fn output(&self, task: i64) -> Vec<String> {
        self.api.output_lines(self.id, task).await
    }

    /// The task's `raw_output` text.
    pub async fn raw_output(&self, task: i64) -> String {
        self.api
            .get(&format!("/api/project/{}/tasks/{task}/raw_output", self.id))
            .await
            .text
    }

    /// Waits until the task's output has a line containing `text`; returns the output.
    pub async fn wait_for_line(&self, task: i64, text: &str) -> Vec<String> {
        wait_until(WAIT, async || {
            let lines = self.output(task).await;
            if has(&lines, text) {
                Ok(lines)
            } else {
                Err(format!("task {task} never printed {text:?}: {lines:#?}"))
            }
        })
        .await
    }
}

/// Whether some output line contains `text`.
pub fn has(lines: &[String], text: &str) -> bool {
    lines.iter().any(|l| l.contains(text))
}

/// Waits until `path` exists (a script's signal to the test).
pub async fn wait_for_file(path: &Path) {
    wait_until(WAIT, async || {
        if path.exists() {
            Ok(())
        } else {
            Err(format!("{} never appeared", path.display()))
        }
    })
    .await
}
