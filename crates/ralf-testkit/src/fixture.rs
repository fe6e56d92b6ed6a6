//! The project most tests start from, made through the real API: a key, a repository (a real
//! git repository in a temp dir, holding the files a test gives it), an inventory, an
//! environment if asked for, and templates.
//!
//! ```text
//! let project = ProjectFixture::new("demo")
//!     .files(&[("run.sh", "echo hi\n")])
//!     .template(json!({}))
//!     .create(&api)
//!     .await;
//! api.create(&project.path("/tasks"), json!({"template_id": project.template()})).await;
//! ```

use serde_json::{Value, json};

use crate::{Api, GitRepo};

/// What to make; each part starts from a default that a builder method changes.
pub struct ProjectFixture {
    project: Value,
    key: Value,
    source: Source,
    inventory: Value,
    environment: Option<Value>,
    templates: Vec<Value>,
}

/// Where the project's repository points.
enum Source {
    /// A new git repository with these files (`path`, `content`) on branch `main`.
    Files(Vec<(String, String)>),
    /// Somewhere else, on branch `main` (a repository the test keeps, or one that is not there).
    Url(String),
}

/// The ids of what [`ProjectFixture::create`] made, and the repository it made.
pub struct TestProject {
    pub id: i64,
    pub key: i64,
    pub repository: i64,
    pub inventory: i64,
    pub environment: Option<i64>,
    /// In the order they were asked for.
    pub templates: Vec<i64>,
    /// The git repository behind `repository`, removed when the project is dropped (`None`
    /// when the repository was given by URL).
    pub repo: Option<GitRepo>,
}

impl ProjectFixture {
    /// A project called `name` with a `none` key, a repository with an empty commit, a
    /// `localhost` static inventory, no environment and no template.
    pub fn new(name: &str) -> ProjectFixture {
        ProjectFixture {
            project: json!({"name": name}),
            key: json!({"name": "none", "type": "none"}),
            source: Source::Files(Vec::new()),
            inventory: json!({"name": "local", "type": "static", "inventory": "localhost"}),
            environment: None,
            templates: Vec::new(),
        }
    }

    /// More fields of the project (e.g. `max_parallel_tasks`).
    pub fn project(mut self, fields: Value) -> ProjectFixture {
        merge_fields(&mut self.project, fields);
        self
    }

    /// The repository holds these files (`path`, `content`); those ending in `.sh` are
    /// executable.
    pub fn files(mut self, files: &[(&str, &str)]) -> ProjectFixture {
        let files = files
            .iter()
            .map(|(path, content)| (path.to_string(), content.to_string()))
            .collect();
        self.source = Source::Files(files);
        self
    }

    /// The repository is the one at `url` (branch `main`) instead of a new one.
    pub fn git_url(mut self, url: &str) -> ProjectFixture {
        self.source = Source::Url(url.to_string());
        self
    }

    /// Fields of the inventory over the default (e.g. `inventory`, the hosts).
    pub fn inventory(mut self, fields: Value) -> ProjectFixture {
        merge_fields(&mut self.inventory, fields);
        self
    }

    /// An environment (variable group) of these fields over `{name: "vars", json: "{}",
    /// env: "{}"}`; the templates use it.
    pub fn environment(mut self, fields: Value) -> ProjectFixture {
        let mut environment = json!({"name": "vars", "json": "{}", "env": "{}"});
        merge_fields(&mut environment, fields);
        self.environment = Some(environment);
        self
    }

    /// One more template: `fields` over the defaults of [`TestProject::add_template`].
    pub fn template(mut self, fields: Value) -> ProjectFixture {
        self.templates.push(fields);
        self
    }

    /// Makes it all through `api`, each creation expected to succeed.
    pub async fn create(self, api: &Api) -> TestProject {
        let id = created(api, "/api/projects", self.project).await;
        let base = format!("/api/project/{id}");
        let key = created(api, &format!("{base}/keys"), self.key).await;
        let (repo, url) = match self.source {
            Source::Files(files) => {
                let files: Vec<(&str, &str)> = files
                    .iter()
                    .map(|(p, c)| (p.as_str(), c.as_str()))
                    .collect();
                let repo = GitRepo::new(&files);
                let url = repo.url();
                (Some(repo), url)
            }
            Source::Url(url) => (None, url),
        };
        let repository = created(
            api,
            &format!("{base}/repositories"),
            json!({"name": "repo", "git_url": url, "git_branch": "main", "ssh_key_id": key}),
        )
        .await;
        let inventory = created(api, &format!("{base}/inventory"), self.inventory).await;
        let environment = match self.environment {
            Some(body) => Some(created(api, &format!("{base}/environment"), body).await),
            None => None,
        };
        let mut project = TestProject {
            id,
            key,
            repository,
            inventory,
            environment,
            templates: Vec::new(),
            repo,
        };
        for fields in self.templates {
            let template = project.add_template(api, fields).await;
            project.templates.push(template);
        }
        project
    }
}

impl TestProject {
    /// `/api/project/{id}` followed by `rest`.
    pub fn path(&self, rest: &str) -> String {
        format!("/api/project/{}{rest}", self.id)
    }

    /// The first template asked for.
    pub fn template(&self) -> i64 {
        *self
            .templates
            .first()
            .expect("the fixture was asked for a template")
    }

    /// Creates a template of `fields` over `{name: "run", app: "bash", playbook: "run.sh"}`
    /// with the project's repository, inventory and environment (if any); returns its id.
    pub async fn add_template(&self, api: &Api, fields: Value) -> i64 {
        let mut body = json!({"name": "run", "app": "bash", "playbook": "run.sh",
                              "repository_id": self.repository, "inventory_id": self.inventory});
        if let Some(environment) = self.environment {
            body["environment_id"] = json!(environment);
        }
        merge_fields(&mut body, fields);
        created(api, &self.path("/templates"), body).await
    }
}

/// Sets each field of the object `fields` in `body`.
pub fn merge_fields(body: &mut Value, fields: Value) {
    let Value::Object(fields) = fields else {
        panic!("fields to merge must be a JSON object, not {fields}");
    };
    for (k, v) in fields {
        body[k] = v;
    }
}

/// POSTs `body` to `path`, expects 201 and returns the new object's id.
async fn created(api: &Api, path: &str, body: Value) -> i64 {
    api.create(path, body).await["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("POST {path} answered no id"))
}
