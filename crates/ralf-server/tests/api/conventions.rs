//! Semaphore's wire conventions that clients rely on.

use ralf_testkit::reqwest::{Method, StatusCode};
use ralf_testkit::{Backend, TestServer, json, on_both_backends};

async fn ping_is_text_and_needs_no_login(backend: Backend) {
    let server = TestServer::start(backend).await;
    let r = server.anonymous().get("/api/ping").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text, "pong");
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    server.stop().await;
}

async fn trailing_slash_and_json_everywhere(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let with_slash = admin.get("/api/user/").await;
    assert_eq!(with_slash.status, StatusCode::OK);
    assert_eq!(with_slash.body["username"], "admin");
    assert_eq!(with_slash.headers["content-type"], "application/json");

    let project = admin
        .create("/api/projects", ralf_testkit::json!({"name": "p"}))
        .await;
    let id = project["id"].as_i64().unwrap();
    let r = admin.get(&format!("/api/project/{id}/")).await;
    assert_eq!(r.status, StatusCode::OK);

    // Empty answers still say they are JSON.
    let r = admin
        .put(
            &format!("/api/project/{id}"),
            ralf_testkit::json!({"id": id, "name": "q"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.text, "");
    server.stop().await;
}

async fn errors_are_json_with_a_message(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let r = admin.get("/api/no/such/route").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.error().is_empty());

    let r = admin
        .send_raw(Method::POST, "/api/projects", "{\"name\": ")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().starts_with("malformed JSON"), "{}", r.text);

    let r = admin
        .send_raw(Method::POST, "/api/projects", "{\"name\": 5}")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("name"), "{}", r.text);

    let r = admin.get("/api/project/abc").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("project_id"), "{}", r.text);

    let r = admin
        .send_raw(
            Method::POST,
            "/api/projects",
            &format!("{{\"name\": \"{}\"}}", "x".repeat(300)),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("longer than"), "{}", r.text);
    assert_eq!(
        admin.get("/api/projects").await.body,
        ralf_testkit::json!([]),
        "nothing was stored"
    );
    server.stop().await;
}

async fn timestamps_are_whole_seconds_utc(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let project = admin
        .create("/api/projects", ralf_testkit::json!({"name": "p"}))
        .await;
    let created = project["created"].as_str().unwrap();
    assert_eq!(created.len(), "2026-01-02T03:04:05Z".len(), "{created}");
    assert!(created.ends_with('Z'));
    server.stop().await;
}

async fn openapi_document_lists_the_routes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let r = server.anonymous().get("/api/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    for path in [
        "/api/ping",
        "/api/projects",
        "/api/project/{project_id}",
        "/api/users/{user_id}",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
    server.stop().await;
}

