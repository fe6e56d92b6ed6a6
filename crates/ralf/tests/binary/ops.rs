//! The operator's commands and switches on the real binary: JSON logs with request ids, the
//! warning for a `RALF_*` variable ralf does not know, the metrics listener, `ralf admin
//! backup` of a running server restored into the other backend, `ralf admin vacuum`, and
//! `ralf man`.

use std::path::Path;
use std::process::{Command, Output};

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Backend, DatabaseSettings, ServerProcess, TestDatabase, free_port, json};
use serde_json::Value;

use crate::RALF;

const PASSWORD: &str = "ops-test-password";

fn url(db: &TestDatabase) -> String {
    match &db.settings {
        DatabaseSettings::Sqlite { path } => format!("sqlite://{}", path.display()),
        DatabaseSettings::Postgres { url } => url.clone(),
    }
}

fn env(db: &str, data: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("RALF_DB", db.to_string()),
        ("RALF_DATA_DIR", data.display().to_string()),
        ("RALF_ADMIN_LOGIN", "admin".to_string()),
        ("RALF_ADMIN_PASSWORD", PASSWORD.to_string()),
        (
            "RALF_ACCESS_KEY_ENCRYPTION",
            ralf_testkit::TEST_ENCRYPTION_KEY.to_string(),
        ),
    ]
}

fn admin(args: &[&str], db: &str) -> Output {
    Command::new(RALF)
        .arg("admin")
        .args(args)
        .args(["--db", db])
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_ids_and_unknown_variables_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let metrics_port = free_port();
    let mut env = env(
        &format!("sqlite://{}", dir.path().join("ralf.db").display()),
        &dir.path().join("data"),
    );
    env.push(("RALF_LOG", "info,tower_http=debug".into()));
    env.push(("RALF_LISTEN", "0.0.0.0:9999".into()));
    env.push(("RALF_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}")));
    let server =
        ServerProcess::start_logging(RALF, &env, &["--log-format", "json"], Some(&log)).await;
    let reply = ralf_testkit::reqwest::Client::new()
        .get(format!("{}/api/health/live", server.api(None).base))
        .header("x-request-id", "probe-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let metrics = ralf_testkit::reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("ralf_runners_online")
    );
    assert!(server.terminate());

    let written = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = written
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let said = |needle: &str| {
        lines
            .iter()
            .find(|l| l["message"].as_str().is_some_and(|m| m.contains(needle)))
    };
    let listening = said("ralf is listening").expect("the start is logged");
    assert_eq!(listening["level"], "INFO");
    assert!(listening["timestamp"].is_string());
    let warning = said("RALF_LISTEN").expect("the unknown variable is named");
    assert_eq!(warning["level"], "WARN");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("did you mean RALF_INTERFACE and RALF_PORT"),
        "{warning}"
    );
    let request = lines
        .iter()
        .find(|l| l.to_string().contains("probe-4711"))
        .unwrap_or_else(|| panic!("the request's id is on its lines:\n{written}"));
    let span = &request["spans"][0];
    assert_eq!(span["name"], "request");
    assert_eq!(span["request.id"], "probe-4711");
    assert_eq!(span["path"], "/api/health/live");
}

/// A server with history on `from`, backed up while it runs, restored into `to` (the other
/// backend), served again from there: what the API answers is the same.
async fn backup_and_restore(from: Backend, to: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let source = TestDatabase::new(from).await;
    let target = TestDatabase::new(to).await;
    let (source_url, target_url) = (url(&source), url(&target));
    let server = ServerProcess::start(RALF, &env(&source_url, &dir.path().join("a")), &[]).await;
    let api = server.login("admin", PASSWORD).await;
    let project = api.create("/api/projects", json!({"name": "kept"})).await;
    let project_id = project["id"].as_i64().unwrap();
    api.create(
        &format!("/api/project/{project_id}/keys"),
        json!({"name": "deploy", "type": "login_password",
               "login_password": {"login": "u", "password": "backup-secret-3c1"}}),
    )
    .await;
    api.put(
        &format!("/api/project/{project_id}/retention"),
        json!({"keep_days": 30}),
    )
    .await;
    let before = api
        .get(&format!("/api/project/{project_id}/keys"))
        .await
        .body;

    // While the server runs.
    let file = dir.path().join("ralf-backup.db");
    let out = admin(&["backup", "--to", file.to_str().unwrap()], &source_url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("backed up"),
        "{}",
        text(&out.stdout)
    );
    let again = admin(&["backup", "--to", file.to_str().unwrap()], &source_url);
    assert!(
        !again.status.success(),
        "an existing file is not overwritten"
    );
    assert!(server.terminate());

    let out = admin(&["restore", "--from", file.to_str().unwrap()], &target_url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("every table matches"),
        "{}",
        text(&out.stdout)
    );
    // A second restore finds the database filled.
    let twice = admin(&["restore", "--from", file.to_str().unwrap()], &target_url);
    assert!(!twice.status.success());
    assert!(
        text(&twice.stderr).contains("--force"),
        "{}",
        text(&twice.stderr)
    );

    let server = ServerProcess::start(RALF, &env(&target_url, &dir.path().join("b")), &[]).await;
    let api = server.login("admin", PASSWORD).await;
    let projects = api.get("/api/projects").await.body;
    assert_eq!(projects[0]["name"], "kept", "{projects}");
    let after = api
        .get(&format!("/api/project/{project_id}/keys"))
        .await
        .body;
    assert_eq!(before, after);
    let retention = api
        .get(&format!("/api/project/{project_id}/retention"))
        .await
        .body;
    assert_eq!(retention, json!({"keep_tasks": null, "keep_days": 30}));
    assert!(server.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_restores_into_postgres() {
    backup_and_restore(Backend::Sqlite, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_backup_restores_into_sqlite() {
    backup_and_restore(Backend::Postgres, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_reports_and_refuses_a_running_sqlite_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("ralf.db").display());
    let server = ServerProcess::start(RALF, &env(&db, &dir.path().join("data")), &[]).await;
    let busy = admin(&["vacuum"], &db);
    assert!(!busy.status.success());
    assert!(
        text(&busy.stderr).contains("another ralf server is already running"),
        "{}",
        text(&busy.stderr)
    );
    assert!(server.terminate());
    let out = admin(&["vacuum"], &db);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.starts_with("retention: deleted 0 finished tasks"),
        "{said}"
    );
    assert!(said.contains("vacuum: "), "{said}");
}

#[test]
fn man_prints_a_man_page() {
    let out = Command::new(RALF).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH ralf"),
        "{page}"
    );
    assert!(page.contains("server"));
}
