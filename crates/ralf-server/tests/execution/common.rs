//! A project wired to a git repository, for execution tests.

use ralf_testkit::{Api, GitRepo, TestServer, json};
use serde_json::Value;

pub struct Project {
    pub id: i64,
    pub repository: i64,
    pub inventory: i64,
    pub api: Api,
}

impl Project {
    /// A project with a `none` key, a repository at `repo` and a localhost inventory.
    pub async fn new(server: &TestServer, repo: &GitRepo) -> Project {
        let api = server.admin().await;
        let id = api.create("/api/projects", json!({"name": "exec"})).await["id"]
            .as_i64()
            .unwrap();
        let base = format!("/api/project/{id}");
        let key = api
            .create(
                &format!("{base}/keys"),
                json!({"name": "none", "type": "none"}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let repository = api
            .create(
                &format!("{base}/repositories"),
                json!({"name": "repo", "git_url": repo.url(), "git_branch": "main", "ssh_key_id": key}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let inventory = api
            .create(
                &format!("{base}/inventory"),
                json!({"name": "local", "type": "static", "inventory": "localhost ansible_connection=local"}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        Project {
            id,
            repository,
            inventory,
            api,
        }
    }

    /// Creates a template; `fields` add to or override `{name, app, playbook, repository_id,
    /// inventory_id}`.
    pub async fn template(&self, name: &str, app: &str, playbook: &str, fields: Value) -> i64 {
        let mut body = json!({"name": name, "app": app, "playbook": playbook,
                              "repository_id": self.repository, "inventory_id": self.inventory});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.api
            .create(&format!("/api/project/{}/templates", self.id), body)
            .await["id"]
            .as_i64()
            .unwrap()
    }

    /// Starts a task and returns its id.
    pub async fn start(&self, body: Value) -> i64 {
        self.api
            .create(&format!("/api/project/{}/tasks", self.id), body)
            .await["id"]
            .as_i64()
            .unwrap()
    }
}
