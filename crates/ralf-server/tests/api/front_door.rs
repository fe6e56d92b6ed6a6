//! The login door as an anonymous client meets it: long names refused before they cost
//! anything, one failure count per account whatever name form is tried, forwarded addresses
//! believed only from configured proxies, and connections that idle closed (WebSockets kept).

use std::time::Duration;

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{ADMIN_PASSWORD, Api, Backend, TestServer, json, on_both_backends};

/// A login attempt sent with `X-Forwarded-For: forwarded_for` (and `X-Forwarded-Proto: https`).
async fn login_via(
    api: &Api,
    forwarded_for: &str,
    login: &str,
    password: &str,
) -> ralf_testkit::reqwest::Response {
    api.http
        .post(format!("{}/api/auth/login", api.base))
        .header("x-forwarded-for", forwarded_for)
        .header("x-forwarded-proto", "https")
        .json(&json!({"auth": login, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn long_login_names_are_refused_before_the_throttle(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.anonymous();
    let long = "a".repeat(300);
    for _ in 0..10 {
        let r = client
            .post("/api/auth/login", json!({"auth": long, "password": "x"}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.error().contains("at most 256 bytes"), "{}", r.error());
    }
    // They were not counted against anyone: a name of 256 bytes is still tried normally.
    let r = client
        .post(
            "/api/auth/login",
            json!({"auth": &long[..256], "password": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

async fn every_name_of_an_account_shares_its_failures(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.anonymous();
    for login in [
        "admin",
        "ADMIN",
        "Admin@Example.Test",
        "admin@example.test",
        " aDmIn ",
    ] {
        let r = client
            .post(
                "/api/auth/login",
                json!({"auth": login, "password": "guess"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{login}");
    }
    let r = client
        .post(
            "/api/auth/login",
            json!({"auth": "ADMIN@example.test", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    server.stop().await;
}

async fn forwarded_addresses_are_ignored_from_untrusted_peers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.anonymous();
    for n in 0..5 {
        let r = login_via(&client, &format!("198.51.100.{n}"), "admin", "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login_via(&client, "203.0.113.50", "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a made-up X-Forwarded-For does not escape the lock"
    );
    server.stop().await;
}

async fn behind_a_trusted_proxy_each_client_has_its_own_failures(backend: Backend) {
    let server = TestServer::start_with(backend, |s| {
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let client = server.anonymous();
    for _ in 0..5 {
        let r = login_via(&client, "198.51.100.7", "admin", "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login_via(&client, "198.51.100.7", "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the guesser waits"
    );
    let r = login_via(&client, "203.0.113.50", "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "another client behind the same proxy logs in"
    );
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("; Secure"),
        "the proxy said https: {cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    server.stop().await;
}

async fn cookies_are_secure_only_when_a_trusted_proxy_says_https(backend: Backend) {
    let server = TestServer::start(backend).await;
    let r = login_via(&server.anonymous(), "198.51.100.7", "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP from an untrusted peer: {cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Max-Age=604800"),
        "{cookie}"
    );
    server.stop().await;
}

async fn idle_connections_close_but_websockets_stay(backend: Backend) {
    use futures::{SinkExt, StreamExt};
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

    let server = TestServer::start_with(backend, |s| {
        s.http_idle_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = server.url.trim_start_matches("http://").to_string();
    let token = server.admin().await.token.unwrap();

    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = Vec::new();
    // Bounded, so a server that never closes fails the test instead of hanging it.
    let read = tokio::time::timeout(Duration::from_secs(20), idle.read_to_end(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(_))),
        "an idle connection is closed: {read:?}"
    );

    let mut request = format!("ws://{addr}/api/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    socket
        .send(Message::Ping(b"still there?".to_vec().into()))
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(20), socket.next()).await;
    assert!(
        matches!(answer, Ok(Some(Ok(Message::Pong(_))))),
        "a WebSocket idle longer than the timeout stays open: {answer:?}"
    );
    server.stop().await;
}

on_both_backends!(
    long_login_names_are_refused_before_the_throttle,
    every_name_of_an_account_shares_its_failures,
    forwarded_addresses_are_ignored_from_untrusted_peers,
    behind_a_trusted_proxy_each_client_has_its_own_failures,
    cookies_are_secure_only_when_a_trusted_proxy_says_https,
    idle_connections_close_but_websockets_stay,
);
