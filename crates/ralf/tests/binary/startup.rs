//! `ralf server` with Semaphore's environment variables, and its configuration errors.

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Backend, ServerProcess, TestDatabase, json, wait_until};

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
            // The test database's URL (on the server RALF_TEST_PG_URL names) as the Semaphore
            // variables.
            let url = ralf_testkit::reqwest::Url::parse(url).expect("PostgreSQL URL");
            env.push(("SEMAPHORE_DB_DIALECT", "postgres".into()));
            env.push((
                "SEMAPHORE_DB_HOST",
                url.host_str().expect("a host").to_string(),
            ));
            env.push(("SEMAPHORE_DB_PORT", url.port().unwrap_or(5432).to_string()));
            env.push(("SEMAPHORE_DB_USER", url.username().to_string()));
            if let Some(password) = url.password() {
                env.push(("SEMAPHORE_DB_PASS", password.to_string()));
            }
            env.push(("SEMAPHORE_DB", url.path().trim_start_matches('/').into()));
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

/// The live processes of this machine named `name` whose command line contains `needle`.
fn processes(name: &str, needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z');
            comm.trim() == name
                && String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .contains(needle)
                && !zombie
        })
        .collect()
}

/// A task outlives the server's idle threads (its sandbox dies with the thread that started
/// it, so that thread must be one that lives as long as the server), dies with the server when
/// it is killed with SIGKILL, and the restarted server removes its directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_leaves_no_task_process_and_no_task_directory() {
    use crate::cluster::{admin, project, server, start_task, wait_for_line, wait_status};
    use std::time::Duration;

    let db = TestDatabase::new(Backend::Sqlite).await;
    let dirs = tempfile::tempdir().unwrap();
    let data = dirs.path().join("data");
    let repo = ralf_testkit::GitRepo::new(&[(
        "long.sh",
        "echo started\nsleep 12\necho survived\nsleep 306\necho never\n",
    )]);
    let mut first = server(&db, &data, false).await;
    let api = admin(&first).await;
    let p = project(&api, &repo, "long.sh", false).await;
    let (project, template) = (p.id, p.template());
    let task = start_task(&api, project, template).await;
    wait_status(&api, project, task, &["running"], Duration::from_secs(30)).await;
    // Past the 10 s after which an idle runtime thread ends.
    wait_for_line(&api, project, task, "survived", Duration::from_secs(60)).await;
    let sleeping = processes("sleep", "306");
    assert_eq!(sleeping.len(), 1, "the task's sleep runs");
    let task_dir = data.join("work/tasks").join(task.to_string());
    assert!(task_dir.join("repo/long.sh").is_file());

    first.kill();
    wait_until(Duration::from_secs(10), async || {
        let left = processes("sleep", "306");
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("the task's process outlived the server: {left:?}"))
        }
    })
    .await;

    let second = server(&db, &data, false).await;
    assert!(
        !task_dir.exists(),
        "the restarted server removed the task's directory"
    );
    let api = admin(&second).await;
    let ended = wait_status(&api, project, task, &["error"], Duration::from_secs(30)).await;
    assert_eq!(ended["status"], "error");
}
