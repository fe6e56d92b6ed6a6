//! The whole role × route matrix of project routes: a guest reads, a task_runner also runs
//! tasks, a manager also edits resources, an owner also manages members and the project itself;
//! a non-member finds nothing (404); a global admin who is not a member may do everything.
//!
//! The table below must name every project route of the OpenAPI document, so a new route
//! cannot be added without saying who may call it.
//!
//! Tasks really run, so the server runs one task at a time and its slot is taken
//! ([`TestServer::start_busy`]): a fixture's task stays `waiting` whatever the timing, and the
//! task routes meet the same task on every attempt.

use std::collections::{BTreeSet, HashMap};

use ralf_testkit::reqwest::{Method, StatusCode};
use ralf_testkit::{Api, Backend, GitRepo, TestServer, json, on_both_backends};
use serde_json::Value;

/// What a route needs, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Read,
    RunTasks,
    ManageResources,
    /// Owner only: members, and the project itself.
    Owner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Outsider,
    Guest,
    TaskRunner,
    Manager,
    Owner,
    /// A global admin who is not a member.
    Admin,
}

impl Caller {
    const ALL: [Caller; 6] = [
        Caller::Outsider,
        Caller::Guest,
        Caller::TaskRunner,
        Caller::Manager,
        Caller::Owner,
        Caller::Admin,
    ];

    fn may(self, need: Need) -> bool {
        match self {
            Caller::Outsider => false,
            Caller::Guest => need == Need::Read,
            Caller::TaskRunner => need <= Need::RunTasks,
            Caller::Manager => need <= Need::ManageResources,
            Caller::Owner | Caller::Admin => true,
        }
    }
}

/// One route: method, path with `{placeholders}` filled from a [`Fixture`], body, what it needs.
struct Route {
    method: Method,
    path: &'static str,
    body: fn(&Fixture) -> Option<Value>,
    need: Need,
}

fn no_body(_: &Fixture) -> Option<Value> {
    None
}

macro_rules! route {
    ($method:ident $path:literal, $need:ident) => {
        Route {
            method: Method::$method,
            path: $path,
            body: no_body,
            need: Need::$need,
        }
    };
    ($method:ident $path:literal, $need:ident, |$f:ident| $body:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            body: |$f: &Fixture| Some($body),
            need: Need::$need,
        }
    };
}

fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/project/{project_id}", Read),
        route!(PUT "/api/project/{project_id}", Owner, |f| json!({"id": f.project, "name": "renamed"})),
        route!(DELETE "/api/project/{project_id}", Owner),
        route!(GET "/api/project/{project_id}/role", Read),
        route!(GET "/api/project/{project_id}/backup", Read),
        route!(GET "/api/project/{project_id}/events", Read),
        route!(GET "/api/project/{project_id}/events/last", Read),
        route!(GET "/api/project/{project_id}/users", Read),
        route!(POST "/api/project/{project_id}/users", Owner, |f| json!({"user_id": f.spare_user, "role": "guest"})),
        route!(GET "/api/project/{project_id}/users/{user_id}", Read),
        route!(PUT "/api/project/{project_id}/users/{user_id}", Owner, |_f| json!({"role": "manager"})),
        route!(DELETE "/api/project/{project_id}/users/{user_id}", Owner),
        route!(GET "/api/project/{project_id}/keys", Read),
        route!(POST "/api/project/{project_id}/keys", ManageResources, |_f| json!({"name": "k2", "type": "none"})),
        route!(GET "/api/project/{project_id}/keys/{key_id}", Read),
        route!(PUT "/api/project/{project_id}/keys/{key_id}", ManageResources, |f| json!({"id": f.spare_key, "name": "k3", "type": "none"})),
        route!(DELETE "/api/project/{project_id}/keys/{key_id}", ManageResources),
        route!(GET "/api/project/{project_id}/keys/{key_id}/refs", Read),
        route!(GET "/api/project/{project_id}/repositories", Read),
        route!(POST "/api/project/{project_id}/repositories", ManageResources, |f| json!({"name": "r2", "git_url": "file:///tmp/r2", "git_branch": "main", "ssh_key_id": f.key})),
        route!(GET "/api/project/{project_id}/repositories/{repository_id}", Read),
        route!(PUT "/api/project/{project_id}/repositories/{repository_id}", ManageResources, |f| json!({"id": f.spare_repository, "name": "r3", "git_url": "file:///tmp/r3", "git_branch": "main", "ssh_key_id": f.key})),
        route!(DELETE "/api/project/{project_id}/repositories/{repository_id}", ManageResources),
        route!(GET "/api/project/{project_id}/repositories/{repository_id}/refs", Read),
        route!(GET "/api/project/{project_id}/inventory", Read),
        route!(POST "/api/project/{project_id}/inventory", ManageResources, |_f| json!({"name": "i2", "type": "static", "inventory": "localhost"})),
        route!(GET "/api/project/{project_id}/inventory/{inventory_id}", Read),
        route!(PUT "/api/project/{project_id}/inventory/{inventory_id}", ManageResources, |f| json!({"id": f.spare_inventory, "name": "i3", "type": "static", "inventory": "localhost"})),
        route!(DELETE "/api/project/{project_id}/inventory/{inventory_id}", ManageResources),
        route!(GET "/api/project/{project_id}/inventory/{inventory_id}/refs", Read),
        route!(GET "/api/project/{project_id}/environment", Read),
        route!(POST "/api/project/{project_id}/environment", ManageResources, |_f| json!({"name": "e2", "json": "{}", "env": "{}"})),
        route!(GET "/api/project/{project_id}/environment/{environment_id}", Read),
        route!(PUT "/api/project/{project_id}/environment/{environment_id}", ManageResources, |f| json!({"id": f.spare_environment, "name": "e3", "json": "{}", "env": "{}"})),
        route!(DELETE "/api/project/{project_id}/environment/{environment_id}", ManageResources),
        route!(GET "/api/project/{project_id}/environment/{environment_id}/refs", Read),
        route!(GET "/api/project/{project_id}/views", Read),
        route!(POST "/api/project/{project_id}/views", ManageResources, |_f| json!({"title": "v2"})),
        route!(POST "/api/project/{project_id}/views/positions", ManageResources, |f| json!([{"id": f.view, "position": 3}])),
        route!(GET "/api/project/{project_id}/views/{view_id}", Read),
        route!(PUT "/api/project/{project_id}/views/{view_id}", ManageResources, |f| json!({"id": f.view, "title": "v3", "position": 1})),
        route!(DELETE "/api/project/{project_id}/views/{view_id}", ManageResources),
        route!(GET "/api/project/{project_id}/views/{view_id}/templates", Read),
        route!(GET "/api/project/{project_id}/templates", Read),
        route!(POST "/api/project/{project_id}/templates", ManageResources, |f| json!({"name": "t2", "app": "bash", "playbook": "x.sh", "repository_id": f.repository, "inventory_id": f.inventory})),
        route!(GET "/api/project/{project_id}/templates/{template_id}", Read),
        route!(PUT "/api/project/{project_id}/templates/{template_id}", ManageResources, |f| json!({"id": f.template, "name": "t3", "app": "bash", "playbook": "x.sh", "repository_id": f.repository, "inventory_id": f.inventory})),
        route!(DELETE "/api/project/{project_id}/templates/{template_id}", ManageResources),
        route!(GET "/api/project/{project_id}/retention", Read),
        route!(PUT "/api/project/{project_id}/retention", Owner, |_f| json!({"keep_tasks": 100})),
        route!(GET "/api/project/{project_id}/templates/{template_id}/retention", Read),
        route!(PUT "/api/project/{project_id}/templates/{template_id}/retention", Owner, |_f| json!({"keep_days": 30})),
        route!(GET "/api/project/{project_id}/templates/{template_id}/refs", Read),
        route!(GET "/api/project/{project_id}/templates/{template_id}/tasks", Read),
        route!(GET "/api/project/{project_id}/templates/{template_id}/tasks/last", Read),
        route!(GET "/api/project/{project_id}/tasks", Read),
        route!(POST "/api/project/{project_id}/tasks", RunTasks, |f| json!({"template_id": f.template})),
        route!(GET "/api/project/{project_id}/tasks/last", Read),
        route!(GET "/api/project/{project_id}/tasks/{task_id}", Read),
        route!(DELETE "/api/project/{project_id}/tasks/{task_id}", ManageResources),
        route!(GET "/api/project/{project_id}/tasks/{task_id}/output", Read),
        route!(GET "/api/project/{project_id}/tasks/{task_id}/raw_output", Read),
        route!(POST "/api/project/{project_id}/tasks/{task_id}/stop", RunTasks, |_f| json!({})),
        route!(POST "/api/project/{project_id}/tasks/{task_id}/confirm", RunTasks, |_f| json!({})),
        route!(POST "/api/project/{project_id}/tasks/{task_id}/reject", RunTasks, |_f| json!({})),
        route!(GET "/api/project/{project_id}/runners", Read),
        route!(POST "/api/project/{project_id}/runners", ManageResources, |_f| json!({"name": "r2", "tags": ["t"]})),
        route!(GET "/api/project/{project_id}/runners/{runner_id}", Read),
        route!(PUT "/api/project/{project_id}/runners/{runner_id}", ManageResources, |f| json!({"id": f.runner, "name": "r3"})),
        route!(DELETE "/api/project/{project_id}/runners/{runner_id}", ManageResources),
        route!(POST "/api/project/{project_id}/runners/{runner_id}/active", ManageResources, |_f| json!({"active": false})),
        route!(POST "/api/project/{project_id}/runners/{runner_id}/registration-token", ManageResources),
        route!(DELETE "/api/project/{project_id}/runners/{runner_id}/cache", ManageResources),
        route!(GET "/api/project/{project_id}/runner_tags", Read),
        route!(GET "/api/project/{project_id}/schedules", Read),
        route!(POST "/api/project/{project_id}/schedules", ManageResources, |f| json!({"template_id": f.template, "cron_format": "0 0 1 1 *"})),
        route!(POST "/api/project/{project_id}/schedules/validate", ManageResources, |_f| json!({"cron_format": "* * * * *"})),
        route!(GET "/api/project/{project_id}/schedules/{schedule_id}", Read),
        route!(PUT "/api/project/{project_id}/schedules/{schedule_id}", ManageResources, |f| json!({"id": f.schedule, "template_id": f.template, "cron_format": "0 0 2 1 *"})),
        route!(DELETE "/api/project/{project_id}/schedules/{schedule_id}", ManageResources),
        route!(PUT "/api/project/{project_id}/schedules/{schedule_id}/active", ManageResources, |_f| json!({"active": false})),
        route!(GET "/api/project/{project_id}/templates/{template_id}/schedules", Read),
        route!(POST "/api/project/{project_id}/templates/{template_id}/stop_all_tasks", RunTasks, |_f| json!({})),
        route!(GET "/api/project/{project_id}/host_configs", Read),
        route!(POST "/api/project/{project_id}/host_configs", ManageResources, |f| json!({"type": "host", "host": "h2", "ssh_key_id": f.key})),
        route!(GET "/api/project/{project_id}/host_configs/{host_config_id}", Read),
        route!(PUT "/api/project/{project_id}/host_configs/{host_config_id}", ManageResources, |f| json!({"id": f.host_config, "type": "url", "host": "h3"})),
        route!(DELETE "/api/project/{project_id}/host_configs/{host_config_id}", ManageResources),
        route!(GET "/api/project/{project_id}/integrations", Read),
        route!(POST "/api/project/{project_id}/integrations", ManageResources, |f| json!({"name": "i2", "template_id": f.template})),
        route!(GET "/api/project/{project_id}/integrations/{integration_id}", Read),
        route!(PUT "/api/project/{project_id}/integrations/{integration_id}", ManageResources, |f| json!({"name": "i3", "template_id": f.template})),
        route!(DELETE "/api/project/{project_id}/integrations/{integration_id}", ManageResources),
        route!(GET "/api/project/{project_id}/integrations/{integration_id}/matchers", Read),
        route!(POST "/api/project/{project_id}/integrations/{integration_id}/matchers", ManageResources, |_f| json!({"name": "m2", "match_type": "header", "method": "equals", "key": "X-Event", "value": "push"})),
        route!(PUT "/api/project/{project_id}/integrations/{integration_id}/matchers/{matcher_id}", ManageResources, |_f| json!({"name": "m3", "match_type": "header", "method": "contains", "key": "X-Event", "value": "pu"})),
        route!(DELETE "/api/project/{project_id}/integrations/{integration_id}/matchers/{matcher_id}", ManageResources),
        route!(GET "/api/project/{project_id}/integrations/{integration_id}/values", Read),
        route!(POST "/api/project/{project_id}/integrations/{integration_id}/values", ManageResources, |_f| json!({"name": "v2", "value_source": "body", "body_data_type": "json", "key": "ref", "variable": "REF"})),
        route!(PUT "/api/project/{project_id}/integrations/{integration_id}/values/{extractvalue_id}", ManageResources, |_f| json!({"name": "v3", "value_source": "body", "key": "ref", "variable": "BRANCH", "variable_type": "environment"})),
        route!(DELETE "/api/project/{project_id}/integrations/{integration_id}/values/{extractvalue_id}", ManageResources),
        route!(GET "/api/project/{project_id}/integrations/{integration_id}/aliases", Read),
        route!(POST "/api/project/{project_id}/integrations/{integration_id}/aliases", ManageResources, |_f| json!({})),
        route!(DELETE "/api/project/{project_id}/integrations/{integration_id}/aliases/{alias_id}", ManageResources),
        route!(GET "/api/project/{project_id}/integrations/aliases", Read),
        route!(POST "/api/project/{project_id}/integrations/aliases", ManageResources, |_f| json!({})),
        route!(DELETE "/api/project/{project_id}/integrations/aliases/{alias_id}", ManageResources),
        // The project's alerts are off, so those who may send a test get 409.
        route!(POST "/api/project/{project_id}/notifications/test", RunTasks),
        route!(GET "/api/project/{project_id}/catalog/settings", Read),
        route!(PUT "/api/project/{project_id}/catalog/settings", Owner, |f| json!({"repository_id": f.catalog_repository(), "parallelism": 2})),
        route!(GET "/api/project/{project_id}/catalog/services", Read),
        route!(GET "/api/project/{project_id}/catalog/graph", Read),
        route!(GET "/api/project/{project_id}/catalog/plan", Read),
        route!(GET "/api/project/{project_id}/catalog/rollouts", Read),
        route!(POST "/api/project/{project_id}/catalog/rollouts", RunTasks, |_f| json!({})),
        route!(POST "/api/project/{project_id}/catalog/check", RunTasks, |_f| json!({})),
        route!(GET "/api/project/{project_id}/catalog/rollouts/{rollout_id}", Read),
        route!(POST "/api/project/{project_id}/catalog/rollouts/{rollout_id}/cancel", RunTasks),
        route!(POST "/api/project/{project_id}/catalog/services/{name}/approve", RunTasks),
        route!(POST "/api/project/{project_id}/catalog/services/{name}/reject", RunTasks),
    ]
}

