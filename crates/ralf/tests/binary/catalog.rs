//! `ralf catalog …` of the built binary against a real `ralf server` (SQLite; the engine
//! itself is tested on both databases in ralf-server's `execution` tests): the plan, a
//! rollout waited for and one followed with an approval and a failure, their exit codes,
//! `status --json`, and the graph; a follower going on by polling when the live feed drops;
//! and, on both databases, a server killed (SIGKILL) in the middle of a step, whose rollout
//! goes on after a restart without applying any service twice.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ralf_testkit::{
    Api, Backend, ProjectFixture, ServerProcess, TestDatabase, TestProject, json, wait_until,
};
use serde_json::Value;

use crate::RALF;

const ADMIN: &str = "admin";
const PASSWORD: &str = "catalog-cli-password";
const WAIT: Duration = Duration::from_secs(90);

const DEPLOY_SH: &str = r#"echo "apply $RALF_SERVICE"
if [ -n "$APPLY_SLEEP" ]; then sleep "$APPLY_SLEEP"; fi
if [ "$APPLY" = fail ]; then echo "apply of $RALF_SERVICE failed"; exit 1; fi
echo "applied $RALF_SERVICE"
"#;

const SMOKE_SH: &str = r#"echo "smoke of $RALF_SERVICE passed"
"#;

const DB: &str = "name: db\npriority: P1\napply: Deploy\nsmoke: Smoke\n";
const WEB: &str = "name: web\npriority: P2\ndepends_on: [db]\napply: Deploy\n";
const BROKEN: &str = "name: broken\npriority: P1\napply: Deploy\nenvironment:\n  APPLY: fail\n";
const AFTER_BROKEN: &str =
    "name: after-broken\npriority: P2\ndepends_on: [broken]\napply: Deploy\n";
const GATED: &str = "name: gated\npriority: P3\napply: Deploy\napprove: true\n";

/// A server with one project whose repository holds `services` under `catalog/projects/`,
/// the templates `Deploy` and `Smoke`, and the catalog settings pointing at it.
struct World {
    home: tempfile::TempDir,
    /// The database, when not the data directory's SQLite file.
    _db: Option<TestDatabase>,
    /// The server's environment, to start it again where it was.
    env: Vec<(&'static str, String)>,
    server: ServerProcess,
    api: Api,
    project: TestProject,
}

impl World {
    async fn new(services: &[(&str, &str)]) -> World {
        Self::on(None, services).await
    }

    /// As [`World::new`], the server on `db`.
    async fn on(db: Option<TestDatabase>, services: &[(&str, &str)]) -> World {
        let home = tempfile::tempdir().unwrap();
        let data = home.path().join("data").display().to_string();
        let mut env = vec![
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("HOME", data.clone()),
            ("RALF_DATA_DIR", data),
            ("RALF_ADMIN_LOGIN", ADMIN.to_string()),
            ("RALF_ADMIN_PASSWORD", PASSWORD.to_string()),
            (
                "RALF_ACCESS_KEY_ENCRYPTION",
                ralf_testkit::TEST_ENCRYPTION_KEY.to_string(),
            ),
        ];
        if let Some(db) = &db {
            env.push(("RALF_DB", db.url()));
        }
        let server = ServerProcess::start(RALF, &env, &[]).await;
        let api = server.login(ADMIN, PASSWORD).await;
        let paths: Vec<String> = services
            .iter()
            .map(|(name, _)| format!("catalog/projects/{name}.yaml"))
            .collect();
        let mut files = vec![("deploy.sh", DEPLOY_SH), ("smoke.sh", SMOKE_SH)];
        files.extend(
            paths
                .iter()
                .map(String::as_str)
                .zip(services.iter().map(|s| s.1)),
        );
        let project = ProjectFixture::new("shop")
            .files(&files)
            .template(
                json!({"name": "Deploy", "playbook": "deploy.sh", "allow_parallel_tasks": true}),
            )
            .template(
                json!({"name": "Smoke", "playbook": "smoke.sh", "allow_parallel_tasks": true}),
            )
            .create(&api)
            .await;
        let r = api
            .put(
                &project.path("/catalog/settings"),
                json!({"repository_id": project.repository}),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
        World {
            home,
            _db: db,
            env,
            server,
            api,
            project,
        }
    }

    /// Kills the server and starts it again on the same port and data.
    async fn restart_server(&mut self) {
        self.server.kill();
        let mut env = self.env.clone();
        env.push(("SEMAPHORE_PORT", self.server.port().to_string()));
        self.server = ServerProcess::start(RALF, &env, &[]).await;
    }

    /// `ralf ARGS` with the server, token and project in the environment and nothing else of
    /// the test's environment but `PATH`.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(RALF);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("RALF_URL", &self.server.url)
            .env("RALF_API_TOKEN", self.api.token.as_deref().unwrap())
            .env("RALF_PROJECT_ID", self.project.id.to_string());
        cmd
    }

