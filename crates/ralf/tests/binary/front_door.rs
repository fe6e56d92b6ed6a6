//! What an anonymous client can make the real `ralf server` do: log lines it cannot forge or
//! bloat, connections it cannot hold open, an open files limit raised at start.

use std::io::Read;
use std::time::Duration;

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{ServerProcess, json};

use crate::RALF;

fn env(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("RALF_DATA_DIR", dir.join("data").display().to_string()),
        ("RALF_ADMIN_PASSWORD", "admin-password".to_string()),
        ("RALF_LOG", "info".to_string()),
        ("NO_COLOR", "1".to_string()),
    ]
}

#[tokio::test]
async fn login_names_cannot_forge_or_flood_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = ServerProcess::start_logging(RALF, &env(dir.path()), &[], Some(&log)).await;
    let client = server.api(None);
    let forged =
        "mallory\n2026-01-01T00:00:00.000000Z  INFO ralf: admin logged in from \u{1b}[31m10.0.0.1";
    let r = client
        .post("/api/auth/login", json!({"auth": forged, "password": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let huge = "a".repeat(1_900_000);
    for _ in 0..10 {
        let r = client
            .post("/api/auth/login", json!({"auth": huge, "password": "x"}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.error().contains("256 bytes"), "{}", r.error());
    }
    assert!(server.terminate());

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("failed login") && l.contains("mallory\\n2026")),
        "the failed login is logged, its newline escaped:\n{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("2026-01-01T00:00:00")),
        "no forged line:\n{text}"
    );
    assert!(!text.contains('\u{1b}'), "no terminal escape from input");
    assert!(
        text.len() < 100_000,
        "19 MB of login names leave a small log ({} bytes)",
        text.len()
    );
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = env(dir.path());
    env.push(("RALF_HTTP_IDLE_TIMEOUT", "1".to_string()));
    let server = ServerProcess::start(RALF, &env, &[]).await;
    let addr = server.url.trim_start_matches("http://").to_string();

    let read_until_closed = |mut stream: std::net::TcpStream| {
        // Bounded, so a server that never closes fails the test instead of hanging it.
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .map(|_| String::from_utf8_lossy(&answer).to_string())
    };
    let idle = std::net::TcpStream::connect(&addr).unwrap();
    let closed = tokio::task::spawn_blocking(move || read_until_closed(idle));
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut slow, b"GET /api/ping HTTP/1.1\r\nHost: x\r\n").unwrap();
    let slow_closed = tokio::task::spawn_blocking(move || read_until_closed(slow));
    assert!(
        closed.await.unwrap().is_ok(),
        "an idle connection is closed"
    );
    assert!(
        slow_closed.await.unwrap().is_ok(),
        "a connection that never finishes its headers is closed"
    );
    // The server still answers.
    assert_eq!(
        server.api(None).get("/api/ping").await.status,
        StatusCode::OK
    );

    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        open_files[3], open_files[4],
        "the soft limit of open files is raised to the hard one: {limits}"
    );
    assert!(server.terminate());
}
