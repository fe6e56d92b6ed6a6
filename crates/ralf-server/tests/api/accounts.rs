//! Accounts and sessions as an attacker meets them: logins unique across names and e-mails
//! ignoring case, sessions that end (at their lifetime, at a password change), and the session
//! cookie refused to other sites (CSRF, WebSocket origins).

use std::time::Duration;

use ralf_testkit::reqwest::{Method, StatusCode};
use ralf_testkit::{Api, Backend, TestServer, json, on_both_backends};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PASSWORD: &str = "a-password";

/// Logs in with a password; the client keeps the cookie. Returns it and the cookie's value.
async fn cookie_login(server: &TestServer, login: &str, password: &str) -> (Api, String) {
    let (client, r) = Api::cookie_login(&server.url, login, password).await;
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    let secret = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("semaphore=")
        .to_string();
    (client, secret)
}

async fn make_user(admin: &Api, username: &str) -> i64 {
    admin
        .create(
            "/api/users",
            json!({"username": username, "name": username,
                   "email": format!("{username}@example.test"), "password": PASSWORD}),
        )
        .await["id"]
        .as_i64()
        .unwrap()
}

async fn logins_are_unique_ignoring_case_across_names_and_emails(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let erin = make_user(&admin, "erin").await;
    let mallory = make_user(&admin, "mallory").await;
    let (mallory_client, _) = cookie_login(&server, "mallory", PASSWORD).await;

    // Mallory cannot rename himself into erin's login, by name or by e-mail, in any case.
    for (username, email) in [
        ("ERIN", "mallory@example.test"),
        ("Erin@Example.Test", "mallory@example.test"),
        ("mallory", "ERIN@example.test"),
    ] {
        let r = mallory_client
            .put(
                &format!("/api/users/{mallory}"),
                json!({"username": username, "name": "m", "email": email}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CONFLICT,
            "{username} / {email}: {}",
            r.text
        );
        assert!(r.error().contains("exists already"), "{}", r.error());
    }
    // Nor can an admin create such a user.
    let r = admin
        .post(
            "/api/users",
            json!({"username": "eRiN", "name": "x", "email": "x@example.test", "password": "p"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // Erin's login, in any form, is erin's.
    for login in ["ERIN", "erin@EXAMPLE.test"] {
        let (client, _) = cookie_login(&server, login, PASSWORD).await;
        assert_eq!(client.get("/api/user").await.body["id"], erin);
    }
    server.stop().await;
}

async fn a_password_change_ends_the_other_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let id = make_user(&admin, "dora").await;
    let (laptop, _) = cookie_login(&server, "dora", PASSWORD).await;
    let (stolen, _) = cookie_login(&server, "dora@example.test", PASSWORD).await;
    let token = server.login("dora", PASSWORD).await;

    let r = laptop
        .post(
            &format!("/api/users/{id}/password"),
            json!({"password": "new-one"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        laptop.get("/api/user").await.status,
        StatusCode::OK,
        "the session that changed it lives on"
    );
    assert_eq!(
        stolen.get("/api/user").await.status,
        StatusCode::UNAUTHORIZED,
        "other sessions end"
    );
    assert_eq!(
        token.get("/api/user").await.status,
        StatusCode::OK,
        "API tokens stay"
    );

    // A reset by an admin ends all of the user's sessions.
    let r = admin
        .post(
            &format!("/api/users/{id}/password"),
            json!({"password": "reset"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        laptop.get("/api/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

async fn sessions_end_at_their_lifetime(backend: Backend) {
    let server = TestServer::start_with(backend, |s| {
        s.session_lifetime = Duration::from_secs(2);
    })
    .await;
    let (client, _) = cookie_login(&server, "admin", ralf_testkit::ADMIN_PASSWORD).await;
    let r = client.get("/api/user").await;
    assert_eq!(r.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        client.get("/api/user").await.status,
        StatusCode::UNAUTHORIZED,
        "a session older than its lifetime is over, though it was just used"
    );
    server.stop().await;
}

/// Sends `method path` with the client's cookie (and token, if any), a text body and `origin`.
async fn text_request(api: &Api, method: Method, path: &str, origin: Option<&str>) -> StatusCode {
    let mut req = api
        .http
        .request(method, format!("{}{}", api.base, path))
        .header("content-type", "text/plain")
        .body("{}");
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    if let Some(token) = &api.token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap().status()
}

async fn cookie_requests_from_other_sites_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (cookie, _) = cookie_login(&server, "admin", ralf_testkit::ADMIN_PASSWORD).await;
    let evil = Some("http://evil.example");

    let r = cookie
        .http
        .post(format!("{}/api/projects", server.url))
        .header("content-type", "text/plain")
        .header("origin", "http://evil.example")
        .body(r#"{"name": "planted"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("session cookie"),
        "{body}"
    );
    assert_eq!(
        text_request(&cookie, Method::POST, "/api/auth/logout", evil).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        text_request(&cookie, Method::POST, "/api/auth/logout", None).await,
        StatusCode::FORBIDDEN,
        "no Origin and no JSON"
    );
    assert_eq!(
        cookie.get("/api/user").await.status,
        StatusCode::OK,
        "still logged in"
    );
    // A program that is not a browser (Semaphore's Python clients) logs in with the cookie
    // and POSTs with no body, no content type and no Origin: that is no browser's doing.
    let r = cookie
        .http
        .post(format!("{}/api/user/tokens", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // JSON from anywhere is fine (a browser cannot send it cross-site without CORS).
    let r = cookie
        .post("/api/projects", json!({"name": "by cookie"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // The same request with a bearer token is not the browser's doing.
    let mut token = server.admin().await;
    token.http = ralf_testkit::reqwest::Client::new();
    assert_eq!(
        text_request(&token, Method::POST, "/api/auth/logout", evil).await,
        StatusCode::NO_CONTENT
    );
    // And from this site's own pages, the cookie works without JSON.
    let own = server.url.clone();
    assert_eq!(
        text_request(&cookie, Method::POST, "/api/auth/logout", Some(&own)).await,
        StatusCode::NO_CONTENT
    );
    server.stop().await;
}

async fn websocket(server: &TestServer, headers: &[(&'static str, &str)]) -> Result<(), u16> {
    let addr = server.url.trim_start_matches("http://");
    let mut request = format!("ws://{addr}/api/ws").into_client_request().unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(*k, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("websocket: {e}"),
    }
}

async fn websockets_check_the_origin_of_cookie_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, secret) = cookie_login(&server, "admin", ralf_testkit::ADMIN_PASSWORD).await;
    let cookie = format!("semaphore={secret}");
    assert_eq!(
        websocket(
            &server,
            &[("cookie", &cookie), ("origin", "http://evil.example")]
        )
        .await,
        Err(403)
    );
    let own = server.url.clone();
    assert_eq!(
        websocket(&server, &[("cookie", &cookie), ("origin", &own)]).await,
        Ok(())
    );
    let token = server.admin().await.token.unwrap();
    let bearer = format!("Bearer {token}");
    assert_eq!(
        websocket(&server, &[("authorization", &bearer)]).await,
        Ok(()),
        "token clients without an Origin"
    );
    server.stop().await;
}

on_both_backends!(
    logins_are_unique_ignoring_case_across_names_and_emails,
    a_password_change_ends_the_other_sessions,
    sessions_end_at_their_lifetime,
    cookie_requests_from_other_sites_are_refused,
    websockets_check_the_origin_of_cookie_sessions,
);
