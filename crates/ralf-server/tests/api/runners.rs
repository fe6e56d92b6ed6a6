//! Remote runners: global ones for administrators, project ones for resource managers, tokens
//! shown once, registration with a one-time token, `X-Runner-Token` authentication, tags.

use ralf_core::Timestamp;
use ralf_core::api::runners::RegistrationFields;
use ralf_store::StoreError;
use ralf_store::runners::RunnerOwner;
use ralf_testkit::reqwest::{Method, StatusCode};
use ralf_testkit::{Api, Backend, ProjectFixture, TestServer, json, on_both_backends};
use serde_json::Value;

/// A call of the runner protocol, with `X-Runner-Token` when a token is given.
async fn as_runner(
    api: &Api,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = api.http.request(method, format!("{}{}", api.base, path));
    if let Some(token) = token {
        req = req.header("X-Runner-Token", token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn me(api: &Api, token: &str) -> (StatusCode, Value) {
    as_runner(
        api,
        Method::GET,
        "/api/internal/runners/me",
        Some(token),
        None,
    )
    .await
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect()
}

fn tag_counts(list: &Value) -> Vec<(String, i64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tag"].as_str().unwrap().to_string(),
                t["number_of_runners"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn global_runners_are_for_administrators(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (_, user) = server.user("someone", false).await;

    let created = admin
        .create(
            "/api/runners",
            json!({"name": " r1 ", "webhook": "https://hooks.example/r1", "max_parallel_tasks": 2,
                   "tags": ["linux", "gpu", "linux"]}),
        )
        .await;
    let token = created["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert_eq!(created["name"], "r1");
    assert_eq!(created["project_id"], Value::Null);
    assert_eq!(created["webhook"], "https://hooks.example/r1");
    assert_eq!(created["max_parallel_tasks"], 2);
    assert_eq!(created["active"], true);
    assert_eq!(created["is_default"], false);
    assert_eq!(created["registered"], true);
    assert_eq!(created["tags"], json!(["linux", "gpu"]));
    assert_eq!(created["touched"], Value::Null);
    assert_eq!(created["cleaning_requested"], Value::Null);
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/runners/{id}");

    // The token is shown once.
    let list = admin.get("/api/runners").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(names(&list.body), ["r1"]);
    let got = admin.get(&path).await;
    assert_eq!(got.status, StatusCode::OK);
    for text in [&list.text, &got.text] {
        assert!(!text.contains(&token), "{text}");
        assert!(!text.contains("token"), "{text}");
    }
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("token");
    assert_eq!(got.body, expected);

    // Changes; an absent `active` keeps the state.
    let r = admin
        .post(&format!("{path}/active"), json!({"active": false}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = admin
        .put(&path, json!({"id": id, "name": "r1b", "tags": ["arm"]}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let got = admin.get(&path).await.body;
    assert_eq!(got["name"], "r1b");
    assert_eq!(got["tags"], json!(["arm"]));
    assert_eq!(got["webhook"], "");
    assert_eq!(got["max_parallel_tasks"], 0);
    assert_eq!(got["active"], false);
    let r = admin
        .put(
            &path,
            json!({"name": "r1b", "tags": ["arm"], "active": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(admin.get(&path).await.body["active"], true);

    let r = admin.delete(&format!("{path}/cache")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(admin.get(&path).await.body["cleaning_requested"].is_string());

    let r = admin
        .post(&format!("{path}/registration-token"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("registered already"), "{}", r.text);

    // Everything global is for administrators only.
    for (method, p, body) in [
        (Method::GET, "/api/runners".to_string(), None),
        (
            Method::POST,
            "/api/runners".to_string(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, path.clone(), None),
        (Method::PUT, path.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, path.clone(), None),
        (
            Method::POST,
            format!("{path}/active"),
            Some(json!({"active": false})),
        ),
        (Method::POST, format!("{path}/registration-token"), None),
        (Method::DELETE, format!("{path}/cache"), None),
        (Method::GET, "/api/runner_tags".to_string(), None),
    ] {
        let r = user.call(method.clone(), &p, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {p}: {}", r.text);
        assert!(!r.error().is_empty());
        let r = server.anonymous().call(method.clone(), &p, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {p}");
    }
    assert_eq!(
        admin.get(&path).await.body["name"],
        "r1b",
        "nothing changed"
    );

    // Validation.
    for (body, message) in [
        (json!({"tags": ["two words"]}), "whitespace"),
        (json!({"tags": [""]}), "tags[0] must not be empty"),
        (json!({"name": "x".repeat(256)}), "longer than"),
        (
            json!({"webhook": "x".repeat(5000)}),
            "webhook is longer than",
        ),
        (json!({"tags": "linux"}), "invalid request body"),
    ] {
        let r = admin.post("/api/runners", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.error().contains(message), "{body}: {}", r.text);
    }
    let r = admin.put(&path, json!({"id": id + 1, "name": "x"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "Runner ID in body and URL must be the same");
    assert_eq!(names(&admin.get("/api/runners").await.body), ["r1b"]);

    // Events name the runner, never the token.
    let events = admin.get("/api/events").await;
    assert!(events.text.contains("Runner r1 created"), "{}", events.text);
    assert!(!events.text.contains(&token));

    assert_eq!(admin.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(admin.delete(&path).await.status, StatusCode::NOT_FOUND);
    let (status, _) = me(&admin, &token).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a deleted runner's token is dead"
    );
    server.stop().await;
}

async fn project_runners_follow_project_permissions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let project = admin.create("/api/projects", json!({"name": "p"})).await;
    let pid = project["id"].as_i64().unwrap();
    let other = admin.create("/api/projects", json!({"name": "q"})).await;
    let base = format!("/api/project/{pid}/runners");
    let (manager_id, manager) = server.user("manager", false).await;
    let (guest_id, guest) = server.user("guest", false).await;
    let (_, outsider) = server.user("outsider", false).await;
    for (user, role) in [(manager_id, "manager"), (guest_id, "guest")] {
        let r = admin
            .post(
                &format!("/api/project/{pid}/users"),
                json!({"user_id": user, "role": role}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    admin
        .create(
            "/api/runners",
            json!({"name": "tagged-global", "tags": ["shared"]}),
        )
        .await;
    let untagged = admin
        .create("/api/runners", json!({"name": "plain-global"}))
        .await;

    let runner = manager
        .create(
            &base,
            json!({"name": "mine", "project_id": pid, "tags": ["x"]}),
        )
        .await;
    assert_eq!(runner["project_id"], pid);
    assert_eq!(runner["token"].as_str().unwrap().len(), 64);
    let path = format!("{base}/{}", runner["id"]);

    // Members read; the list has the project's runners, then the global ones with tags.
    let list = guest.get(&base).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(names(&list.body), ["mine", "tagged-global"]);
    assert!(!list.text.contains("token"), "{}", list.text);
    assert_eq!(guest.get(&path).await.body["name"], "mine");
    // Guests may not change anything.
    for (method, p, body) in [
        (Method::POST, base.clone(), Some(json!({"name": "x"}))),
        (Method::PUT, path.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, path.clone(), None),
        (
            Method::POST,
            format!("{path}/active"),
            Some(json!({"active": false})),
        ),
        (Method::POST, format!("{path}/registration-token"), None),
        (Method::DELETE, format!("{path}/cache"), None),
    ] {
        let r = guest.call(method.clone(), &p, body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {p}: {}", r.text);
        // Non-members find no project.
        let r = outsider.call(method.clone(), &p, body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {p}: {}", r.text);
    }
    for p in [&base, &path, &format!("/api/project/{pid}/runner_tags")] {
        assert_eq!(outsider.get(p).await.status, StatusCode::NOT_FOUND, "{p}");
    }

    // A runner belongs to its project: not reachable through another project or as global.
    let elsewhere = format!("/api/project/{}/runners/{}", other["id"], runner["id"]);
    assert_eq!(admin.get(&elsewhere).await.status, StatusCode::NOT_FOUND);
    assert_eq!(admin.delete(&elsewhere).await.status, StatusCode::NOT_FOUND);
    let as_global = format!("/api/runners/{}", runner["id"]);
    assert_eq!(admin.get(&as_global).await.status, StatusCode::NOT_FOUND);
    let global_in_project = format!("{base}/{}", untagged["id"]);
    assert_eq!(
        admin.get(&global_in_project).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin
            .put(&global_in_project, json!({"name": "x"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Managers change and delete.
    let r = manager
        .put(&path, json!({"name": "mine2", "max_parallel_tasks": 3}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let got = manager.get(&path).await.body;
    assert_eq!(
        (got["name"].as_str(), got["max_parallel_tasks"].as_i64()),
        (Some("mine2"), Some(3))
    );
    let r = manager
        .put(&path, json!({"name": "x", "project_id": other["id"]}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "project_id in body and URL must be the same");
    let r = manager
        .post(&base, json!({"name": "x", "project_id": other["id"]}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = manager
        .post(&format!("{path}/active"), json!({"active": false}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(manager.get(&path).await.body["active"], false);
    let r = manager.delete(&format!("{path}/cache")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    let events = admin.get(&format!("/api/project/{pid}/events")).await.text;
    assert!(events.contains("Runner mine created"), "{events}");
    assert!(events.contains("Runner mine2 deactivated"), "{events}");

    assert_eq!(manager.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(manager.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(names(&guest.get(&base).await.body), ["tagged-global"]);
    server.stop().await;
}

async fn runners_register_with_a_one_time_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let anonymous = server.anonymous();
    let project = admin.create("/api/projects", json!({"name": "p"})).await;
    let pid = project["id"].as_i64().unwrap();
    let base = format!("/api/project/{pid}/runners");

    // Made up front, without credentials: inactive, and it stays so until it registers.
    let runner = admin
        .create(
            &base,
            json!({"name": "later", "registered": false, "active": true}),
        )
        .await;
    assert_eq!(runner["token"], "");
    assert_eq!(runner["registered"], false);
    assert_eq!(runner["active"], false);
    let id = runner["id"].as_i64().unwrap();
    let path = format!("{base}/{id}");
    let r = admin
        .post(&format!("{path}/active"), json!({"active": true}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.get(&path).await.body["active"], false);

    let r = admin
        .post(&format!("{path}/registration-token"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["runner_id"], id);
    assert_eq!(r.body["project_id"], pid);
    let registration = r.body["registration_token"].as_str().unwrap().to_string();
    assert_eq!(registration.len(), 64);
    assert!(!admin.get(&path).await.text.contains(&registration));
    // A new one replaces the first.
    let r = admin
        .post(&format!("{path}/registration-token"), json!({}))
        .await;
    let second = r.body["registration_token"].as_str().unwrap().to_string();
    assert_ne!(second, registration);
    let (status, body) = as_runner(
        &anonymous,
        Method::POST,
        "/api/internal/runners",
        None,
        Some(json!({"registration_token": registration})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid registration token");

    // Registration, with Semaphore's extra fields.
    let (status, body) = as_runner(
        &anonymous,
        Method::POST,
        "/api/internal/runners",
        None,
        Some(
            json!({"registration_token": second, "webhook": "http://runner.example/hook",
                    "max_parallel_tasks": 4, "public_key": "-----BEGIN PUBLIC KEY-----"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], id);
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);

    let (status, mine) = me(&anonymous, &token).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["id"], id);
    assert_eq!(mine["registered"], true);
    assert_eq!(mine["active"], true);
    assert_eq!(mine["webhook"], "http://runner.example/hook");
    assert_eq!(mine["max_parallel_tasks"], 4);
    assert!(mine["touched"].is_string(), "{mine}");
    let got = admin.get(&path).await;
    assert!(got.body["touched"].is_string());
    assert!(!got.text.contains(&token));

    // The registration token was good once.
    let (status, body) = as_runner(
        &anonymous,
        Method::POST,
        "/api/internal/runners",
        None,
        Some(json!({"registration_token": second})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid registration token");
    let r = admin
        .post(&format!("{path}/registration-token"), json!({}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "registered: no new registration token"
    );
    let (status, body) = as_runner(
        &anonymous,
        Method::POST,
        "/api/internal/runners",
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "registration_token is required");

    // X-Runner-Token: unknown 401, none 401, inactive 403; a user's token is no runner token.
    let (status, body) = me(&anonymous, &"0".repeat(64)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].is_string());
    let (status, _) = as_runner(
        &anonymous,
        Method::GET,
        "/api/internal/runners/me",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        admin.get("/api/internal/runners/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = admin
        .post(&format!("{path}/active"), json!({"active": false}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (status, body) = me(&anonymous, &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "the runner is not active");
    let r = admin
        .post(&format!("{path}/active"), json!({"active": true}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(me(&anonymous, &token).await.0, StatusCode::OK);

    // A runner created with its token authenticates at once.
    let direct = admin
        .create("/api/runners", json!({"name": "direct"}))
        .await;
    let (status, body) = me(&anonymous, direct["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "direct");

    // Unregistering forgets the credential; a new registration token brings the runner back.
    let (status, _) = as_runner(
        &anonymous,
        Method::DELETE,
        "/api/internal/runners",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = as_runner(
        &anonymous,
        Method::DELETE,
        "/api/internal/runners",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(&anonymous, &token).await.0, StatusCode::UNAUTHORIZED);
    let got = admin.get(&path).await.body;
    assert_eq!(
        (got["registered"].as_bool(), got["active"].as_bool()),
        (Some(false), Some(false))
    );
    let r = admin
        .post(&format!("{path}/registration-token"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // An expired registration token is refused and forgotten.
    let store = server.store();
    let old = Timestamp(chrono::Utc::now() - chrono::Duration::hours(2));
    let stale = store
        .new_runner_registration_token(RunnerOwner::Project(pid), id, old)
        .await
        .unwrap();
    let (status, body) = as_runner(
        &anonymous,
        Method::POST,
        "/api/internal/runners",
        None,
        Some(json!({"registration_token": stale.registration_token})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    let again = store
        .register_runner(&stale.registration_token, &RegistrationFields::default())
        .await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");

    let events = admin.get(&format!("/api/project/{pid}/events")).await.text;
    assert!(events.contains("Runner later registered"), "{events}");
    assert!(events.contains("Runner later unregistered"), "{events}");
    for secret in [&token, &registration, &second] {
        assert!(!events.contains(secret.as_str()));
    }
    server.stop().await;
}

async fn two_registrations_with_one_token_make_one_runner(backend: Backend) {
    let server = TestServer::start(backend).await;
    let store = server.store();
    let fields = ralf_core::api::runners::RunnerFields {
        name: "race".into(),
        webhook: String::new(),
        max_parallel_tasks: 0,
        active: None,
        tags: vec![],
    };
    let (runner, token) = store
        .create_runner(RunnerOwner::Global, &fields, false)
        .await
        .unwrap();
    assert!(token.is_none());
    let registration = store
        .new_runner_registration_token(RunnerOwner::Global, runner.id, Timestamp::now())
        .await
        .unwrap();
    let none = RegistrationFields::default();
    let (a, b) = tokio::join!(
        store.register_runner(&registration.registration_token, &none),
        store.register_runner(&registration.registration_token, &none),
    );
    let wins: Vec<_> = [a, b].into_iter().filter_map(Result::ok).collect();
    assert_eq!(wins.len(), 1, "exactly one registration wins");
    let (registered, token) = &wins[0];
    assert_eq!(registered.id, runner.id);
    assert!(registered.registered && registered.active);
    let by_token = store.runner_by_token(token).await.unwrap().unwrap();
    assert_eq!(by_token.id, runner.id);
    store
        .touch_runner(runner.id, Timestamp::now())
        .await
        .unwrap();
    server.stop().await;
}

async fn tags_are_counted_per_scope(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = admin.create("/api/projects", json!({"name": "p"})).await["id"].clone();
    let q = admin.create("/api/projects", json!({"name": "q"})).await["id"].clone();
    admin
        .create("/api/runners", json!({"tags": ["b", "a"]}))
        .await;
    admin.create("/api/runners", json!({"tags": ["b"]})).await;
    admin.create("/api/runners", json!({})).await;
    admin
        .create(
            &format!("/api/project/{p}/runners"),
            json!({"tags": ["c", "b"]}),
        )
        .await;
    admin
        .create(&format!("/api/project/{q}/runners"), json!({"tags": ["d"]}))
        .await;
    let global = admin.get("/api/runner_tags").await;
    assert_eq!(global.status, StatusCode::OK);
    assert_eq!(tag_counts(&global.body), [("a".into(), 1), ("b".into(), 2)]);
    let project = admin.get(&format!("/api/project/{p}/runner_tags")).await;
    assert_eq!(project.status, StatusCode::OK);
    assert_eq!(
        tag_counts(&project.body),
        [("a".into(), 1), ("b".into(), 3), ("c".into(), 1)]
    );
    server.stop().await;
}

async fn deleting_a_project_deletes_its_runners(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let project = admin.create("/api/projects", json!({"name": "p"})).await;
    let pid = project["id"].as_i64().unwrap();
    let runner = admin
        .create(&format!("/api/project/{pid}/runners"), json!({"name": "r"}))
        .await;
    let token = runner["token"].as_str().unwrap().to_string();
    assert_eq!(me(&admin, &token).await.0, StatusCode::OK);
    assert_eq!(
        admin.delete(&format!("/api/project/{pid}")).await.status,
        StatusCode::NO_CONTENT
    );
    let gone = server
        .store()
        .runner_by_id(runner["id"].as_i64().unwrap())
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    assert_eq!(me(&admin, &token).await.0, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

async fn info_says_whether_remote_runners_are_used(backend: Backend) {
    let server = TestServer::start(backend).await;
    let info = server.admin().await.get("/api/info").await.body;
    assert_eq!(info["use_remote_runner"], false);
    server.stop().await;
    let server = TestServer::start_with(backend, |s| s.use_remote_runner = true).await;
    let info = server.admin().await.get("/api/info").await.body;
    assert_eq!(info["use_remote_runner"], true);
    server.stop().await;
}

/// The job protocol as a runner speaks it, without a runner process: a poll hands out the job,
/// output and statuses come back; bad input gets a 4xx with a message and changes nothing.
async fn the_job_protocol_hands_out_jobs_and_refuses_bad_input(backend: Backend) {
    let server = TestServer::start_with(backend, |s| s.use_remote_runner = true).await;
    let admin = server.admin().await;
    let token = |v: Value| v["token"].as_str().expect("token").to_string();
    let mine = token(admin.create("/api/runners", json!({"name": "mine"})).await);
    let other = token(admin.create("/api/runners", json!({"name": "other"})).await);
    let p = ProjectFixture::new("p")
        .template(json!({"name": "t"}))
        .create(&admin)
        .await;
    let base = p.path("");
    let task = admin
        .create(&p.path("/tasks"), json!({"template_id": p.template()}))
        .await["id"]
        .as_i64()
        .unwrap();
    let poll = "/api/internal/runners/poll";

    let (status, body) =
        as_runner(&admin, Method::POST, poll, None, Some(json!({"free": 1}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = as_runner(
        &admin,
        Method::POST,
        poll,
        Some(&mine),
        Some(json!({"free": "many"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].is_string(), "{body}");

    let (status, answer) = as_runner(
        &admin,
        Method::POST,
        poll,
        Some(&mine),
        Some(json!({"free": 1, "wait_secs": 0})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["jobs"][0]["task_id"], task, "{answer}");
    assert_eq!(answer["jobs"][0]["playbook"], "run.sh", "{answer}");
    let stored = admin.get(&format!("{base}/tasks/{task}")).await.body;
    assert_eq!(stored["status"], "starting", "{stored}");

    let output = format!("/api/internal/runners/tasks/{task}/output");
    let report = format!("/api/internal/runners/tasks/{task}/status");
    let lines = json!({"lines": [["2026-12-02T10:00:00Z", "hello from the runner"]]});
    let (status, body) = as_runner(
        &admin,
        Method::POST,
        &output,
        Some(&other),
        Some(lines.clone()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "another runner's task: {body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not held by this runner"),
        "{body}"
    );
    for bad in ["bogus", "stopping"] {
        let (status, body) = as_runner(
            &admin,
            Method::POST,
            &report,
            Some(&mine),
            Some(json!({"status": bad})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    assert_eq!(
        admin.get(&format!("{base}/tasks/{task}")).await.body["status"],
        "starting"
    );

    let (status, body) = as_runner(
        &admin,
        Method::POST,
        &report,
        Some(&mine),
        Some(json!({"status": "running"})),
    )
    .await;
    assert_eq!(
        (status, body["accepted"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{body}"
    );
    let (status, body) = as_runner(&admin, Method::POST, &output, Some(&mine), Some(lines)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = as_runner(
        &admin,
        Method::POST,
        &report,
        Some(&mine),
        Some(json!({"status": "success"})),
    )
    .await;
    assert_eq!(
        (status, body["accepted"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{body}"
    );
    let done = admin.get(&format!("{base}/tasks/{task}")).await.body;
    assert_eq!(done["status"], "success", "{done}");
    let lines = admin.get(&format!("{base}/tasks/{task}/output")).await.body;
    assert!(
        lines
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["output"] == "hello from the runner"),
        "{lines}"
    );
    // A finished task is no longer the runner's to change.
    let (status, body) = as_runner(
        &admin,
        Method::POST,
        &report,
        Some(&mine),
        Some(json!({"status": "error"})),
    )
    .await;
    assert_eq!(
        (status, body["accepted"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{body}"
    );
    server.stop().await;
}

on_both_backends!(
    the_job_protocol_hands_out_jobs_and_refuses_bad_input,
    global_runners_are_for_administrators,
    project_runners_follow_project_permissions,
    runners_register_with_a_one_time_token,
    two_registrations_with_one_token_make_one_runner,
    tags_are_counted_per_scope,
    deleting_a_project_deletes_its_runners,
    info_says_whether_remote_runners_are_used,
);