impl Route {
    /// Whether the route needs the fixture's project to have a service catalog (deleting the
    /// project deletes it too).
    fn needs_catalog(&self) -> bool {
        self.path.contains("/catalog/")
            || (self.method == Method::DELETE && self.path == "/api/project/{project_id}")
    }
}

/// Routes answered the same way for everybody, whatever their role.
const NOT_IN_MATRIX: &[(&str, &str)] = &[
    // Always 404: tasks start with POST /api/project/{id}/tasks (a Semaphore rule).
    (
        "post",
        "/api/project/{project_id}/templates/{template_id}/tasks",
    ),
    // A WebSocket (Read): plain requests get 426; who may stream is tested in
    // tests/execution/live.rs.
    ("get", "/api/project/{project_id}/tasks/{task_id}/stream"),
    // No session: the sender proves the project's webhook secret (401 for anyone without it);
    // tested in tests/execution/catalog/webhook.rs.
    ("post", "/api/project/{project_id}/catalog/webhook"),
];

/// The people of the matrix, made once per server.
struct People {
    admin: Api,
    callers: HashMap<&'static str, (i64, Api)>,
    outside_admin: Api,
}

/// A fresh project with one object of each kind, members in every role, and spare objects
/// that nothing uses (so deletes can succeed).
struct Fixture {
    project: i64,
    key: i64,
    spare_key: i64,
    repository: i64,
    spare_repository: i64,
    inventory: i64,
    spare_inventory: i64,
    spare_environment: i64,
    view: i64,
    template: i64,
    /// A schedule of the template that fires once a year.
    schedule: i64,
    /// A task queued behind the busy slot: `waiting`.
    task: i64,
    /// A task stopped before it ran: finished, so it can be deleted.
    finished_task: i64,
    /// A project runner created without credentials (so it may get a registration token).
    runner: i64,
    /// A member the membership routes act on.
    member: i64,
    /// A user who is not yet a member.
    spare_user: i64,
    host_config: i64,
    /// An integration of the template with a matcher, an extract value and an alias.
    integration: i64,
    matcher: i64,
    extract_value: i64,
    integration_alias: i64,
    /// An alias of the project (for all its integrations).
    project_alias: i64,
    /// For the catalog's routes: a repository whose catalog has one service, `app`, which
    /// waits for approval in a rollout.
    catalog: Option<CatalogFixture>,
}

