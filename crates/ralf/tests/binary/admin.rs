//! `ralf admin user add`.

use std::io::Write;
use std::process::{Command, Stdio};

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{ServerProcess, json};

use crate::RALF;

fn add_user(data: &std::path::Path, args: &[&str], password: &str) -> std::process::Output {
    let mut child = Command::new(RALF)
        .args(["admin", "user", "add", "--data-dir"])
        .arg(data)
        .args(args)
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn adds_users_who_can_then_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = add_user(dir.path(), &["--login", "ops", "--admin"], "ops-password");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created user ops"));

    let again = add_user(dir.path(), &["--login", "ops"], "x");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let empty = add_user(dir.path(), &["--login", "other"], "");
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("must not be empty"));

    let server = ServerProcess::start(
        RALF,
        &[("RALF_DATA_DIR", dir.path().display().to_string())],
        &[],
    )
    .await;
    let client = server.api(None);
    let r = client
        .post(
            "/api/auth/login",
            json!({"auth": "ops", "password": "ops-password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(client.get("/api/user").await.body["admin"], true);
    server.terminate();
}
