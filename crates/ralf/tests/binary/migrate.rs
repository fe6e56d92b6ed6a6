//! `ralf admin migrate`: a server's history on SQLite moves to PostgreSQL and back, and the
//! API answers the same from the copy; a target with rows is refused unless `--force`.
//!
//! Everything is real: the built binary serves, runs bash tasks from a git repository made
//! here, stops, and `ralf admin migrate` copies its database. The same API token is used
//! before and after (tokens are copied with everything else), so no login adds an event or a
//! session between the snapshots and nothing needs to be ignored when comparing.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{
    Api, Backend, DatabaseSettings, GitRepo, ProjectFixture, ServerProcess, TestDatabase,
    free_port, json,
};
use serde_json::Value;

use crate::RALF;

const PASSWORD: &str = "migrate-test-password";
const KEY_SECRET: &str =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nmigrate-9f3a\n-----END OPENSSH PRIVATE KEY-----\n";
const ENV_SECRET: &str = "env-secret-77aa";

fn url(db: &TestDatabase) -> String {
    match &db.settings {
        DatabaseSettings::Sqlite { path } => format!("sqlite://{}", path.display()),
        DatabaseSettings::Postgres { url } => url.clone(),
    }
}

/// `ralf server` on `db`, on `port` so clients keep their address across restarts.
async fn serve(db: &str, data: &Path, port: u16) -> ServerProcess {
    let env = [
        ("RALF_DB", db.to_string()),
        ("RALF_DATA_DIR", data.display().to_string()),
        ("RALF_PORT", port.to_string()),
        ("RALF_ADMIN_LOGIN", "admin".to_string()),
        ("RALF_ADMIN_PASSWORD", PASSWORD.to_string()),
        (
            "RALF_ACCESS_KEY_ENCRYPTION",
            ralf_testkit::TEST_ENCRYPTION_KEY.to_string(),
        ),
    ];
    ServerProcess::start(RALF, &env, &[]).await
}

fn migrate(from: &str, to: &str, extra: &[&str]) -> Output {
    Command::new(RALF)
        .args(["admin", "migrate", "--from", from, "--to", to])
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

/// A project with a key, a repository, an inventory, an environment with a secret, two bash
/// templates, and finished tasks with output (one failed); answers the project id.
async fn history(api: &Api, repo: &GitRepo) -> i64 {
    let project = ProjectFixture::new("ops")
        .git_url(&repo.url())
        .environment(
            json!({"json": "{\"region\": \"eu\"}", "env": "{\"MODE\": \"test\"}",
                            "secrets": [{"name": "TOKEN", "type": "env", "secret": ENV_SECRET}]}),
        )
        .template(json!({"name": "hello", "playbook": "hello.sh"}))
        .template(json!({"name": "fail", "playbook": "fail.sh"}))
        .create(api)
        .await;
    api.create(
        &project.path("/keys"),
        json!({"name": "deploy", "type": "ssh", "ssh": {"login": "root", "private_key": KEY_SECRET}}),
    )
    .await;
    let mut tasks = Vec::new();
    for template in &project.templates {
        for _ in 0..2 {
            let task = api
                .create(&project.path("/tasks"), json!({"template_id": template}))
                .await;
            tasks.push(id(&task));
        }
    }
    for task in tasks {
        let done = api
            .wait_task(project.id, task, Duration::from_secs(60))
            .await;
        assert!(
            ["success", "error"].contains(&done["status"].as_str().unwrap()),
            "{done}"
        );
    }
    project.id
}

/// What the API answers about everything: compared whole between servers.
async fn snapshot(api: &Api, project: i64) -> Vec<(String, Value)> {
    let base = format!("/api/project/{project}");
    let mut paths = vec![
        "/api/projects".to_string(),
        "/api/users".to_string(),
        "/api/user".to_string(),
        "/api/events".to_string(),
        format!("{base}/events"),
        format!("{base}/tasks"),
        format!("{base}/templates"),
        format!("{base}/keys"),
        format!("{base}/repositories"),
        format!("{base}/inventory"),
        format!("{base}/environment"),
        format!("{base}/views"),
        format!("{base}/users"),
        format!("{base}/backup"),
    ];
    let tasks = api.get(&format!("{base}/tasks")).await.body;
    for task in tasks.as_array().unwrap() {
        paths.push(format!("{base}/tasks/{}", id(task)));
        paths.push(format!("{base}/tasks/{}/output", id(task)));
    }
    let mut answers = Vec::new();
    for path in paths {
        let r = api.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text);
        answers.push((path, r.body));
    }
    answers
}