struct CatalogFixture {
    _repo: GitRepo,
    repository: i64,
    rollout: i64,
}

impl Fixture {
    /// Gives the project a service catalog and starts a rollout of it, which waits for the
    /// approval of its one service.
    async fn add_catalog(&mut self, people: &People) {
        let api = &people.admin;
        let base = format!("/api/project/{}", self.project);
        let service = format!("name: app\napply: {}\napprove: true\n", self.template);
        let repo = GitRepo::new(&[("catalog/projects/app.yaml", service.as_str())]);
        let repository = id(api
            .create(
                &format!("{base}/repositories"),
                json!({"name": "catalog", "git_url": repo.url(), "git_branch": "main",
                       "ssh_key_id": self.key}),
            )
            .await);
        let r = api
            .put(
                &format!("{base}/catalog/settings"),
                json!({"repository_id": repository}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        let rollout = id(api
            .create(&format!("{base}/catalog/rollouts"), json!({}))
            .await);
        self.catalog = Some(CatalogFixture {
            _repo: repo,
            repository,
            rollout,
        });
    }

    fn catalog_repository(&self) -> i64 {
        self.catalog
            .as_ref()
            .map_or(self.repository, |c| c.repository)
    }

    async fn new(people: &People) -> Fixture {
        let api = &people.admin;
        let project = id(api.create("/api/projects", json!({"name": "matrix"})).await);
        let base = format!("/api/project/{project}");
        for (name, role) in [
            ("owner", "owner"),
            ("manager", "manager"),
            ("runner", "task_runner"),
            ("guest", "guest"),
            ("member", "guest"),
        ] {
            let user = people.callers[name].0;
            let r = api
                .post(
                    &format!("{base}/users"),
                    json!({"user_id": user, "role": role}),
                )
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        }
        let key = id(api
            .create(
                &format!("{base}/keys"),
                json!({"name": "k", "type": "none"}),
            )
            .await);
        let spare_key = id(api
            .create(
                &format!("{base}/keys"),
                json!({"name": "k-spare", "type": "none"}),
            )
            .await);
        let repo = |name: &str| json!({"name": name, "git_url": "file:///tmp/repo", "git_branch": "main", "ssh_key_id": key});
        let repository = id(api.create(&format!("{base}/repositories"), repo("r")).await);
        let spare_repository = id(api
            .create(&format!("{base}/repositories"), repo("r-spare"))
            .await);
        let inv = |name: &str| json!({"name": name, "type": "static", "inventory": "localhost", "ssh_key_id": key});
        let inventory = id(api.create(&format!("{base}/inventory"), inv("i")).await);
        let spare_inventory = id(api
            .create(&format!("{base}/inventory"), inv("i-spare"))
            .await);
        let spare_environment = id(api
            .create(
                &format!("{base}/environment"),
                json!({"name": "e", "json": "{}", "env": "{}"}),
            )
            .await);
        let view = id(api
            .create(
                &format!("{base}/views"),
                json!({"title": "v", "position": 0}),
            )
            .await);
        let template = id(api
            .create(
                &format!("{base}/templates"),
                json!({"name": "t", "app": "bash", "playbook": "run.sh", "repository_id": repository,
                       "inventory_id": inventory, "view_id": view}),
            )
            .await);
        let schedule = id(api
            .create(
                &format!("{base}/schedules"),
                json!({"template_id": template, "cron_format": "0 0 1 1 *"}),
            )
            .await);
        let task = id(api
            .create(&format!("{base}/tasks"), json!({"template_id": template}))
            .await);
        let finished_task = id(api
            .create(&format!("{base}/tasks"), json!({"template_id": template}))
            .await);
        let r = api
            .post(&format!("{base}/tasks/{finished_task}/stop"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        let runner = id(api
            .create(
                &format!("{base}/runners"),
                json!({"name": "r", "registered": false, "tags": ["t"]}),
            )
            .await);
        let host_config = id(api
            .create(
                &format!("{base}/host_configs"),
                json!({"type": "host", "host": "h", "ssh_key_id": key}),
            )
            .await);
        let integration = id(api
            .create(
                &format!("{base}/integrations"),
                json!({"name": "i", "template_id": template}),
            )
            .await);
        let integration_base = format!("{base}/integrations/{integration}");
        let r = api
            .post(
                &format!("{integration_base}/matchers"),
                json!({"name": "m", "match_type": "header", "method": "equals",
                       "key": "X-Event", "value": "push"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let matcher = id(r.body);
        let extract_value = id(api
            .create(
                &format!("{integration_base}/values"),
                json!({"name": "v", "value_source": "body", "body_data_type": "json",
                       "key": "ref", "variable": "REF"}),
            )
            .await);
        let alias = |path: String| async move {
            let r = api.post(&path, json!({})).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            id(r.body)
        };
        let integration_alias = alias(format!("{integration_base}/aliases")).await;
        let project_alias = alias(format!("{base}/integrations/aliases")).await;
        Fixture {
            project,
            runner,
            host_config,
            integration,
            matcher,
            extract_value,
            integration_alias,
            project_alias,
            key,
            spare_key,
            repository,
            spare_repository,
            inventory,
            spare_inventory,
            spare_environment,
            view,
            template,
            schedule,
            task,
            finished_task,
            member: people.callers["member"].0,
            spare_user: people.callers["spare"].0,
            catalog: None,
        }
    }

    /// The route's path for this fixture; DELETE of a task acts on the finished one (only a
    /// finished task can be deleted), the other task routes on the waiting one.
    fn path(&self, route: &Route) -> String {
        let task = if route.method == Method::DELETE {
            self.finished_task
        } else {
            self.task
        };
        let alias = if route.path.contains("{integration_id}") {
            self.integration_alias
        } else {
            self.project_alias
        };
        route
            .path
            .replace("{project_id}", &self.project.to_string())
            .replace("{integration_id}", &self.integration.to_string())
            .replace("{matcher_id}", &self.matcher.to_string())
            .replace("{extractvalue_id}", &self.extract_value.to_string())
            .replace("{alias_id}", &alias.to_string())
            .replace("{key_id}", &self.spare_key.to_string())
            .replace("{repository_id}", &self.spare_repository.to_string())
            .replace("{inventory_id}", &self.spare_inventory.to_string())
            .replace("{environment_id}", &self.spare_environment.to_string())
            .replace("{view_id}", &self.view.to_string())
            .replace("{template_id}", &self.template.to_string())
            .replace("{task_id}", &task.to_string())
            .replace("{runner_id}", &self.runner.to_string())
            .replace("{schedule_id}", &self.schedule.to_string())
            .replace("{user_id}", &self.member.to_string())
            .replace("{host_config_id}", &self.host_config.to_string())
            .replace(
                "{rollout_id}",
                &self.catalog.as_ref().map_or(0, |c| c.rollout).to_string(),
            )
            .replace("{name}", "app")
    }
}

fn id(v: Value) -> i64 {
    v["id"].as_i64().expect("id")
}

async fn people(server: &TestServer) -> People {
    let mut callers = HashMap::new();
    for name in [
        "owner", "manager", "runner", "guest", "outsider", "member", "spare",
    ] {
        callers.insert(name, server.user(name, false).await);
    }
    let (_, outside_admin) = server.user("other-admin", true).await;
    People {
        admin: server.admin().await,
        callers,
        outside_admin,
    }
}

fn api_of(people: &People, caller: Caller) -> &Api {
    match caller {
        Caller::Outsider => &people.callers["outsider"].1,
        Caller::Guest => &people.callers["guest"].1,
        Caller::TaskRunner => &people.callers["runner"].1,
        Caller::Manager => &people.callers["manager"].1,
        Caller::Owner => &people.callers["owner"].1,
        Caller::Admin => &people.outside_admin,
    }
}

async fn every_role_on_every_project_route(backend: Backend) {
    let (server, _busy) = TestServer::start_busy(backend).await;
    let people = people(&server).await;

    // The table covers every project route the server documents.
    let doc = server.anonymous().get("/api/openapi.json").await.body;
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/project/") {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            if !NOT_IN_MATRIX.contains(&(method.as_str(), path.as_str())) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let table: BTreeSet<_> = routes()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let missing: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the role matrix: {missing:?}"
    );

    let mut reads = Fixture::new(&people).await;
    reads.add_catalog(&people).await;
    let mut failures = Vec::new();
    for route in routes() {
        for caller in Caller::ALL {
            // Reads share one fixture; anything that may change state gets a fresh one.
            let mut fresh;
            let fixture = if route.method == Method::GET {
                &reads
            } else {
                fresh = Fixture::new(&people).await;
                if route.needs_catalog() {
                    fresh.add_catalog(&people).await;
                }
                &fresh
            };
            let path = fixture.path(&route);
            let reply = api_of(&people, caller)
                .call(route.method.clone(), &path, (route.body)(fixture))
                .await;
            let expected = match caller {
                Caller::Outsider => Some(StatusCode::NOT_FOUND),
                _ if !caller.may(route.need) => Some(StatusCode::FORBIDDEN),
                _ => None,
            };
            let ok = match expected {
                Some(status) => reply.status == status && !reply.error().is_empty(),
                // Allowed: the request is carried out (2xx), or refused for what it asks
                // (confirming a task that waits for nothing is a 409), never for who asks.
                None => reply.status.is_success() || reply.status == StatusCode::CONFLICT,
            };
            if !ok {
                failures.push(format!(
                    "{caller:?} {} {}: expected {}, got {} {}",
                    route.method,
                    route.path,
                    expected.map(|s| s.to_string()).unwrap_or("success".into()),
                    reply.status,
                    reply.text
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
    server.stop().await;
}

async fn non_members_find_the_project_in_no_list(backend: Backend) {
    let (server, _busy) = TestServer::start_busy(backend).await;
    let people = people(&server).await;
    let fixture = Fixture::new(&people).await;
    let outsider = api_of(&people, Caller::Outsider);
    assert_eq!(outsider.get("/api/projects").await.body, json!([]));
    let events = outsider.get("/api/events").await.body;
    assert!(
        !events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["project_id"] == fixture.project),
        "no events of a project one is not in"
    );
    let admin = api_of(&people, Caller::Admin);
    let all = admin.get("/api/projects").await.body;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == fixture.project),
        "admins see every project"
    );
    server.stop().await;
}

on_both_backends!(
    every_role_on_every_project_route,
    non_members_find_the_project_in_no_list
);