/// Go reads `null` as "not given": every route takes `null` members as absent, at any depth.
async fn null_members_are_absent_members(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let project = admin
        .create(
            "/api/projects",
            json!({"name": "p", "type": null, "alert": null, "alert_chat": null,
                   "max_parallel_tasks": null, "demo": null, "id": null}),
        )
        .await;
    assert_eq!(project["type"], "");
    assert_eq!(project["max_parallel_tasks"], 0);
    let id = project["id"].as_i64().unwrap();
    let base = format!("/api/project/{id}");
    let r = admin
        .put(
            &base,
            json!({"id": id, "name": "q", "type": null, "alert": null, "max_parallel_tasks": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    let key = admin
        .create(
            &format!("{base}/keys"),
            json!({"name": "k", "type": "login_password", "project_id": null, "id": null,
                   "override_secret": null, "ssh": null,
                   "login_password": {"login": null, "password": "pw"}}),
        )
        .await;
    let repository = admin
        .create(
            &format!("{base}/repositories"),
            json!({"name": "r", "git_url": "https://example.test/r.git", "git_branch": "main",
                   "ssh_key_id": null, "project_id": null}),
        )
        .await;
    let inventory = admin
        .create(
            &format!("{base}/inventory"),
            json!({"name": "i", "type": "static", "inventory": null, "ssh_key_id": null,
                   "become_key_id": null, "repository_id": null}),
        )
        .await;
    assert_eq!(inventory["inventory"], "");
    let environment = admin
        .create(
            &format!("{base}/environment"),
            json!({"name": "e", "json": null, "env": null, "password": null, "secrets": null}),
        )
        .await;
    let template = admin
        .create(
            &format!("{base}/templates"),
            json!({"name": "t", "app": "bash", "playbook": "run.sh", "type": null,
                   "repository_id": repository["id"], "inventory_id": inventory["id"],
                   "environment_id": environment["id"], "view_id": null, "vaults": null,
                   "survey_vars": [{"name": "who", "title": null, "type": null,
                                    "required": null, "values": null}],
                   "task_params": {"limit": null, "debug": null}, "arguments": null,
                   "description": null, "git_branch": null, "build_template_id": null}),
        )
        .await;
    assert_eq!(template["survey_vars"][0]["type"], "");
    let view = admin
        .create(
            &format!("{base}/views"),
            json!({"title": "v", "position": null, "project_id": null}),
        )
        .await;
    assert_eq!(view["title"], "v");
    let r = admin
        .post(
            "/api/users",
            json!({"username": "nora", "name": "Nora", "email": "nora@example.test",
                   "password": "long enough", "admin": null, "alert": null, "external": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = admin
        .post(
            &format!("{base}/tasks"),
            json!({"template_id": template["id"], "environment": null, "params": null,
                   "debug": null, "git_branch": null, "message": null, "inventory_id": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(key["id"].is_i64());
    server.stop().await;
}

/// A NUL character cannot be stored in PostgreSQL text: every request carrying one, in a body,
/// a query or a path, is a 400 that names where it is, on both databases alike.
async fn nul_characters_are_refused_with_the_field_named(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let r = admin
        .send_raw(Method::POST, "/api/projects", r#"{"name": "a\u0000b"}"#)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.body["error"],
        "name must not contain a NUL character (\\u0000)"
    );
    let project = admin
        .create("/api/projects", serde_json::json!({"name": "p"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let r = admin
        .send_raw(
            Method::POST,
            &format!("/api/project/{project}/keys"),
            r#"{"name": "k", "type": "login_password",
                "login_password": {"login": "x", "password": "p\u0000w"}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .starts_with("login_password.password must not contain"),
        "{}",
        r.text
    );
    // An escaped backslash followed by u0000 is text, stored as sent.
    let r = admin
        .send_raw(Method::POST, "/api/projects", r#"{"name": "a\\u0000b"}"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["name"], "a\\u0000b");
    let r = admin
        .send_raw(Method::POST, "/api/user/tokens", r#"{"name": "\u0000"}"#)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = admin
        .get(&format!("/api/project/{project}/tasks?sort=id%00"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.text.contains("query parameter \\\"sort\\\""),
        "{}",
        r.text
    );
    let r = admin.delete("/api/user/tokens/abc%00def").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    server.stop().await;
}

/// The web UI's page answers `/` and every other path outside `/api` (the client routes in
/// the browser), without a login; its files are revalidated by ETag; `/api` stays JSON.
async fn pages_outside_the_api_are_the_web_ui(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anonymous = server.anonymous();
    for path in ["/", "/login", "/project/7/tasks/12", "/projects/"] {
        let r = anonymous.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(
            r.headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        assert!(r.text.contains("/ui/app.js"), "{path}: {}", r.text);
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
    }
    let r = anonymous.get("/ui/app.js").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let etag = r.headers["etag"].clone();
    let again = anonymous
        .http
        .get(format!("{}/ui/app.js", server.url))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        anonymous.get("/ui/nope.js").await.status,
        StatusCode::NOT_FOUND
    );
    // The API's answers are untouched: JSON 404s, and a POST elsewhere is no page.
    let r = anonymous.get("/api/no/such/route").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers["content-type"], "application/json");
    let r = anonymous.post("/projects", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

on_both_backends!(
    pages_outside_the_api_are_the_web_ui,
    null_members_are_absent_members,
    nul_characters_are_refused_with_the_field_named,
    ping_is_text_and_needs_no_login,
    trailing_slash_and_json_everywhere,
    errors_are_json_with_a_message,
    timestamps_are_whole_seconds_utc,
    openapi_document_lists_the_routes,
);
