//! Secrets and data at rest with the real binary: a private data directory and database files,
//! the access key generated in the data directory when none is configured, a keyless database
//! sealed under it, and `ralf admin rotate-key`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use ralf_core::ProjectId;
use ralf_core::secret::SecretCipher;
use ralf_server::DatabaseSettings;
use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{
    ADMIN_LOGIN, ADMIN_PASSWORD, Api, Backend, ProjectFixture, ServerProcess, TestDatabase,
    TestProject, TestServer, json,
};

use crate::RALF;

const ENV_SECRET: &str = "env-secret-value-1";
const ANSWER: &str = "survey-answer-value-2";
const CHECK_SCRIPT: &str = "[ \"$ENV_TOKEN\" = env-secret-value-1 ] && echo env-ok\n\
     [ \"$TOKEN\" = survey-answer-value-2 ] && echo answer-ok\n\
     true\n";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The database the server uses: PostgreSQL's test database, or `ralf.db` in the data dir.
fn database(db: &TestDatabase, data: &Path) -> DatabaseSettings {
    match &db.settings {
        DatabaseSettings::Sqlite { .. } => DatabaseSettings::Sqlite {
            path: data.join("ralf.db"),
        },
        postgres => postgres.clone(),
    }
}

fn db_args(db: &TestDatabase, data: &Path) -> Vec<String> {
    let mut args = vec!["--data-dir".to_string(), data.display().to_string()];
    if let DatabaseSettings::Postgres { url } = &db.settings {
        args.extend(["--db".to_string(), url.clone()]);
    }
    args
}

fn server_env(db: &TestDatabase, data: &Path) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("RALF_DATA_DIR", data.display().to_string()),
        ("SEMAPHORE_ADMIN", ADMIN_LOGIN.to_string()),
        ("SEMAPHORE_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("SEMAPHORE_ADMIN_NAME", "Admin".to_string()),
        ("SEMAPHORE_ADMIN_EMAIL", "admin@example.test".to_string()),
        ("SEMAPHORE_MAX_PARALLEL_TASKS", "1".to_string()),
    ];
    if let DatabaseSettings::Postgres { url } = &db.settings {
        env.push(("RALF_DB", url.clone()));
    }
    env
}

async fn admin(server: &ServerProcess) -> Api {
    server.login(ADMIN_LOGIN, ADMIN_PASSWORD).await
}

/// A project whose first template, `check`, prints `env-ok` when it gets the environment
/// secret and `answer-ok` when it gets the secret survey answer; the second, `hold`, sleeps.
async fn project(api: &Api) -> TestProject {
    ProjectFixture::new("secrets")
        .files(&[("check.sh", CHECK_SCRIPT), ("hold.sh", "sleep 120\n")])
        .environment(json!({"name": "prod",
                            "secrets": [{"name": "ENV_TOKEN", "secret": ENV_SECRET, "type": "env",
                                         "operation": "create"}]}))
        .template(json!({"name": "check", "playbook": "check.sh",
                         "survey_vars": [{"name": "TOKEN", "type": "secret", "target": "env",
                                          "required": true}]}))
        .template(json!({"name": "hold", "playbook": "hold.sh"}))
        .create(api)
        .await
}

