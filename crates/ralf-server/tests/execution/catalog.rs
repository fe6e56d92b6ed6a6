//! The service catalog's rollouts, for real: a git repository with a catalog folder and bash
//! templates, rollouts started over the API and run by the server's conductor to their end
//! (ordering, parallelism, failures and rollbacks, smoke reports, approvals, invalid catalogs,
//! a restart half-way, two servers sharing one rollout).

mod advisor;
mod webhook;
mod write_back;

use std::collections::BTreeMap;
use std::time::Duration;

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Api, Backend, GitDaemon, GitRepo, TestServer, json, on_both_backends};
use serde_json::Value;

use crate::common::{Project, WAIT};
use crate::live::{Frame, connect, next};

/// One template serves every service's apply: what it does comes from the service's
/// environment, as a generic "Deploy Service" template's playbook does.
const DEPLOY: &str = r#"echo "apply $RALF_SERVICE $RALF_STEP_ID attempt $RALF_ATTEMPT greeting=$GREETING"
if [ -n "$APPLY_SLEEP" ]; then sleep "$APPLY_SLEEP"; fi
if [ "$RALF_ATTEMPT" -lt "${SUCCEED_FROM_ATTEMPT:-1}" ]; then echo "attempt $RALF_ATTEMPT of $RALF_SERVICE failed"; exit 1; fi
if [ "$APPLY" = fail ]; then echo "apply of $RALF_SERVICE failed"; exit 1; fi
echo "applied $RALF_SERVICE"
"#;

const SMOKE: &str = r#"echo "smoke $RALF_SERVICE"
if [ "$(cat "health/$RALF_SERVICE" 2>/dev/null)" = fail ]; then echo "$RALF_SERVICE is unhealthy"; exit 1; fi
if [ -n "$SMOKE_REPORT" ]; then printf '%s' "$SMOKE_REPORT" > "$RALF_STEP_REPORT"; fi
if [ "$SMOKE" = fail ]; then echo "smoke of $RALF_SERVICE failed"; exit 1; fi
echo "smoke of $RALF_SERVICE passed"
"#;

const ROLLBACK: &str = r#"echo "rolling back $RALF_SERVICE"
echo "rolled back $RALF_SERVICE"
"#;

/// A project whose repository holds the scripts and `catalog/projects/<service>`, with the
/// templates `Deploy`, `Smoke` and `Rollback` and the catalog settings pointing at it.
struct Catalog {
    project: Project,
    repo: GitRepo,
    /// A bare clone of `repo` the project reads instead, when it has one (ralf may push there).
    bare: Option<tempfile::TempDir>,
    /// `git daemon` serving `repo`, when the project reads it at a `git://` URL.
    daemon: Option<GitDaemon>,
    templates: BTreeMap<&'static str, i64>,
}

/// How the project reaches the catalog's repository.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    File,
    Pushable,
    Daemon,
}

impl Catalog {
    async fn new(server: &TestServer, services: &[(&str, &str)]) -> Catalog {
        Self::made(server, services, Reach::File).await
    }

    /// As [`Catalog::new`], with the project's repository a bare clone that ralf may push to.
    async fn pushable(server: &TestServer, services: &[(&str, &str)]) -> Catalog {
        Self::made(server, services, Reach::Pushable).await
    }

