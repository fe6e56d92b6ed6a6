//! `ralf server` with Semaphore's environment variables, and its configuration errors.

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Backend, ServerProcess, TestDatabase, json};

use crate::RALF;

fn semaphore_env(db: &TestDatabase, dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("SEMAPHORE_ADMIN", "root".to_string()),
        ("SEMAPHORE_ADMIN_PASSWORD", "root-password".to_string()),
        ("SEMAPHORE_ADMIN_NAME", "Root".to_string()),
        ("SEMAPHORE_ADMIN_EMAIL", "root@example.test".to_string()),
        (
            "SEMAPHORE_ACCESS_KEY_ENCRYPTION",
            ralf_testkit::TEST_ENCRYPTION_KEY.to_string(),
        ),
    ];
    match &db.settings {
        ralf_server::DatabaseSettings::Sqlite { .. } => {
            env.push(("SEMAPHORE_DB_DIALECT", "sqlite".into()));
            env.push((
                "SEMAPHORE_DB_HOST",
                dir.join("semaphore.db").display().to_string(),
            ));
        }
        ralf_server::DatabaseSettings::Postgres { url } => {
            // postgres://postgres@127.0.0.1:5432/ralf_test_x -> the Semaphore variables.
            let name = url.rsplit('/').next().unwrap().to_string();
            env.push(("SEMAPHORE_DB_DIALECT", "postgres".into()));
            env.push(("SEMAPHORE_DB_HOST", "127.0.0.1".into()));
            env.push(("SEMAPHORE_DB_PORT", "5432".into()));
            env.push(("SEMAPHORE_DB_USER", "postgres".into()));
            env.push(("SEMAPHORE_DB", name));
            env.push(("SEMAPHORE_DB_OPTIONS", "{\"sslmode\":\"disable\"}".into()));
        }
    }
    env
}

async fn starts_from_a_semaphore_environment(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let env = semaphore_env(&db, dir.path());
    let server = ServerProcess::start(RALF, &env, &[]).await;
    let client = server.api(None);
    let r = client
        .post(
            "/api/auth/login",
            json!({"auth": "root", "password": "root-password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let me = client.get("/api/user").await.body;
    assert_eq!(
        (me["username"].as_str(), me["admin"].as_bool()),
        (Some("root"), Some(true))
    );
    assert!(server.terminate(), "SIGTERM ends the server cleanly");

    // A restart with the same environment keeps the data and does not recreate the admin.
    let server = ServerProcess::start(RALF, &env, &[]).await;
    let client = server.api(None);
    let r = client
        .post(
            "/api/auth/login",
            json!({"auth": "root@example.test", "password": "root-password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        client
            .get("/api/users")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    server.terminate();
}

#[tokio::test]
async fn starts_from_a_semaphore_environment_on_sqlite() {
    starts_from_a_semaphore_environment(Backend::Sqlite).await
}

#[tokio::test]
async fn starts_from_a_semaphore_environment_on_postgres() {
    starts_from_a_semaphore_environment(Backend::Postgres).await
}

#[test]
fn a_configuration_error_names_the_setting_and_its_source() {
    let out = std::process::Command::new(RALF)
        .args(["server"])
        .env("SEMAPHORE_MAX_PARALLEL_TASKS", "many")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SEMAPHORE_MAX_PARALLEL_TASKS") && err.contains("\"many\""),
        "{err}"
    );
}

#[tokio::test]
async fn without_any_admin_configured_a_password_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let env = [
        ("RALF_DATA_DIR", data.display().to_string()),
        ("RALF_LOG", "info".to_string()),
    ];
    let server = ServerProcess::start_logging(RALF, &env, &[], Some(&log)).await;
    let file = data.join("initial-admin-password");
    let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let client = server.api(None);
    let r = client
        .post(
            "/api/auth/login",
            json!({"auth": "admin", "password": password}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(file.exists(), "logging in alone keeps the file");

    // Once the admin has chosen a password, the generated one is gone from the disk.
    let id = client.get("/api/user").await.body["id"].as_i64().unwrap();
    let r = client
        .post(
            &format!("/api/users/{id}/password"),
            json!({"password": "chosen-by-the-admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(!file.exists(), "the generated password's file is removed");
    assert_eq!(client.get("/api/user").await.status, StatusCode::OK);
    assert!(server.terminate());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("changed the generated password: removed the file"),
        "{text}"
    );
}