async fn start_task(api: &Api, project: i64, body: serde_json::Value) -> i64 {
    let r = api
        .post(&format!("/api/project/{project}/tasks"), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

async fn wait_status(api: &Api, project: i64, task: i64, want: &str) -> serde_json::Value {
    api.wait_status(project, task, want, Duration::from_secs(60))
        .await
}

async fn output(api: &Api, project: i64, task: i64) -> String {
    api.get(&format!("/api/project/{project}/tasks/{task}/output"))
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["output"].as_str().unwrap().to_string() + "\n")
        .collect()
}

/// The environment secret as stored.
async fn sealed_secret(settings: &DatabaseSettings, project: i64, environment: i64) -> String {
    let store = ralf_store::Store::connect(settings).await.unwrap();
    let secrets = store
        .environment_secret_values(ProjectId(project), environment)
        .await
        .unwrap();
    store.close().await;
    secrets[0].secret.clone().expect("a sealed secret")
}

fn key_in(data: &Path) -> String {
    std::fs::read_to_string(data.join("access-key"))
        .unwrap()
        .trim()
        .to_string()
}

/// `ralf server` with these variables, expected to fail: its standard error.
fn failed_start(env: &[(&str, String)]) -> String {
    let mut child = std::process::Command::new(RALF)
        .arg("server")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SEMAPHORE_PORT", ralf_testkit::free_port().to_string())
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the server started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn secrets_at_rest_and_key_rotation(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let settings = database(&db, &data);
    let env = server_env(&db, &data);

    let server = ServerProcess::start(RALF, &env, &[]).await;
    assert_eq!(mode(&data), 0o700, "the data directory is created private");
    assert_eq!(mode(&data.join("access-key")), 0o600);
    if let DatabaseSettings::Sqlite { path } = &settings {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    let api = admin(&server).await;
    let p = project(&api).await;
    let (vars, check, hold) = (p.environment.unwrap(), p.templates[0], p.templates[1]);

    // The generated key seals the secrets: what is stored is not the plaintext in base64.
    let first_key = key_in(&data);
    let sealed = sealed_secret(&settings, p.id, vars).await;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_ne!(sealed, b64.encode(ENV_SECRET));
    assert!(
        !b64.decode(&sealed)
            .unwrap()
            .windows(6)
            .any(|w| w == b"secret")
    );
    let first = SecretCipher::new(Some(&first_key)).unwrap();
    assert_eq!(first.decrypt(&sealed).unwrap(), ENV_SECRET);

    // A secret answer sent in `environment` reaches the task and is never shown.
    let environment = format!(r#"{{"TOKEN": "{ANSWER}"}}"#);
    let task = start_task(
        &api,
        p.id,
        json!({"template_id": check, "environment": environment}),
    )
    .await;
    let done = wait_status(&api, p.id, task, "success").await;
    assert!(!done.to_string().contains(ANSWER), "{done}");
    let out = output(&api, p.id, task).await;
    assert!(out.contains("env-ok") && out.contains("answer-ok"), "{out}");

    // A task waits (one task at a time) with its secret answer when the server stops.
    let holding = start_task(&api, p.id, json!({"template_id": hold})).await;
    wait_status(&api, p.id, holding, "running").await;
    let waiting = start_task(
        &api,
        p.id,
        json!({"template_id": check, "secret": format!(r#"{{"TOKEN": "{ANSWER}"}}"#)}),
    )
    .await;
    assert!(server.terminate());

    let out = std::process::Command::new(RALF)
        .args(["admin", "rotate-key"])
        .args(db_args(&db, &data))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 secret answers of waiting tasks"),
        "{stdout}"
    );
    let second_key = key_in(&data);
    assert_ne!(first_key, second_key);
    assert_eq!(mode(&data.join("access-key")), 0o600);
    let sealed = sealed_secret(&settings, p.id, vars).await;
    assert!(first.decrypt(&sealed).is_err(), "the old key opens nothing");
    let second = SecretCipher::new(Some(&second_key)).unwrap();
    assert_eq!(second.decrypt(&sealed).unwrap(), ENV_SECRET);

    // A server given the old key refuses to start.
    let mut old_env = env.clone();
    old_env.push(("RALF_ACCESS_KEY_ENCRYPTION", first_key.clone()));
    let err = failed_start(&old_env);
    assert!(err.contains("not the one"), "{err}");

    // With the new key, the waiting task runs with its secrets.
    if let DatabaseSettings::Sqlite { path } = &settings {
        // Files made looser meanwhile are made private again at start.
        set_mode(&data, 0o755);
        set_mode(path, 0o644);
    }
    let server = ServerProcess::start(RALF, &env, &[]).await;
    if let DatabaseSettings::Sqlite { path } = &settings {
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(path), 0o600);
    }
    let api = admin(&server).await;
    wait_status(&api, p.id, waiting, "success").await;
    let out = output(&api, p.id, waiting).await;
    assert!(out.contains("env-ok") && out.contains("answer-ok"), "{out}");
    assert!(server.terminate());
}

#[tokio::test]
async fn secrets_at_rest_and_key_rotation_on_sqlite() {
    secrets_at_rest_and_key_rotation(Backend::Sqlite).await
}

#[tokio::test]
async fn secrets_at_rest_and_key_rotation_on_postgres() {
    secrets_at_rest_and_key_rotation(Backend::Postgres).await
}

/// A database whose secrets were stored base64-encoded only (no key, as Semaphore and earlier
/// ralf did) is sealed under the generated key at the first start.
async fn a_keyless_database_is_sealed_under_the_generated_key(backend: Backend) {
    let server = TestServer::start_with(backend, |s| s.access_key_encryption = None).await;
    let api = server.admin().await;
    let p = api.create("/api/projects", json!({"name": "old"})).await["id"]
        .as_i64()
        .unwrap();
    let vars = api
        .create(
            &format!("/api/project/{p}/environment"),
            json!({"name": "e", "project_id": p, "json": "{}", "env": "{}",
               "secrets": [{"name": "S", "secret": ENV_SECRET, "type": "env", "operation": "create"}]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let db = server.stop_keeping_database().await;
    let keyless = sealed_secret(&db.settings, p, vars).await;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(keyless, b64.encode(ENV_SECRET));

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = vec![
        ("RALF_DATA_DIR", data.display().to_string()),
        ("RALF_DB", db.url()),
    ];
    let server = ServerProcess::start(RALF, &env, &[]).await;
    assert!(server.terminate());
    let sealed = sealed_secret(&db.settings, p, vars).await;
    assert_ne!(sealed, keyless);
    let cipher = SecretCipher::new(Some(&key_in(&data))).unwrap();
    assert_eq!(cipher.decrypt(&sealed).unwrap(), ENV_SECRET);
}

#[tokio::test]
async fn a_keyless_database_is_sealed_under_the_generated_key_on_sqlite() {
    a_keyless_database_is_sealed_under_the_generated_key(Backend::Sqlite).await
}

#[tokio::test]
async fn a_keyless_database_is_sealed_under_the_generated_key_on_postgres() {
    a_keyless_database_is_sealed_under_the_generated_key(Backend::Postgres).await
}
