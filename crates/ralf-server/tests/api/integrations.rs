//! Integrations: their routes with Semaphore's shapes and statuses, and deliveries to the real
//! endpoint: GitHub-signed, HMAC-signed and token deliveries (good and bad), matchers of each
//! kind, a replayed delivery, an alias that matches nothing, and backups that keep them.

use ralf_core::signature::hmac_sha256_hex;
use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Api, Backend, ProjectFixture, TestProject, TestServer, json, on_both_backends};
use serde_json::Value;

const SECRET: &str = "webhook s3cret";

/// A project with a real repository and a bash template, and a `login_password` key holding
/// the webhook secret. Returns the project and the key's id.
async fn fixture(api: &Api, name: &str) -> (TestProject, i64) {
    let f = ProjectFixture::new(name)
        .files(&[("run.sh", "echo \"args: $*\"\n")])
        .template(json!({}))
        .create(api)
        .await;
    let key = api
        .create(
            &f.path("/keys"),
            json!({"name": "hook secret", "type": "login_password",
                   "login_password": {"login": "", "password": SECRET}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    (f, key)
}

fn assert_status(r: &ralf_testkit::Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text);
}

/// Sends a delivery to `/api/integrations/{alias}` with no session.
async fn deliver(
    api: &Api,
    alias: &str,
    headers: &[(&str, String)],
    body: &str,
) -> ralf_testkit::Reply {
    let mut request = api
        .http
        .post(format!("{}/api/integrations/{alias}", api.base))
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("delivery");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    ralf_testkit::Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// The tasks of the project that integration `integration` started.
async fn tasks_of(api: &Api, f: &TestProject, integration: i64) -> Vec<Value> {
    let tasks = api.get(&f.path("/tasks")).await.body;
    tasks
        .as_array()
        .expect("task list")
        .iter()
        .filter(|t| t["integration_id"] == integration)
        .cloned()
        .collect()
}

async fn integrations_have_semaphores_routes_and_statuses(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (f, key) = fixture(&admin, "p").await;
    let (other, _) = fixture(&admin, "other").await;

    let r = admin
        .post(
            &f.path("/integrations"),
            json!({"name": "push", "template_id": f.template(), "auth_method": "github",
                   "auth_secret_id": key, "searchable": true,
                   "task_params": {"message": "from a webhook", "environment": "{\"stage\":\"prod\"}"}}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
    let integration = r.body;
    let id = integration["id"].as_i64().unwrap();
    assert_eq!(integration["auth_method"], "github");
    assert_eq!(integration["auth_secret_id"], key);
    assert_eq!(integration["project_id"], f.id);
    assert_eq!(integration["task_params"]["message"], "from a webhook");
    assert!(
        !r.text.contains(SECRET),
        "the secret is never shown: {}",
        r.text
    );
    assert_eq!(
        admin
            .get(&f.path(&format!("/integrations/{id}")))
            .await
            .body,
        integration
    );
    assert_eq!(
        admin.get(&f.path("/integrations")).await.body,
        json!([integration])
    );

    // Another project's template or key is refused; another project does not see it.
    let r = admin
        .post(
            &f.path("/integrations"),
            json!({"name": "x", "template_id": other.template()}),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("template_id"), "{}", r.text);
    let r = admin
        .post(
            &other.path("/integrations"),
            json!({"name": "x", "template_id": other.template(), "auth_secret_id": key}),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    assert_status(
        &admin.get(&other.path(&format!("/integrations/{id}"))).await,
        StatusCode::NOT_FOUND,
    );
    let r = admin
        .post(
            &f.path("/integrations"),
            json!({"name": "x", "template_id": f.template(), "auth_method": "magic"}),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST);

    // Matchers answer 200 on create, as Semaphore's spec says; extract values 201.
    let matchers = f.path(&format!("/integrations/{id}/matchers"));
    let r = admin
        .post(
            &matchers,
            json!({"name": "push only", "match_type": "header", "method": "equals",
                   "key": "X-GitHub-Event", "value": "push"}),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    let matcher = r.body;
    let matcher_id = matcher["id"].as_i64().unwrap();
    assert_eq!(matcher["integration_id"], id);
    assert_eq!(matcher["body_data_type"], "json");
    let r = admin
        .put(
            &format!("{matchers}/{matcher_id}"),
            json!({"name": "push only", "match_type": "header", "method": "contains",
                   "key": "X-GitHub-Event", "value": "pu"}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(admin.get(&matchers).await.body[0]["method"], "contains");
    let r = admin
        .post(
            &matchers,
            json!({"match_type": "header", "key": "bad header"}),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST);

    let values = f.path(&format!("/integrations/{id}/values"));
    let r = admin
        .post(
            &values,
            json!({"name": "branch", "value_source": "body", "body_data_type": "json",
                   "key": "ref", "variable": "REF"}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
    let value_id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["variable_type"], "environment");
    let r = admin
        .put(
            &format!("{values}/{value_id}"),
            json!({"name": "branch", "value_source": "body", "key": "ref",
                   "variable": "BRANCH", "variable_type": "environment"}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(admin.get(&values).await.body[0]["variable"], "BRANCH");

    // Aliases, of the integration and of the project: 200 with the URL to give the sender.
    let r = admin
        .post(&f.path(&format!("/integrations/{id}/aliases")), json!({}))
        .await;
    assert_status(&r, StatusCode::OK);
    let alias = r.body;
    assert_eq!(alias["integration_id"], id);
    let text = alias["alias"].as_str().unwrap();
    assert!(text.len() >= 32, "{alias}");
    assert!(
        alias["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/integrations/{text}")),
        "{alias}"
    );
    let r = admin
        .post(&f.path("/integrations/aliases"), json!({}))
        .await;
    assert_status(&r, StatusCode::OK);
    let project_alias = r.body;
    assert_eq!(project_alias["integration_id"], Value::Null);
    assert_eq!(
        admin.get(&f.path("/integrations/aliases")).await.body,
        json!([project_alias])
    );
    assert_eq!(
        admin
            .get(&f.path(&format!("/integrations/{id}/aliases")))
            .await
            .body,
        json!([alias])
    );

    // Members read; only managers of resources change.
    let (guest_id, guest) = server.user("guest", false).await;
    assert_status(
        &admin
            .post(
                &f.path("/users"),
                json!({"user_id": guest_id, "role": "guest"}),
            )
            .await,
        StatusCode::NO_CONTENT,
    );
    assert_status(&guest.get(&f.path("/integrations")).await, StatusCode::OK);
    assert_status(
        &guest
            .post(
                &f.path("/integrations"),
                json!({"name": "x", "template_id": f.template()}),
            )
            .await,
        StatusCode::FORBIDDEN,
    );

    // The template's refs name it (deleting the template deletes it).
    let refs = admin
        .get(&f.path(&format!("/templates/{}/refs", f.template())))
        .await
        .body;
    assert_eq!(refs["integrations"], json!([{"id": id, "name": "push"}]));

    // The key in use cannot go; deleting removes matchers, values and aliases with it.
    assert_status(
        &admin.delete(&f.path(&format!("/keys/{key}"))).await,
        StatusCode::CONFLICT,
    );
    assert_status(
        &admin.delete(&format!("{values}/{value_id}")).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin.delete(&format!("{matchers}/{matcher_id}")).await,
        StatusCode::NO_CONTENT,
    );
    let alias_id = alias["id"].as_i64().unwrap();
    assert_status(
        &admin
            .delete(&f.path(&format!("/integrations/{id}/aliases/{alias_id}")))
            .await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &deliver(&admin, text, &[], "{}").await,
        StatusCode::NOT_FOUND,
    );
    assert_status(
        &admin.delete(&f.path(&format!("/integrations/{id}"))).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin.get(&f.path(&format!("/integrations/{id}"))).await,
        StatusCode::NOT_FOUND,
    );

    let doc = server.anonymous().get("/api/openapi.json").await.body;
    for path in [
        "/api/project/{project_id}/integrations",
        "/api/project/{project_id}/integrations/{integration_id}/matchers/{matcher_id}",
        "/api/project/{project_id}/integrations/{integration_id}/values/{extractvalue_id}",
        "/api/project/{project_id}/integrations/aliases/{alias_id}",
        "/api/integrations/{integration_alias}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    server.stop().await;
}

/// Makes an integration of `f`'s template with `fields`, and an alias of it.
async fn integration(api: &Api, f: &TestProject, fields: Value) -> (i64, String) {
    let mut body = json!({"name": "hook", "template_id": f.template()});
    ralf_testkit::merge_fields(&mut body, fields);
    let id = api.create(&f.path("/integrations"), body).await["id"]
        .as_i64()
        .unwrap();
    let alias = api
        .post(&f.path(&format!("/integrations/{id}/aliases")), json!({}))
        .await
        .body["alias"]
        .as_str()
        .unwrap()
        .to_string();
    (id, alias)
}

async fn signed_deliveries_start_tasks_and_bad_ones_do_not(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (f, key) = fixture(&admin, "p").await;
    let body = r#"{"ref":"refs/heads/main","after":"0123abc"}"#;

    // GitHub: X-Hub-Signature-256 with "sha256=".
    let (github, alias) = integration(
        &admin,
        &f,
        json!({"auth_method": "github", "auth_secret_id": key}),
    )
    .await;
    let good = format!(
        "sha256={}",
        hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes())
    );
    let bad = format!(
        "sha256={}",
        hmac_sha256_hex(b"not the secret", body.as_bytes())
    );
    let r = deliver(&admin, &alias, &[("X-Hub-Signature-256", bad)], body).await;
    assert_status(&r, StatusCode::UNAUTHORIZED);
    assert!(!r.error().is_empty(), "{}", r.text);
    let r = deliver(&admin, &alias, &[], body).await;
    assert_status(&r, StatusCode::UNAUTHORIZED);
    assert!(tasks_of(&admin, &f, github).await.is_empty());
    let r = deliver(
        &admin,
        &alias,
        &[("X-Hub-Signature-256", good.clone())],
        body,
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let task_id: i64 = r.headers["x-semaphore-task-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let tasks = tasks_of(&admin, &f, github).await;
    assert_eq!(tasks.len(), 1, "{tasks:#?}");
    assert_eq!(tasks[0]["id"], task_id);
    assert_eq!(tasks[0]["template_id"], f.template());
    // A signature of another body does not pass.
    let r = deliver(
        &admin,
        &alias,
        &[("X-Hub-Signature-256", good)],
        r#"{"ref":"refs/heads/evil"}"#,
    )
    .await;
    assert_status(&r, StatusCode::UNAUTHORIZED);

    // HMAC in a header of the integration's choosing, hex without a prefix.
    let (hmac, alias) = integration(
        &admin,
        &f,
        json!({"auth_method": "hmac", "auth_secret_id": key, "auth_header": "X-Signature"}),
    )
    .await;
    let good = hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes());
    let r = deliver(&admin, &alias, &[("X-Signature", "00".repeat(32))], body).await;
    assert_status(&r, StatusCode::UNAUTHORIZED);
    let r = deliver(&admin, &alias, &[("X-Signature", good)], body).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(tasks_of(&admin, &f, hmac).await.len(), 1);

    // A token in a header.
    let (token, alias) = integration(
        &admin,
        &f,
        json!({"auth_method": "token", "auth_secret_id": key, "auth_header": "X-Token"}),
    )
    .await;
    let r = deliver(&admin, &alias, &[("X-Token", "guess".into())], body).await;
    assert_status(&r, StatusCode::UNAUTHORIZED);
    let r = deliver(&admin, &alias, &[("X-Token", SECRET.into())], body).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(tasks_of(&admin, &f, token).await.len(), 1);

    // The refusals are in the project's events.
    let events = admin.get(&f.path("/events")).await.text;
    assert!(
        events.contains("signature or token is not valid"),
        "{events}"
    );
    assert!(!events.contains(SECRET));
    server.stop().await;
}

async fn matchers_of_each_kind_decide_and_replays_start_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (f, _) = fixture(&admin, "p").await;
    let (id, alias) = integration(&admin, &f, json!({"searchable": true})).await;
    let matchers = f.path(&format!("/integrations/{id}/matchers"));
    for m in [
        json!({"match_type": "header", "method": "equals", "key": "X-GitHub-Event", "value": "push"}),
        json!({"match_type": "body", "body_data_type": "json", "method": "unequals",
               "key": "repository.private", "value": "true"}),
        json!({"match_type": "body", "body_data_type": "string", "method": "contains",
               "key": "", "value": "refs/heads/main"}),
    ] {
        assert_status(&admin.post(&matchers, m).await, StatusCode::OK);
    }
    let push = |private: bool, branch: &str| {
        json!({"ref": format!("refs/heads/{branch}"), "repository": {"private": private}})
            .to_string()
    };
    let event = |e: &str| ("X-GitHub-Event", e.to_string());

    // Each matcher can say no; nothing starts, and the answer is 204 all the same.
    for (headers, body) in [
        (vec![event("ping")], push(false, "main")),
        (vec![event("push")], push(true, "main")),
        (vec![event("push")], push(false, "dev")),
    ] {
        let r = deliver(&admin, &alias, &headers, &body).await;
        assert_status(&r, StatusCode::NO_CONTENT);
        assert!(r.headers.get("x-semaphore-task-id").is_none());
    }
    assert!(tasks_of(&admin, &f, id).await.is_empty());

    // All hold: one task; the same delivery again starts nothing.
    let delivery = (
        "X-GitHub-Delivery",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_string(),
    );
    let r = deliver(
        &admin,
        &alias,
        &[event("push"), delivery.clone()],
        &push(false, "main"),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(r.headers.get("x-semaphore-task-id").is_some());
    let r = deliver(
        &admin,
        &alias,
        &[event("push"), delivery.clone()],
        &push(false, "main"),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(r.headers.get("x-semaphore-task-id").is_none(), "a replay");
    assert_eq!(tasks_of(&admin, &f, id).await.len(), 1);
    // Another delivery id is another delivery.
    let r = deliver(
        &admin,
        &alias,
        &[event("push"), ("X-GitHub-Delivery", "another".into())],
        &push(false, "main"),
    )
    .await;
    assert!(r.headers.get("x-semaphore-task-id").is_some());

    // The project's alias reaches searchable integrations whose matchers hold.
    let project_alias = admin
        .post(&f.path("/integrations/aliases"), json!({}))
        .await
        .body["alias"]
        .as_str()
        .unwrap()
        .to_string();
    let r = deliver(
        &admin,
        &project_alias,
        &[event("push")],
        &push(false, "main"),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(r.headers.get("x-semaphore-task-id").is_some());
    let r = deliver(
        &admin,
        &project_alias,
        &[event("ping")],
        &push(false, "main"),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(r.headers.get("x-semaphore-task-id").is_none());
    assert_eq!(tasks_of(&admin, &f, id).await.len(), 3);

    // XML bodies.
    let (xml, xml_alias) = integration(&admin, &f, json!({})).await;
    assert_status(
        &admin
            .post(
                &f.path(&format!("/integrations/{xml}/matchers")),
                json!({"match_type": "body", "body_data_type": "xml", "method": "equals",
                       "key": "build.status", "value": "passed"}),
            )
            .await,
        StatusCode::OK,
    );
    let r = deliver(
        &admin,
        &xml_alias,
        &[],
        "<build><status>failed</status></build>",
    )
    .await;
    assert!(r.headers.get("x-semaphore-task-id").is_none());
    let r = deliver(
        &admin,
        &xml_alias,
        &[],
        "<build><status>passed</status></build>",
    )
    .await;
    assert!(r.headers.get("x-semaphore-task-id").is_some());
    assert_eq!(tasks_of(&admin, &f, xml).await.len(), 1);

    // An alias nobody has.
    assert_status(
        &deliver(&admin, "no-such-alias", &[], "{}").await,
        StatusCode::NOT_FOUND,
    );
    server.stop().await;
}

async fn backups_keep_integrations(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (f, key) = fixture(&admin, "p").await;
    let (id, alias) = integration(
        &admin,
        &f,
        json!({"auth_method": "token", "auth_secret_id": key, "auth_header": "X-Token",
               "searchable": true, "task_params": {"message": "hooked"}}),
    )
    .await;
    admin
        .post(
            &f.path(&format!("/integrations/{id}/matchers")),
            json!({"match_type": "header", "method": "equals", "key": "X-Event", "value": "push"}),
        )
        .await;
    admin
        .create(
            &f.path(&format!("/integrations/{id}/values")),
            json!({"value_source": "header", "key": "X-Event", "variable": "EVENT"}),
        )
        .await;
    let project_alias = admin
        .post(&f.path("/integrations/aliases"), json!({}))
        .await
        .body["alias"]
        .clone();

    let backup = admin.get(&f.path("/backup")).await.body;
    let b = &backup["integrations"][0];
    assert_eq!(b["name"], "hook");
    assert_eq!(b["auth_secret"], "hook secret");
    assert_eq!(b["aliases"], json!([alias]));
    assert_eq!(b["matchers"][0]["key"], "X-Event");
    assert_eq!(b["extract_values"][0]["variable"], "EVENT");
    assert_eq!(backup["integration_aliases"], json!([project_alias]));
    assert!(
        b.get("id").is_none() && b.get("template_id").is_none(),
        "{b}"
    );

    let mut copy = backup.clone();
    copy["meta"]["name"] = json!("restored");
    let r = admin.post("/api/projects/restore", copy).await;
    assert_status(&r, StatusCode::OK);
    let restored = r.body["id"].as_i64().unwrap();
    let list = admin
        .get(&format!("/api/project/{restored}/integrations"))
        .await
        .body;
    let new = &list[0];
    assert_eq!(new["name"], "hook");
    assert_eq!(new["auth_method"], "token");
    assert_eq!(new["task_params"]["message"], "hooked");
    assert!(new["auth_secret_id"].is_i64());
    let new_id = new["id"].as_i64().unwrap();
    let matchers = admin
        .get(&format!(
            "/api/project/{restored}/integrations/{new_id}/matchers"
        ))
        .await
        .body;
    assert_eq!(matchers[0]["value"], "push");
    // The original project keeps its aliases; the copy got new ones.
    let aliases = admin
        .get(&format!(
            "/api/project/{restored}/integrations/{new_id}/aliases"
        ))
        .await
        .body;
    assert_eq!(aliases.as_array().unwrap().len(), 1);
    assert_ne!(aliases[0]["alias"], json!(alias));
    server.stop().await;
}

on_both_backends!(
    integrations_have_semaphores_routes_and_statuses,
    signed_deliveries_start_tasks_and_bad_ones_do_not,
    matchers_of_each_kind_decide_and_replays_start_nothing,
    backups_keep_integrations
);