    async fn made(server: &TestServer, services: &[(&str, &str)], reach: Reach) -> Catalog {
        let mut files: Vec<(String, String)> = vec![
            ("deploy.sh".into(), DEPLOY.into()),
            ("smoke.sh".into(), SMOKE.into()),
            ("rollback.sh".into(), ROLLBACK.into()),
        ];
        for (name, text) in services {
            files.push((format!("catalog/projects/{name}.yaml"), text.to_string()));
        }
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        let repo = GitRepo::new(&files);
        let bare = (reach == Reach::Pushable).then(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let cloned = std::process::Command::new("git")
                .args(["clone", "-q", "--bare"])
                .arg(repo.dir.path())
                .arg(dir.path())
                .status()
                .expect("git clone");
            assert!(cloned.success(), "git clone --bare failed");
            dir
        });
        let daemon = (reach == Reach::Daemon).then(|| repo.serve());
        let url = match (&bare, &daemon) {
            (Some(dir), _) => format!("file://{}", dir.path().display()),
            (None, Some(daemon)) => daemon.url.clone(),
            (None, None) => repo.url(),
        };
        let project = Project::with(server, &url, json!({})).await;
        let mut templates = BTreeMap::new();
        for (name, script) in [
            ("Deploy", "deploy.sh"),
            ("Smoke", "smoke.sh"),
            ("Rollback", "rollback.sh"),
        ] {
            let id = project
                .template(name, "bash", script, json!({"allow_parallel_tasks": true}))
                .await;
            templates.insert(name, id);
        }
        let catalog = Catalog {
            project,
            repo,
            bare,
            daemon,
            templates,
        };
        catalog
            .settings(json!({"repository_id": catalog.project.repository}))
            .await;
        catalog
    }

    fn api(&self) -> &Api {
        &self.project.api
    }

    fn path(&self, rest: &str) -> String {
        format!("/api/project/{}/catalog/{rest}", self.project.id)
    }

    async fn settings(&self, settings: Value) {
        let r = self.api().put(&self.path("settings"), settings).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }

    /// Starts a rollout and returns it.
    async fn start(&self, request: Value) -> Value {
        self.api().create(&self.path("rollouts"), request).await
    }

    async fn rollout(&self, id: i64) -> Value {
        let r = self.api().get(&self.path(&format!("rollouts/{id}"))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body
    }

    /// Waits until the rollout is in one of `states`; returns it.
    async fn wait(&self, id: i64, states: &[&str]) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT * 2;
        loop {
            let rollout = self.rollout(id).await;
            if states.contains(&rollout["state"].as_str().unwrap_or_default()) {
                return rollout;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "rollout {id} never became {states:?}: {rollout:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a rollout of `request` and waits for it to finish.
    async fn run(&self, request: Value) -> Value {
        let id = self.start(request).await["id"].as_i64().unwrap();
        self.wait(id, &["succeeded", "failed", "cancelled"]).await
    }

    async fn services(&self) -> BTreeMap<String, Value> {
        let r = self.api().get(&self.path("services")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_owned(), s.clone()))
            .collect()
    }

    /// The project's tasks, oldest first.
    async fn tasks(&self) -> Vec<Value> {
        let r = self
            .api()
            .get(&format!("/api/project/{}/tasks", self.project.id))
            .await;
        let mut tasks = r.body.as_array().unwrap().clone();
        tasks.reverse();
        tasks
    }

    /// How many tasks each template ran, by template name.
    async fn tasks_per_template(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for task in self.tasks().await {
            let name = self
                .templates
                .iter()
                .find(|(_, id)| **id == task["template_id"].as_i64().unwrap())
                .map(|(name, _)| name.to_string())
                .unwrap_or_default();
            *counts.entry(name).or_default() += 1;
        }
        counts
    }
}

/// Each service's state in a rollout, by name.
fn states(rollout: &Value) -> BTreeMap<String, String> {
    rollout["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn service<'a>(rollout: &'a Value, name: &str) -> &'a Value {
    rollout["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in {rollout:#}"))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.get("service")
                .map_or(&s["name"], |service| &service["name"])
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn services_go_after_their_dependencies_then_by_priority_then_name(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(
        &server,
        &[
            (
                "db",
                "name: db\npriority: P2\napply: Deploy\nenvironment:\n  GREETING: hello-db\n",
            ),
            (
                "app",
                "name: app\npriority: P1\ndepends_on: [db]\napply: Deploy\nsmoke: Smoke\n",
            ),
            ("web", "name: web\npriority: P1\napply: Deploy\n"),
            ("cache", "name: cache\npriority: P3\napply: Deploy\n"),
            ("old", "name: old\napply: Deploy\nenabled: false\n"),
            (
                "mail",
                "name: mail\npriority: P4\napply: Deploy\nstatus: deployed\n",
            ),
        ],
    )
    .await;
    let api = catalog.api();

    let plan = api.get(&catalog.path("plan")).await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.text);
    assert_eq!(
        names(&plan.body["plan"]["services"]),
        ["web", "db", "app", "cache"]
    );
    assert_eq!(plan.body["plan"]["services"][2]["waits_for"], json!(["db"]));
    assert_eq!(plan.body["commit"].as_str().unwrap().len(), 40);
    let skipped = &plan.body["plan"]["skipped"];
    assert_eq!(names(skipped), ["mail", "old"]);
    let plan = api.get(&catalog.path("plan?priority=P1")).await.body;
    assert_eq!(names(&plan["plan"]["services"]), ["web"]);
    let app = plan["plan"]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "app")
        .unwrap();
    assert_eq!(app["reason"]["because"], "dependency_not_ready", "{app}");
    let plan = api.get(&catalog.path("plan?names=app")).await.body;
    assert_eq!(names(&plan["plan"]["services"]), ["db", "app"]);
    let plan = api.get(&catalog.path("plan?next=2")).await.body;
    assert_eq!(names(&plan["plan"]["services"]), ["web", "db"]);
    let r = api.get(&catalog.path("plan?next=2&priority=P1")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = api.get(&catalog.path("plan?names=nope")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    let rollout = catalog.run(json!({})).await;
    assert_eq!(rollout["state"], "succeeded", "{rollout:#}");
    assert_eq!(names(&rollout["services"]), ["web", "db", "app", "cache"]);
    // One service at a time, in plan order: the tasks were made in that order.
    let tasks = catalog.tasks().await;
    let applied: Vec<String> = tasks
        .iter()
        .filter(|t| t["template_id"] == catalog.templates["Deploy"])
        .map(|t| t["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(applied.len(), 4, "{applied:#?}");
    for (message, name) in applied.iter().zip(["web", "db", "app", "cache"]) {
        assert!(
            message.contains(&format!("apply of {name}")),
            "{applied:#?}"
        );
    }
    // The service's environment and ralf's variables reach the task.
    let db = service(&rollout, "db");
    let db_task = db["steps"][0]["task_id"].as_i64().unwrap();
    let lines = catalog.project.output(db_task).await;
    assert!(
        lines
            .iter()
            .any(|l| l == "apply db db.apply.1 attempt 1 greeting=hello-db"),
        "{lines:#?}"
    );
    // The task ran the commit the rollout was planned from.
    let task = catalog.project.task(db_task).await;
    assert_eq!(task["commit_hash"], rollout["commit"]);
    let app = service(&rollout, "app");
    assert_eq!(app["steps"][1]["step_id"], "app.smoke.1");
    assert_eq!(app["steps"][1]["status"]["result"], "OK");
    assert_eq!(app["steps"][1]["status"]["summary"], "smoke of app passed");

    let services = catalog.services().await;
    assert_eq!(
        services.keys().collect::<Vec<_>>(),
        ["app", "cache", "db", "mail", "old", "web"]
    );
    for name in ["web", "db", "app", "cache"] {
        let s = &services[name];
        assert_eq!(s["state"], "deployed", "{s}");
        assert_eq!(s["commit"], rollout["commit"], "{s}");
        assert!(s["deployed_at"].is_string(), "{s}");
        assert!(s["last_task_id"].is_i64(), "{s}");
        assert_eq!(s["last_result"]["result"], "OK", "{s}");
    }
    assert_eq!(services["app"]["last_result"]["step_id"], "app.smoke.1");
    assert_eq!(services["old"]["state"], "disabled");
    assert_eq!(services["mail"]["state"], "deployed");
    assert_eq!(services["app"]["depends_on"], json!(["db"]));
    assert_eq!(services["app"]["priority"], "P1");

    // Everything is deployed: a rollout of all has nothing to do, and starts nothing.
    let r = api.post(&catalog.path("rollouts"), json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.error().contains("nothing to roll out"), "{}", r.text);
    // Naming a deployed service deploys it again.
    let again = catalog.run(json!({"names": ["web"]})).await;
    assert_eq!(states(&again), map(&[("web", "deployed")]));
    let list = api.get(&catalog.path("rollouts")).await.body;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list:#}");
    assert_eq!(list[0]["services"], json!(["web"]));
    assert_eq!(list[1]["state"], "succeeded");
    server.stop().await;
}

async fn independent_services_run_side_by_side_with_parallelism_2(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(
        &server,
        &[
            (
                "a",
                "name: a\napply: Deploy\nenvironment:\n  APPLY_SLEEP: \"2\"\n",
            ),
            (
                "b",
                "name: b\napply: Deploy\nenvironment:\n  APPLY_SLEEP: \"2\"\n",
            ),
            ("c", "name: c\napply: Deploy\ndepends_on: [a, b]\n"),
        ],
    )
    .await;
    catalog
        .settings(json!({"repository_id": catalog.project.repository, "parallelism": 2}))
        .await;
    let rollout = catalog.run(json!({})).await;
    assert_eq!(rollout["state"], "succeeded", "{rollout:#}");
    assert_eq!(rollout["options"]["parallelism"], 2);
    let task = |name: &str| {
        service(&rollout, name)["steps"][0]["task_id"]
            .as_i64()
            .unwrap()
    };
    let (a, b, c) = (
        catalog.project.task(task("a")).await,
        catalog.project.task(task("b")).await,
        catalog.project.task(task("c")).await,
    );
    let time = |t: &Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(t[field].as_str().unwrap()).unwrap()
    };
    assert!(
        time(&a, "start") < time(&b, "end") && time(&b, "start") < time(&a, "end"),
        "a and b ran at the same time: {a:#} {b:#}"
    );
    assert!(
        time(&c, "start") >= time(&a, "end") && time(&c, "start") >= time(&b, "end"),
        "c waited for both: {c:#}"
    );
    server.stop().await;
}

async fn failures_roll_back_hold_the_dependents_and_spare_the_rest(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(
        &server,
        &[
            (
                "base",
                "name: base\npriority: P1\napply: Deploy\nrollback: Rollback\nenvironment:\n  APPLY: fail\n",
            ),
            ("mid", "name: mid\napply: Deploy\ndepends_on: [base]\n"),
            ("top", "name: top\napply: Deploy\ndepends_on: [mid]\n"),
            ("other", "name: other\napply: Deploy\n"),
            (
                "brittle",
                "name: brittle\napply: Deploy\nenvironment:\n  APPLY: fail\n",
            ),
            (
                "flaky",
                "name: flaky\napply: Deploy\nsmoke: Smoke\nenvironment:\n  SMOKE: fail\n",
            ),
            (
                "vault",
                "name: vault\napply: Deploy\nsmoke: Smoke\nenvironment:\n  SMOKE_REPORT: '{\"result\": \"WARN\", \"summary\": \"7/10 PASS\", \"artifacts\": [\"reports/vault.xml\"], \"next_actions\": [\"check the relay\"]}'\n",
            ),
        ],
    )
    .await;
    catalog
        .settings(json!({"repository_id": catalog.project.repository, "parallelism": 3}))
        .await;
    let rollout = catalog.run(json!({})).await;
    assert_eq!(rollout["state"], "failed", "{rollout:#}");
    assert_eq!(
        states(&rollout),
        map(&[
            ("base", "rolled_back"),
            ("mid", "held"),
            ("top", "held"),
            ("other", "deployed"),
            ("brittle", "failed"),
            ("flaky", "failed"),
            ("vault", "degraded"),
        ])
    );
    assert_eq!(service(&rollout, "top")["held_by"], "base");
    for held in ["mid", "top"] {
        assert_eq!(
            service(&rollout, held)["steps"],
            json!([]),
            "{held} never ran"
        );
    }
    let base = service(&rollout, "base");
    let steps: Vec<&str> = base["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step_id"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["base.apply.1", "base.rollback.1"]);
    let failed = &base["steps"][0]["status"];
    assert_eq!(failed["result"], "FAIL");
    assert!(
        failed["summary"]
            .as_str()
            .unwrap()
            .starts_with("the task failed: "),
        "{failed}"
    );
    assert!(
        failed["next_actions"][0]
            .as_str()
            .unwrap()
            .starts_with("read the log of task "),
        "{failed}"
    );
    let flaky = service(&rollout, "flaky");
    assert_eq!(flaky["steps"][1]["status"]["result"], "FAIL");
    // The smoke's report is the status object's.
    let vault = &service(&rollout, "vault")["steps"][1]["status"];
    assert_eq!(vault["result"], "WARN", "{vault}");
    assert_eq!(vault["summary"], "7/10 PASS");
    assert_eq!(vault["artifacts"], json!(["reports/vault.xml"]));
    assert_eq!(vault["next_actions"], json!(["check the relay"]));

    let services = catalog.services().await;
    assert_eq!(services["base"]["state"], "rolled_back");
    assert_eq!(services["mid"]["state"], "held");
    assert_eq!(services["vault"]["state"], "degraded");
    assert_eq!(services["vault"]["last_result"]["summary"], "7/10 PASS");
    assert_eq!(services["brittle"]["state"], "failed");
    // The graph shows the same states.
    let graph = catalog.api().get(&catalog.path("graph")).await;
    assert_eq!(graph.status, StatusCode::OK, "{}", graph.text);
    assert_eq!(
        graph.headers["content-type"],
        "text/vnd.graphviz; charset=utf-8"
    );
    assert!(graph.text.contains("base\\nP"), "{}", graph.text);
    assert!(graph.text.contains("· rolled_back"), "{}", graph.text);
    assert!(graph.text.contains("\"base\" -> \"mid\""), "{}", graph.text);
    // Nobody applied what waited on a failure.
    assert_eq!(
        catalog.tasks_per_template().await,
        [
            ("Deploy".to_string(), 5),
            ("Rollback".to_string(), 1),
            ("Smoke".to_string(), 2)
        ]
        .into()
    );
    // The next rollout of all retries what is not deployed, the held ones included.
    let plan = catalog.api().get(&catalog.path("plan")).await.body;
    assert_eq!(
        names(&plan["plan"]["services"]),
        ["base", "brittle", "flaky", "mid", "top"]
    );
    server.stop().await;
}

async fn approval_pauses_a_service_until_someone_decides(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(
        &server,
        &[
            ("gate", "name: gate\napply: Deploy\napprove: true\n"),
            ("door", "name: door\napply: Deploy\napprove: true\n"),
            ("room", "name: room\napply: Deploy\ndepends_on: [door]\n"),
        ],
    )
    .await;
    let api = catalog.api();
    let id = catalog.start(json!({})).await["id"].as_i64().unwrap();
    let waiting = catalog.wait(id, &["waiting_approval"]).await;
    assert_eq!(
        states(&waiting),
        map(&[
            ("door", "waiting_approval"),
            ("gate", "waiting_approval"),
            ("room", "pending"),
        ])
    );
    assert!(
        catalog.tasks().await.is_empty(),
        "nothing runs before a decision"
    );
    let services = catalog.services().await;
    assert_eq!(services["gate"]["state"], "waiting_approval");

    // One rollout at a time.
    let r = api.post(&catalog.path("rollouts"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // Only what waits can be decided.
    let r = api
        .post(&catalog.path("services/room/approve"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = api
        .post(&catalog.path("services/nope/approve"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    let r = api
        .post(&catalog.path("services/gate/approve"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(service(&r.body, "gate")["approval"]["approved"], true);
    assert_eq!(service(&r.body, "gate")["approval"]["by"], "admin");
    let r = api
        .post(&catalog.path("services/door/reject"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let done = catalog.wait(id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "failed");
    assert_eq!(
        states(&done),
        map(&[("door", "failed"), ("gate", "deployed"), ("room", "held")])
    );
    assert_eq!(
        catalog.tasks_per_template().await,
        [("Deploy".to_string(), 1)].into()
    );
    let r = api
        .post(&catalog.path("services/door/approve"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = api
        .post(&catalog.path(&format!("rollouts/{id}/cancel")), json!({}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "a finished rollout: {}",
        r.text
    );

    // A cancelled rollout starts nothing more.
    let id = catalog.start(json!({"names": ["door"]})).await["id"]
        .as_i64()
        .unwrap();
    catalog.wait(id, &["waiting_approval"]).await;
    let r = api
        .post(&catalog.path(&format!("rollouts/{id}/cancel")), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let cancelled = catalog.wait(id, &["cancelled"]).await;
    assert_eq!(cancelled["cancelled"]["by"], "admin");
    assert_eq!(states(&cancelled), map(&[("door", "pending")]));
    assert_eq!(
        catalog.tasks_per_template().await,
        [("Deploy".to_string(), 1)].into()
    );
    let r = api.get(&catalog.path("rollouts/999999")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    server.stop().await;
}

async fn an_invalid_catalog_answers_every_error_and_starts_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(
        &server,
        &[
            ("a", "name: a\napply: Deploy\ndepends_on: [b]\n"),
            ("b", "name: b\napply: Deploy\ndepends_on: [a]\n"),
            ("c", "name: c\napply: Deploy\ndepends_on: [redis]\n"),
            ("d", "name: d\napply: Nowhere\n"),
        ],
    )
    .await;
    let api = catalog.api();
    for r in [
        api.get(&catalog.path("services")).await,
        api.get(&catalog.path("plan")).await,
        api.post(&catalog.path("rollouts"), json!({})).await,
    ] {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        let errors = r.body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 3, "{:#}", r.body);
        assert!(
            r.error().starts_with("the service catalog is invalid: "),
            "{}",
            r.text
        );
        let cycle = &errors[0];
        assert_eq!(cycle["file"], "catalog/projects/a.yaml");
        assert_eq!(
            (cycle["line"].as_i64(), cycle["column"].as_i64()),
            (Some(3), Some(14))
        );
        assert_eq!(cycle["message"], "dependency cycle: a → b → a");
        assert_eq!(
            errors[1],
            json!({"file": "catalog/projects/c.yaml", "line": 3, "column": 14,
                   "message": "c depends on \"redis\", which is not in the catalog"})
        );
        assert_eq!(errors[2]["file"], "catalog/projects/d.yaml");
        assert_eq!(errors[2]["line"], 2);
        assert!(
            errors[2]["message"].as_str().unwrap().contains("Nowhere"),
            "{}",
            errors[2]
        );
    }
    assert_eq!(api.get(&catalog.path("rollouts")).await.body, json!([]));
    assert!(catalog.tasks().await.is_empty());

    // A project without a catalog says so.
    let other = Project::new(&server, &catalog.repo).await;
    let r = other
        .api
        .get(&format!("/api/project/{}/catalog/services", other.id))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = other
        .api
        .get(&format!("/api/project/{}/catalog/settings", other.id))
        .await;
    assert_eq!(
        r.body,
        json!({"repository_id": null, "path": "catalog/projects/", "branch": null,
               "write_back": false, "parallelism": 1, "schedule": null,
               "check_schedule": null, "webhook_secret_set": false})
    );
    // Settings are checked.
    for bad in [
        json!({"repository_id": 999999}),
        json!({"repository_id": other.repository, "path": "../elsewhere"}),
        json!({"repository_id": other.repository, "parallelism": 0}),
    ] {
        let r = other
            .api
            .put(&format!("/api/project/{}/catalog/settings", other.id), bad)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    server.stop().await;
}

async fn a_rollout_goes_on_after_a_restart_without_applying_twice(backend: Backend) {
    // A server whose one task slot is taken: the rollout's first task waits in the queue.
    let (server, _busy) = TestServer::start_busy(backend).await;
    let catalog = Catalog::new(
        &server,
        &[
            ("first", "name: first\napply: Deploy\nsmoke: Smoke\n"),
            (
                "second",
                "name: second\napply: Deploy\ndepends_on: [first]\napprove: true\n",
            ),
            (
                "third",
                "name: third\napply: Deploy\ndepends_on: [second]\n",
            ),
        ],
    )
    .await;
    let id = catalog.start(json!({})).await["id"].as_i64().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let first_task = loop {
        let rollout = catalog.rollout(id).await;
        if let Some(task) = service(&rollout, "first")["steps"][0]["task_id"].as_i64() {
            break task;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rollout:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(catalog.project.task(first_task).await["status"], "waiting");
    let db = server.stop_keeping_database().await;

    let server = TestServer::start_on(db, |_| {}).await;
    let api = server.admin().await;
    let catalog = Catalog {
        project: Project {
            api,
            ..catalog.project
        },
        ..catalog
    };
    let waiting = catalog.wait(id, &["waiting_approval"]).await;
    assert_eq!(
        service(&waiting, "first")["state"],
        "deployed",
        "{waiting:#}"
    );
    assert_eq!(
        service(&waiting, "first")["steps"][0]["task_id"],
        first_task
    );
    let r = catalog
        .api()
        .post(&catalog.path("services/second/approve"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let done = catalog.wait(id, &["succeeded", "failed"]).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(
        catalog.tasks_per_template().await,
        [("Deploy".to_string(), 3), ("Smoke".to_string(), 1)].into()
    );
    server.stop().await;
}

async fn rollouts_are_announced_on_the_live_feed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(&server, &[("solo", "name: solo\napply: Deploy\n")]).await;
    let mut socket = connect(catalog.api(), "/api/ws", false).await;
    let id = catalog.start(json!({})).await["id"].as_i64().unwrap();
    let mut seen = Vec::new();
    loop {
        let frame = match next(&mut socket, WAIT).await {
            Frame::Json(frame) => frame,
            Frame::Closed(code) => panic!("/api/ws closed ({code:?}); so far {seen:#?}"),
            Frame::Silent => panic!("/api/ws fell silent; so far {seen:#?}"),
        };
        if frame["type"] != "catalog_rollout" {
            continue;
        }
        assert_eq!(frame["rollout_id"], id, "{frame}");
        assert_eq!(frame["project_id"], catalog.project.id, "{frame}");
        seen.push(frame.clone());
        if frame["state"] == "succeeded" {
            break;
        }
    }
    assert_eq!(seen[0]["state"], "running", "{seen:#?}");
    assert_eq!(
        seen[0]["services"],
        json!([{"name": "solo", "state": "pending"}])
    );
    assert_eq!(
        seen.last().unwrap()["services"],
        json!([{"name": "solo", "state": "deployed"}])
    );
    server.stop().await;
}

on_both_backends!(
    services_go_after_their_dependencies_then_by_priority_then_name,
    independent_services_run_side_by_side_with_parallelism_2,
    failures_roll_back_hold_the_dependents_and_spare_the_rest,
    approval_pauses_a_service_until_someone_decides,
    an_invalid_catalog_answers_every_error_and_starts_nothing,
    a_rollout_goes_on_after_a_restart_without_applying_twice,
    rollouts_are_announced_on_the_live_feed,
    a_check_degrades_a_service_whose_smoke_fails_and_restores_it_when_it_passes,
    applying_a_service_again_smokes_its_deployed_dependents,
    the_schedule_starts_a_rollout_of_what_is_pending_once,
    the_check_schedule_smokes_what_is_deployed_once,
    failed_applies_are_retried_after_a_doubling_back_off,
    a_push_between_two_reads_is_seen,
    a_push_to_a_git_daemon_between_two_reads_is_seen,
);

async fn failed_applies_are_retried_after_a_doubling_back_off(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(
        &server,
        &[
            (
                "flaky",
                "name: flaky\napply: Deploy\nsmoke: Smoke\nretries: 2\nretry_delay_seconds: 1\n\
                 environment:\n  SUCCEED_FROM_ATTEMPT: '3'\n",
            ),
            (
                "hopeless",
                "name: hopeless\napply: Deploy\nretries: 1\nretry_delay_seconds: 1\n\
                 environment:\n  APPLY: fail\n",
            ),
            ("after", "name: after\napply: Deploy\ndepends_on: [flaky]\n"),
        ],
    )
    .await;
    let done = catalog.run(json!({})).await;
    assert_eq!(
        states(&done),
        map(&[
            ("after", "deployed"),
            ("flaky", "deployed"),
            ("hopeless", "failed")
        ]),
        "{done:#}"
    );
    let steps = |name: &str| -> Vec<(String, String)> {
        service(&done, name)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["step_id"].as_str().unwrap().to_owned(),
                    s["status"]["result"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        steps("flaky"),
        pairs(&[
            ("flaky.apply.1", "FAIL"),
            ("flaky.apply.2", "FAIL"),
            ("flaky.apply.3", "OK"),
            ("flaky.smoke.1", "OK"),
        ])
    );
    assert_eq!(
        steps("hopeless"),
        pairs(&[("hopeless.apply.1", "FAIL"), ("hopeless.apply.2", "FAIL")])
    );
    // Each retry waited its back-off after the failure before it: 1 s, then 2 s.
    let time = |value: &Value| {
        chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap())
            .unwrap()
            .to_utc()
    };
    let flaky = &service(&done, "flaky")["steps"];
    for (attempt, wait) in [(1, 1), (2, 2)] {
        let failed = time(&flaky[attempt - 1]["finished_at"]);
        let retried = time(&flaky[attempt]["started_at"]);
        assert!(
            retried - failed >= chrono::TimeDelta::seconds(wait),
            "attempt {} started {} after the failure: {done:#}",
            attempt + 1,
            retried - failed
        );
    }
    server.stop().await;
}

async fn a_push_between_two_reads_is_seen(backend: Backend) {
    push_between_two_reads_is_seen(backend, Reach::File).await;
}

/// The same through `git daemon`: the remote's head is then read in-process, not asked of
/// `git ls-remote`.
async fn a_push_to_a_git_daemon_between_two_reads_is_seen(backend: Backend) {
    push_between_two_reads_is_seen(backend, Reach::Daemon).await;
}

async fn push_between_two_reads_is_seen(backend: Backend, reach: Reach) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::made(&server, &[("one", "name: one\napply: Deploy\n")], reach).await;
    assert_eq!(catalog.daemon.is_some(), reach == Reach::Daemon);
    async fn plan(catalog: &Catalog) -> Value {
        let r = catalog.api().get(&catalog.path("plan")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body
    }
    let first = plan(&catalog).await;
    assert_eq!(names(&first["plan"]["services"]), ["one"]);
    // Read again, unchanged: the same catalog at the same commit.
    let again = plan(&catalog).await;
    assert_eq!(again, first);

    let pushed = catalog.repo.commit(
        &[("catalog/projects/two.yaml", "name: two\napply: Deploy\n")],
        "two",
    );
    let after = plan(&catalog).await;
    assert_eq!(after["commit"], pushed.as_str(), "{after:#}");
    assert_eq!(names(&after["plan"]["services"]), ["one", "two"]);
    let services = catalog.services().await;
    assert_eq!(services.keys().collect::<Vec<_>>(), ["one", "two"]);

    // A template renamed away is seen at the same commit too.
    let r = catalog
        .api()
        .get(&format!(
            "/api/project/{}/templates/{}",
            catalog.project.id, catalog.templates["Deploy"]
        ))
        .await;
    let mut template = r.body;
    template["name"] = json!("Deploy v2");
    let r = catalog
        .api()
        .put(
            &format!(
                "/api/project/{}/templates/{}",
                catalog.project.id, catalog.templates["Deploy"]
            ),
            template,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = catalog.api().get(&catalog.path("plan")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("Deploy"), "{}", r.text);
    server.stop().await;
}

/// The smoke fails for a service while `health/<service>` says `fail` at the tip.
fn set_health(catalog: &Catalog, service: &str, health: &str) {
    let path = format!("health/{service}");
    catalog.repo.commit(
        &[(path.as_str(), health)],
        &format!("{service} is {health}"),
    );
}

async fn a_check_degrades_a_service_whose_smoke_fails_and_restores_it_when_it_passes(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(
        &server,
        &[
            (
                "db",
                "name: db\napply: Deploy\nsmoke: Smoke\nrollback: Rollback\nstatus: deployed\n",
            ),
            (
                "app",
                "name: app\napply: Deploy\nsmoke: Smoke\ndepends_on: [db]\nstatus: deployed\n",
            ),
            ("web", "name: web\napply: Deploy\nstatus: deployed\n"),
            ("new", "name: new\napply: Deploy\nsmoke: Smoke\n"),
        ],
    )
    .await;
    let api = catalog.api();
    let catalog = &catalog;
    let check = move || async move {
        let r = api.post(&catalog.path("check"), json!({})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(names(&r.body["services"]), ["db", "app"]);
        let id = r.body["id"].as_i64().unwrap();
        catalog
            .wait(id, &["succeeded", "failed", "cancelled"])
            .await
    };

    let healthy = check().await;
    assert_eq!(healthy["state"], "succeeded", "{healthy:#}");
    assert_eq!(
        states(&healthy),
        map(&[("db", "deployed"), ("app", "deployed")])
    );
    assert_eq!(
        service(&healthy, "app")["steps"][0]["step_id"],
        "app.smoke.1"
    );

    set_health(catalog, "app", "fail");
    let sick = check().await;
    assert_eq!(
        states(&sick),
        map(&[("db", "deployed"), ("app", "degraded")])
    );
    let services = catalog.services().await;
    assert_eq!(services["app"]["state"], "degraded");
    assert_eq!(services["app"]["last_result"]["result"], "FAIL");
    assert_eq!(services["db"]["state"], "deployed");
    assert_eq!(services["web"]["state"], "deployed");
    assert_eq!(services["new"]["state"], "pending");

    set_health(catalog, "app", "ok");
    let recovered = check().await;
    assert_eq!(states(&recovered)["app"], "deployed");
    assert_eq!(catalog.services().await["app"]["state"], "deployed");

    // A check applies nothing and rolls nothing back: only smokes ran.
    assert_eq!(
        catalog.tasks_per_template().await,
        BTreeMap::from([("Smoke".to_owned(), 6)])
    );

    // Without a catalog there is nothing to check.
    catalog.settings(json!({"repository_id": null})).await;
    let r = api.post(&catalog.path("check"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
}

async fn applying_a_service_again_smokes_its_deployed_dependents(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(
        &server,
        &[
            (
                "db",
                "name: db\napply: Deploy\nsmoke: Smoke\nstatus: deployed\n",
            ),
            (
                "app",
                "name: app\napply: Deploy\nsmoke: Smoke\ndepends_on: [db]\nstatus: deployed\n",
            ),
            (
                "other",
                "name: other\napply: Deploy\nsmoke: Smoke\nstatus: deployed\n",
            ),
        ],
    )
    .await;
    set_health(&catalog, "app", "fail");

    let rollout = catalog.run(json!({"names": ["db"]})).await;
    assert_eq!(
        states(&rollout),
        map(&[("db", "deployed"), ("app", "degraded")])
    );
    let steps: Vec<&Value> = service(&rollout, "app")["steps"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(steps.len(), 1, "{rollout:#}");
    assert_eq!(steps[0]["step_id"], "app.smoke.1");
    assert_eq!(
        catalog.tasks_per_template().await,
        BTreeMap::from([("Deploy".to_owned(), 1), ("Smoke".to_owned(), 2)])
    );
    let services = catalog.services().await;
    assert_eq!(services["app"]["state"], "degraded");
    assert_eq!(
        services["app"]["commit"],
        Value::Null,
        "app was not applied"
    );
    assert_eq!(services["other"]["state"], "deployed");
}

/// Two servers on one PostgreSQL database both conduct the same rollout: each step starts
/// once, whichever server wins it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_conduct_one_rollout_and_start_each_step_once() {
    let a = TestServer::start(Backend::Postgres).await;
    let b = TestServer::start_on(a.db.shared(), |_| {}).await;
    let services: Vec<(String, String)> = (1..=6)
        .map(|i| {
            (
                format!("s{i}"),
                format!("name: s{i}\napply: Deploy\nsmoke: Smoke\n"),
            )
        })
        .collect();
    let services: Vec<(&str, &str)> = services
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let catalog = Catalog::new(&a, &services).await;
    catalog
        .settings(json!({"repository_id": catalog.project.repository, "parallelism": 3}))
        .await;
    let rollout = catalog.run(json!({})).await;
    assert_eq!(rollout["state"], "succeeded", "{rollout:#}");
    assert_eq!(
        catalog.tasks_per_template().await,
        [("Deploy".to_string(), 6), ("Smoke".to_string(), 6)].into()
    );
    b.stop().await;
    a.stop().await;
}

async fn the_schedule_starts_a_rollout_of_what_is_pending_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(
        &server,
        &[
            ("db", "name: db\napply: Deploy\nstatus: deployed\n"),
            ("app", "name: app\napply: Deploy\ndepends_on: [db]\n"),
        ],
    )
    .await;
    let api = catalog.api();
    let r = api
        .put(
            &catalog.path("settings"),
            json!({"repository_id": catalog.project.repository, "schedule": "every hour"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // Once a year: the test makes it due now below, as the turn of the year would.
    let yearly = json!({"repository_id": catalog.project.repository, "schedule": "0 0 1 1 *"});
    catalog.settings(yearly.clone()).await;
    let r = api.get(&catalog.path("settings")).await;
    assert_eq!(r.body["schedule"], "0 0 1 1 *");
    let settings: ralf_catalog::api::CatalogSettings = serde_json::from_value(yearly).unwrap();
    server
        .store()
        .save_catalog_settings(
            ralf_core::ProjectId(catalog.project.id),
            &settings,
            ralf_store::catalog::NextRuns {
                deploy: Some(ralf_core::Timestamp::now()),
                check: None,
            },
        )
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + WAIT;
    let rollout = loop {
        let r = api.get(&catalog.path("rollouts")).await;
        if let Some(first) = r.body.as_array().and_then(|list| list.first()) {
            break first.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the schedule never fired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(rollout["selection"], json!({"select": "all"}));
    assert_eq!(rollout["started_by"], Value::Null, "ralf started it");
    assert_eq!(rollout["services"], json!(["app"]));
    let done = catalog
        .wait(rollout["id"].as_i64().unwrap(), &["succeeded", "failed"])
        .await;
    assert_eq!(done["state"], "succeeded", "{done:#}");

    // The firing moved on to next year: nothing else starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = api.get(&catalog.path("rollouts")).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.text);
}

async fn the_check_schedule_smokes_what_is_deployed_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(
        &server,
        &[
            (
                "db",
                "name: db\napply: Deploy\nsmoke: Smoke\nstatus: deployed\n",
            ),
            (
                "app",
                "name: app\napply: Deploy\nsmoke: Smoke\ndepends_on: [db]\n",
            ),
        ],
    )
    .await;
    let api = catalog.api();
    let r = api
        .put(
            &catalog.path("settings"),
            json!({"repository_id": catalog.project.repository, "check_schedule": "twice a day"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.error().starts_with("check_schedule: "), "{}", r.text);

    let yearly =
        json!({"repository_id": catalog.project.repository, "check_schedule": "0 0 1 1 *"});
    catalog.settings(yearly.clone()).await;
    let r = api.get(&catalog.path("settings")).await;
    assert_eq!(r.body["check_schedule"], "0 0 1 1 *");
    assert_eq!(r.body["schedule"], Value::Null);
    // Due now, as the turn of the year would make it.
    let settings: ralf_catalog::api::CatalogSettings = serde_json::from_value(yearly).unwrap();
    server
        .store()
        .save_catalog_settings(
            ralf_core::ProjectId(catalog.project.id),
            &settings,
            ralf_store::catalog::NextRuns {
                deploy: None,
                check: Some(ralf_core::Timestamp::now()),
            },
        )
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + WAIT;
    let rollout = loop {
        let r = api.get(&catalog.path("rollouts")).await;
        if let Some(first) = r.body.as_array().and_then(|list| list.first()) {
            break first.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the check schedule never fired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(rollout["selection"], json!({"select": "check"}));
    assert_eq!(rollout["started_by"], Value::Null, "ralf started it");
    assert_eq!(rollout["services"], json!(["db"]), "only what is deployed");
    let done = catalog
        .wait(rollout["id"].as_i64().unwrap(), &["succeeded", "failed"])
        .await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(
        catalog.tasks_per_template().await,
        [("Smoke".to_string(), 1)].into(),
        "a check applies nothing"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = api.get(&catalog.path("rollouts")).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.text);
}
