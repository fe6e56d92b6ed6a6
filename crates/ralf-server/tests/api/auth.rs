//! Logging in, sessions, API tokens, users.

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{ADMIN_LOGIN, ADMIN_PASSWORD, Api, Backend, TestServer, json, on_both_backends};

async fn login_sets_a_cookie_that_logout_ends(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.anonymous();
    assert_eq!(
        client.get("/api/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = client
        .post(
            "/api/auth/login",
            json!({"auth": ADMIN_LOGIN, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("semaphore=")
    );
    assert_eq!(client.get("/api/user").await.body["username"], "admin");
    // Logging in by e-mail works too.
    let by_mail = server.anonymous();
    let r = by_mail
        .post(
            "/api/auth/login",
            json!({"auth": "ADMIN@example.test", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    assert_eq!(
        client.post("/api/auth/logout", json!({})).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        client.get("/api/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        by_mail.get("/api/user").await.status,
        StatusCode::OK,
        "other sessions live on"
    );
    server.stop().await;
}

async fn wrong_passwords_are_refused_then_slowed_down(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.anonymous();
    for _ in 0..5 {
        let r = client
            .post(
                "/api/auth/login",
                json!({"auth": "admin", "password": "guess"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = client
        .post(
            "/api/auth/login",
            json!({"auth": "admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits: {}",
        r.text
    );
    assert!(r.error().contains("try again"));
    server.stop().await;
}

async fn tokens_work_as_bearer_until_expired(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let token = admin
        .create("/api/user/tokens", json!({"name": "ci"}))
        .await;
    let secret = token["id"].as_str().unwrap().to_string();
    let bearer = Api::new(&server.url, Some(secret.clone()));
    assert_eq!(bearer.get("/api/user").await.status, StatusCode::OK);
    // The scheme is case-insensitive.
    let r = bearer
        .http
        .get(format!("{}/api/user", server.url))
        .header("authorization", format!("BEARER {secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Clients find their token by the id they were given, as in Semaphore ...
    let listed = admin.get("/api/user/tokens").await.body;
    let listed = listed.as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|t| t["name"] == "ci" && t["id"] == secret.as_str()),
        "{listed:?}"
    );
    // ... while the database holds no usable token: a digest and an encrypted copy.
    let admin_id = admin.get("/api/user").await.body["id"].as_i64().unwrap();
    let stored = server.store().api_tokens(admin_id).await.unwrap();
    let stored = stored.iter().find(|t| t.token.name == "ci").unwrap();
    assert_ne!(stored.token.id, secret);
    let sealed = stored.sealed_id.as_deref().unwrap();
    assert!(!sealed.contains(&secret));
    assert_eq!(
        Api::new(&server.url, Some(stored.token.id.clone()))
            .get("/api/user")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        Api::new(&server.url, Some(sealed.to_string()))
            .get("/api/user")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        admin
            .delete(&format!("/api/user/tokens/{secret}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bearer.get("/api/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    let listed = admin.get("/api/user/tokens").await.body;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "ci" && t["expired"] == true)
    );
    server.stop().await;
}

/// Without an access key the token could not be kept secret at rest: it is listed by digest.
async fn without_an_access_key_tokens_are_listed_by_digest(backend: Backend) {
    let server = TestServer::start_with(backend, |s| s.access_key_encryption = None).await;
    let admin = server.admin().await;
    let token = admin
        .create("/api/user/tokens", json!({"name": "plain"}))
        .await;
    let secret = token["id"].as_str().unwrap().to_string();
    let listed = admin.get("/api/user/tokens").await.body;
    let listed = listed.as_array().unwrap();
    let id = listed.iter().find(|t| t["name"] == "plain").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(id, secret);
    assert_eq!(
        Api::new(&server.url, Some(id.clone()))
            .get("/api/user")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Either name expires it.
    assert_eq!(
        admin.delete(&format!("/api/user/tokens/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        Api::new(&server.url, Some(secret))
            .get("/api/user")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

async fn admins_manage_users(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (bob_id, bob) = server.user("bob", false).await;
    let users = admin.get("/api/users?sort=username&order=desc").await.body;
    let names: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "admin"]);
    assert!(
        !users.to_string().contains("password"),
        "no hash ever leaves the server"
    );

    assert_eq!(bob.get("/api/users").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        bob.get(&format!("/api/users/{bob_id}")).await.status,
        StatusCode::OK
    );
    let r = bob.put(&format!("/api/users/{bob_id}"), json!({"id": bob_id, "username": "bob", "name": "Bob", "email": "bob@example.test", "admin": true})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no self-promotion");

    let r = admin
        .post(
            "/api/users",
            json!({"username": "bob", "name": "B", "email": "b2@example.test", "password": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = admin
        .put(
            &format!("/api/users/{bob_id}"),
            json!({"id": bob_id + 1, "username": "bob", "name": "B", "email": "b@example.test"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("must be the same"));

    let r = admin
        .post(
            &format!("/api/users/{bob_id}/password"),
            json!({"password": "new-secret"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    server.login("bob", "new-secret").await;

    assert_eq!(
        admin.delete(&format!("/api/users/{bob_id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bob.get("/api/user").await.status,
        StatusCode::UNAUTHORIZED,
        "tokens of deleted users die"
    );
    server.stop().await;
}

/// A project's routes check a token and the caller's place in the project together: each
/// answer is the one a token checked on its own would lead to.
async fn project_routes_answer_a_token_as_its_owner(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let project = admin.create("/api/projects", json!({"name": "p"})).await["id"]
        .as_i64()
        .unwrap();
    let tasks = format!("/api/project/{project}/tasks");
    let (_, outsider) = server.user("outsider", false).await;
    let (_, other_admin) = server.user("other-admin", true).await;

    assert_eq!(admin.get(&tasks).await.status, StatusCode::OK);
    // An admin who is not a member acts as an owner; a project that isn't there is a 404.
    assert_eq!(other_admin.get(&tasks).await.status, StatusCode::OK);
    assert_eq!(
        other_admin.get("/api/project/999999/tasks").await.status,
        StatusCode::NOT_FOUND
    );
    // A non-member finds no such project, as if it were not there.
    assert_eq!(outsider.get(&tasks).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        outsider.get("/api/project/999999/tasks").await.status,
        StatusCode::NOT_FOUND
    );
    // Who is calling comes first: an unknown token is a 401 whatever the path says.
    let unknown = Api::new(&server.url, Some("0".repeat(32)));
    assert_eq!(unknown.get(&tasks).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown.get("/api/project/x/tasks").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin.get("/api/project/x/tasks").await.status,
        StatusCode::BAD_REQUEST
    );
    // An expired token is refused on a project's routes too.
    let token = admin
        .create("/api/user/tokens", json!({"name": "short"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = Api::new(&server.url, Some(token.clone()));
    assert_eq!(bearer.get(&tasks).await.status, StatusCode::OK);
    assert_eq!(
        admin
            .delete(&format!("/api/user/tokens/{token}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(bearer.get(&tasks).await.status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

on_both_backends!(
    project_routes_answer_a_token_as_its_owner,
    login_sets_a_cookie_that_logout_ends,
    wrong_passwords_are_refused_then_slowed_down,
    tokens_work_as_bearer_until_expired,
    without_an_access_key_tokens_are_listed_by_digest,
    admins_manage_users,
);