fn assert_same(before: &[(String, Value)], after: &[(String, Value)], what: &str) {
    assert_eq!(before.len(), after.len(), "{what}: the same paths");
    for ((path, a), (_, b)) in before.iter().zip(after) {
        assert_eq!(a, b, "{what}: GET {path} answers the same");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_history_moves_to_postgres_and_back() {
    let repo = GitRepo::new(&[
        (
            "hello.sh",
            "echo \"hello from $MODE\"\nfor i in 1 2 3; do echo \"line $i\"; done\n",
        ),
        ("fail.sh", "echo 'about to fail'\nexit 3\n"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let sqlite = TestDatabase::new(Backend::Sqlite).await;
    let postgres = TestDatabase::new(Backend::Postgres).await;
    let (sqlite_url, pg_url) = (url(&sqlite), url(&postgres));

    // History on SQLite, seen through one token.
    let server = serve(&sqlite_url, &data, port).await;
    let api = server.login("admin", PASSWORD).await;
    let token = api.token.clone().expect("a token");
    api.create(
        "/api/users",
        json!({"username": "dev", "name": "Dev", "email": "dev@example.test", "password": "dev-password"}),
    )
    .await;
    let project = history(&api, &repo).await;
    let before = snapshot(&api, project).await;
    let keys = &before.iter().find(|(p, _)| p.ends_with("/keys")).unwrap().1;
    assert!(
        !keys.to_string().contains("migrate-9f3a"),
        "no secret in the answers"
    );
    let outputs: Vec<&Value> = before
        .iter()
        .filter(|(p, _)| p.ends_with("/output"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(outputs.len(), 4);
    assert!(
        outputs.iter().any(|o| o.to_string().contains("line 3")),
        "{outputs:?}"
    );
    assert!(server.terminate());

    // Copy, and the target is refused a second time unless forced.
    let out = migrate(&sqlite_url, &pg_url, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.starts_with("table"), "{report}");
    for table in ["users", "tasks", "task_output", "events", "runners"] {
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("{table} ")))
            .unwrap();
        assert!(line.ends_with(" ok"), "{line}");
    }
    let again = migrate(&sqlite_url, &pg_url, &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("not empty"),
        "{}",
        text(&again.stderr)
    );

    // PostgreSQL answers the same, and new rows get new ids.
    let server = serve(&pg_url, &data, port).await;
    let api = server.api(Some(token.clone()));
    assert_same(&before, &snapshot(&api, project).await, "PostgreSQL copy");
    let tasks = api.get(&format!("/api/project/{project}/tasks")).await.body;
    let newest = tasks.as_array().unwrap().iter().map(id).max().unwrap();
    let template = tasks[0]["template_id"].clone();
    let task = api
        .create(
            &format!("/api/project/{project}/tasks"),
            json!({"template_id": template}),
        )
        .await;
    assert_eq!(id(&task), newest + 1);
    api.wait_task(project, id(&task), Duration::from_secs(60))
        .await;
    assert!(server.terminate());

    // --force replaces what the target holds: the task run on PostgreSQL is gone again.
    let forced = migrate(&sqlite_url, &pg_url, &["--force"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    let server = serve(&pg_url, &data, port).await;
    let api = server.api(Some(token.clone()));
    assert_same(&before, &snapshot(&api, project).await, "forced copy");
    assert!(server.terminate());

    // PostgreSQL back to a new SQLite file: a backup copy the server answers the same from.
    let back = dir.path().join("backup").join("ralf.db");
    let back_url = format!("sqlite://{}", back.display());
    let out = migrate(&pg_url, &back_url, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let server = serve(&back_url, &data, port).await;
    let api = server.api(Some(token));
    assert_same(
        &before,
        &snapshot(&api, project).await,
        "SQLite copy of the copy",
    );
    let project_b = api.create("/api/projects", json!({"name": "after"})).await;
    assert_eq!(id(&project_b), project + 1);
    assert!(server.terminate());
}

#[test]
fn refuses_bad_sources_and_targets() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let out = migrate(
        missing.to_str().unwrap(),
        dir.path().join("t.db").to_str().unwrap(),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists(), "a missing source is not created");

    let db = dir.path().join("a.db");
    std::fs::write(&db, "").unwrap();
    let same = migrate(
        db.to_str().unwrap(),
        &format!("sqlite://{}", db.display()),
        &[],
    );
    assert_eq!(same.status.code(), Some(1));
    assert!(
        text(&same.stderr).contains("the same database"),
        "{}",
        text(&same.stderr)
    );

    let secret = migrate(
        db.to_str().unwrap(),
        "postgres://ralf:hunter2-secret@127.0.0.1:1/nowhere",
        &[],
    );
    assert_eq!(secret.status.code(), Some(1));
    let all = format!("{}{}", text(&secret.stdout), text(&secret.stderr));
    assert!(!all.contains("hunter2-secret"), "{all}");
    assert!(
        all.contains("postgres://ralf:**********@127.0.0.1:1/nowhere"),
        "{all}"
    );
}