    fn ralf(&self, args: &[&str]) -> Run {
        Run(self.command(args).output().unwrap())
    }

    async fn services(&self) -> Vec<Value> {
        let r = self.api.get(&self.project.path("/catalog/services")).await;
        r.body.as_array().cloned().unwrap_or_default()
    }
}

struct Run(Output);

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.0.status.code(),
            self.stdout(),
            String::from_utf8_lossy(&self.0.stderr)
        )
    }
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    #[track_caller]
    fn code(&self, code: i32) -> &Run {
        assert_eq!(self.0.status.code(), Some(code), "{self:?}");
        self
    }
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_slice(&self.0.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_deploy_wait_status_and_graph() {
    let world = World::new(&[("db", DB), ("web", WEB)]).await;

    // The plan of all: db first (web waits for it), nothing left out.
    let plan = world.ralf(&["catalog", "plan"]);
    plan.code(0);
    let text = plan.stdout();
    assert!(
        text.contains("A rollout would deploy 2 services"),
        "{plan:?}"
    );
    let db_at = text.find("db ").expect("db in the plan");
    let web_at = text.find("web ").expect("web in the plan");
    assert!(db_at < web_at, "{plan:?}");
    assert!(text.contains("not deployed (pending)"), "{plan:?}");

    // Naming web takes db as its dependency; as JSON, the server's answer.
    let named = world
        .ralf(&["catalog", "plan", "web", "--json"])
        .code(0)
        .json();
    let planned: Vec<(&str, &str)> = named["plan"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"]["name"].as_str().unwrap(),
                s["selected"]["because"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(planned, [("db", "needed_by"), ("web", "named")]);
    let only_db = world.ralf(&["catalog", "plan", "db"]);
    assert!(
        only_db.code(0).stdout().contains("Left out:"),
        "{only_db:?}"
    );
    assert!(only_db.stdout().contains("not named"), "{only_db:?}");

    // A selection of two kinds at once is a usage error.
    world
        .ralf(&["catalog", "plan", "db", "--priority", "P1"])
        .code(64);

    // The graph names both services and the dependency.
    let graph = world.ralf(&["catalog", "graph"]);
    let dot = graph.code(0).stdout();
    assert!(dot.starts_with("digraph catalog {"), "{graph:?}");
    assert!(dot.contains("\"db\" -> \"web\""), "{graph:?}");
    // SVG as the server draws it, Graphviz or not.
    let svg = world.ralf(&["catalog", "graph", "--svg"]);
    let drawn = svg.code(0).stdout();
    assert!(drawn.starts_with("<svg"), "{svg:?}");
    assert!(
        drawn.contains(">db</text>") && drawn.contains(">web</text>"),
        "{svg:?}"
    );

    // Deploy everything and wait: exit 0, each service's end state printed.
    let deploy = world.ralf(&["catalog", "deploy", "--wait"]);
    deploy.code(0);
    assert!(
        deploy.stdout().contains("Rollout 1 succeeded."),
        "{deploy:?}"
    );
    for name in ["db", "web"] {
        assert!(
            deploy
                .stdout()
                .lines()
                .any(|l| l.starts_with(name) && l.contains("deployed")),
            "{deploy:?}"
        );
    }

    // status --json: both deployed, with the keys scripts rely on.
    let status = world.ralf(&["catalog", "status", "--json"]).code(0).json();
    let services = status.as_array().unwrap();
    assert_eq!(services.len(), 2, "{status:#}");
    for service in services {
        for key in ["name", "state", "deployed_at", "depends_on", "last_result"] {
            assert!(service.get(key).is_some(), "{key} missing: {service:#}");
        }
        assert_eq!(service["state"], "deployed", "{service:#}");
        assert!(service["deployed_at"].is_string(), "{service:#}");
    }
    assert_eq!(services[1]["name"], "web");
    assert_eq!(services[1]["depends_on"], json!(["db"]));
    assert_eq!(services[0]["last_result"]["result"], "OK");

    // The table, for people.
    let table = world.ralf(&["catalog", "status"]);
    let text = table.code(0).stdout();
    assert!(text.starts_with("SERVICE"), "{table:?}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("web") && l.contains("deployed") && l.contains("db")),
        "{table:?}"
    );

    // Nothing left to deploy: the server's refusal, exit 4.
    let again = world.ralf(&["catalog", "deploy", "--wait"]);
    again.code(4);
    assert!(again.stderr().contains("nothing to roll out"), "{again:?}");

    // A health check of what is deployed: the smokes alone, exit 0.
    let check = world.ralf(&["catalog", "check", "--wait"]);
    check.code(0);
    assert!(check.stdout().contains("Rollout 2 succeeded."), "{check:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_rollout_with_a_failure_and_an_approval_exits_1() {
    let world = World::new(&[
        ("broken", BROKEN),
        ("after-broken", AFTER_BROKEN),
        ("gated", GATED),
    ])
    .await;
    let follower = world
        .command(&["catalog", "deploy", "--follow", "--timeout", "5m"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // gated waits for a person; approve it from the command line.
    wait_until(WAIT, async || {
        let services = world.services().await;
        match services.iter().find(|s| s["name"] == "gated") {
            Some(s) if s["state"] == "waiting_approval" => Ok(()),
            other => Err(format!("gated not waiting for approval: {other:?}")),
        }
    })
    .await;
    let approve = world.ralf(&["catalog", "approve", "gated"]);
    approve.code(0);
    assert!(
        approve.stdout().starts_with("Approved gated; rollout 1 is"),
        "{approve:?}"
    );

    let followed = Run(follower.wait_with_output().unwrap());
    followed.code(1);
    let text = followed.stdout();
    for line in [
        "broken.apply.1 started (task ",
        "broken.apply.1 FAIL: ",
        "broken: failed",
        "after-broken: held",
        "gated.apply.1 started (task ",
        "gated: deployed",
        "Rollout 1 failed.",
    ] {
        assert!(text.contains(line), "{line:?} missing: {followed:?}");
    }
    assert!(
        followed
            .stderr()
            .contains("gated waits for approval: ralf catalog approve gated"),
        "{followed:?}"
    );
    assert!(!text.contains("after-broken.apply"), "{followed:?}");
    // Every change came over the live feed: no polling.
    assert!(!followed.stderr().contains("polling"), "{followed:?}");

    // The rollout is over: nothing waits for a decision any more.
    let late = world.ralf(&["catalog", "reject", "gated"]);
    late.code(4);
    assert!(late.stderr().starts_with("ralf: "), "{late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_rollout_goes_on_by_polling_when_the_live_feed_drops() {
    let mut world = World::new(&[("db", DB), ("gated", GATED)]).await;
    let follower = world
        .command(&["catalog", "deploy", "--follow", "--timeout", "5m"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(WAIT, async || {
        let services = world.services().await;
        let state = |name: &str| {
            services
                .iter()
                .find(|s| s["name"] == name)
                .map(|s| s["state"].clone())
        };
        // db deployed (no task runs when the server goes), gated waiting for a person.
        match (state("db"), state("gated")) {
            (Some(db), Some(gated)) if db == "deployed" && gated == "waiting_approval" => Ok(()),
            other => Err(format!("db and gated: {other:?}")),
        }
    })
    .await;

    // The server goes away under the follower, and comes back; the rollout goes on.
    world.restart_server().await;
    world.ralf(&["catalog", "approve", "gated"]).code(0);

    let followed = Run(follower.wait_with_output().unwrap());
    // Whether the follower noticed the dead feed (it says so and polls) or a retried read
    // already saw the end depends on timing; either way it followed to the end.
    followed.code(0);
    for line in [
        "db.smoke.1 OK",
        "db: deployed",
        "gated.apply.1 started (task ",
        "gated: deployed",
        "Rollout 1 succeeded.",
    ] {
        assert!(
            followed.stdout().contains(line),
            "{line:?} missing: {followed:?}"
        );
    }
}

/// How many tasks each template ran, by template id.
async fn tasks_per_template(world: &World) -> std::collections::BTreeMap<i64, usize> {
    let r = world
        .api
        .get(&format!("/api/project/{}/tasks", world.project.id))
        .await;
    let mut counts = std::collections::BTreeMap::new();
    for task in r.body.as_array().unwrap() {
        *counts
            .entry(task["template_id"].as_i64().unwrap())
            .or_default() += 1;
    }
    counts
}

async fn a_server_killed_mid_step_goes_on_without_applying_twice(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let mut world = World::on(
        Some(db),
        &[
            (
                "slow",
                "name: slow\npriority: P1\napply: Deploy\nenvironment:\n  APPLY_SLEEP: '30'\n",
            ),
            (
                "after-slow",
                "name: after-slow\npriority: P1\ndepends_on: [slow]\napply: Deploy\n",
            ),
            (
                "db",
                "name: db\npriority: P2\napply: Deploy\nsmoke: Smoke\n",
            ),
        ],
    )
    .await;
    world.ralf(&["catalog", "deploy"]).code(0);
    // slow's apply runs (priority P1 first, one service at a time by default).
    wait_until(WAIT, async || {
        let r = world
            .api
            .get(&format!("/api/project/{}/tasks", world.project.id))
            .await;
        let tasks = r.body.as_array().cloned().unwrap_or_default();
        match tasks.as_slice() {
            [task] if task["status"] == "running" => Ok(()),
            other => Err(format!("not one task running: {other:?}")),
        }
    })
    .await;
    world.restart_server().await;

    // The killed server's task ended in error with it: slow failed, what stands on it is held,
    // and the rest went on; nothing ran twice.
    wait_until(WAIT * 2, async || {
        let r = world
            .api
            .get(&world.project.path("/catalog/rollouts/1"))
            .await;
        match r.body["state"].as_str() {
            Some("failed" | "succeeded" | "cancelled") => Ok(()),
            other => Err(format!("rollout 1 is {other:?}")),
        }
    })
    .await;
    let status = world.ralf(&["catalog", "status", "--json"]).code(0).json();
    let state = |name: &str| {
        status
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["state"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(state("slow").as_deref(), Some("failed"), "{status:#}");
    assert_eq!(state("after-slow").as_deref(), Some("held"), "{status:#}");
    assert_eq!(state("db").as_deref(), Some("deployed"), "{status:#}");
    let counts: Vec<usize> = tasks_per_template(&world).await.into_values().collect();
    // Deploy: slow once, db once (after-slow never); Smoke: db once.
    assert_eq!(counts, [2, 1], "{status:#}");
}

ralf_testkit::on_both_backends!(a_server_killed_mid_step_goes_on_without_applying_twice);
