//! What Semaphore 2.16 accepts, ralf accepts: requests it stores although they cannot all run,
//! with the reason told when a task meets them.

use std::time::Duration;

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Api, Backend, ProjectFixture, TestProject, TestServer, json, on_both_backends};
use serde_json::Value;

/// A project with a real repository holding `files`, and a bash template running `run.sh`
/// (`template` adds to or overrides its fields).
async fn fixture(api: &Api, files: &[(&str, &str)], template: Value) -> TestProject {
    ProjectFixture::new("parity")
        .files(files)
        .template(template)
        .create(api)
        .await
}

/// Starts a task of the project's template with `body` and waits for its end.
async fn run(api: &Api, fixture: &TestProject, mut body: Value) -> (Value, Vec<String>) {
    body["template_id"] = json!(fixture.template());
    let task = api.create(&fixture.path("/tasks"), body).await;
    let id = task["id"].as_i64().unwrap();
    let done = api.wait_task(fixture.id, id, Duration::from_secs(60)).await;
    (done, api.output_lines(fixture.id, id).await)
}

/// Users without a password (external ones, or whose password is set later) can be created;
/// nobody logs in as them with a password until one is set.
async fn users_may_be_created_without_a_password(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let r = admin
        .post(
            "/api/users",
            json!({"username": "later", "name": "Later", "email": "later@example.test",
                   "password": ""}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let r = admin
        .post(
            "/api/users",
            json!({"username": "nopass", "name": "No Pass", "email": "nopass@example.test"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    for password in ["", "anything"] {
        let r = server
            .anonymous()
            .post(
                "/api/auth/login",
                json!({"auth": "later", "password": password}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{password:?}");
    }
    let r = admin
        .post(
            &format!("/api/users/{id}/password"),
            json!({"password": "now set at last"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    server.login("later", "now set at last").await;
    server.stop().await;
}

/// Survey variables without a name are stored (Semaphore's form saves them half-filled) and
/// never reach a task.
async fn survey_variables_may_have_no_name(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let fixture = fixture(
        &admin,
        &[("run.sh", "echo \"args: $*\"\n")],
        json!({"survey_vars": [{"name": "", "title": "Unfinished"},
                               {"name": "", "title": "Another"}]}),
    )
    .await;
    let template = admin
        .get(&format!(
            "{}/templates/{}",
            fixture.path(""),
            fixture.template()
        ))
        .await
        .body;
    assert_eq!(template["survey_vars"][1]["title"], "Another");
    let (task, lines) = run(&admin, &fixture, json!({})).await;
    assert_eq!(task["status"], "success", "{lines:?}");
    server.stop().await;
}

/// A runner's negative `max_parallel_tasks` is stored as sent and means no limit, like 0; a
/// webhook that is not an http(s) URL is stored as sent.
async fn runners_may_have_a_negative_task_limit(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let runner = admin
        .create(
            "/api/runners",
            json!({"name": "r", "max_parallel_tasks": -1}),
        )
        .await;
    assert_eq!(runner["max_parallel_tasks"], -1);
    let id = runner["id"].as_i64().unwrap();
    // Any webhook text is stored as sent: ralf never calls it.
    let hooked = admin
        .create(
            "/api/runners",
            json!({"name": "hooked", "webhook": "ftp://hooks.example.test/runner"}),
        )
        .await;
    assert_eq!(hooked["webhook"], "ftp://hooks.example.test/runner");
    let r = admin
        .put(
            &format!("/api/runners/{id}"),
            json!({"id": id, "name": "r", "max_parallel_tasks": -5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        admin.get(&format!("/api/runners/{id}")).await.body["max_parallel_tasks"],
        -5
    );
    server.stop().await;
}

/// A key whose type was changed without a new secret is stored; the task using it says why
/// it cannot.
async fn a_key_retyped_without_its_secret_fails_when_used(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let fixture = fixture(&admin, &[("run.sh", "echo ran\n")], json!({})).await;
    let base = fixture.path("");
    let key = admin
        .create(
            &format!("{base}/keys"),
            json!({"name": "k", "type": "none"}),
        )
        .await;
    let key_id = key["id"].as_i64().unwrap();
    let r = admin
        .put(
            &format!("{base}/keys/{key_id}"),
            json!({"id": key_id, "name": "k", "type": "ssh"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let repository = admin
        .get(&format!("{base}/repositories/{}", fixture.repository))
        .await
        .body;
    let mut changed = repository.clone();
    changed["ssh_key_id"] = json!(key_id);
    let r = admin
        .put(
            &format!("{base}/repositories/{}", fixture.repository),
            changed,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let (task, lines) = run(&admin, &fixture, json!({})).await;
    assert_eq!(task["status"], "error");
    assert!(
        lines.iter().any(|l| l.contains("without a private key")),
        "{lines:?}"
    );
    server.stop().await;
}

/// A template's `task_params` are each task's defaults; survey variables' `default_value`
/// answers a task started without them; `environment` may be a JSON object.
async fn template_defaults_reach_tasks_started_over_the_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let fixture = fixture(
        &admin,
        &[("run.sh", "for a in \"$@\"; do echo \"arg=[$a]\"; done\n")],
        json!({"task_params": {"limit": ["web1"], "debug": true, "tags": ["deploy"]},
               "survey_vars": [{"name": "region", "title": "Region", "required": true,
                                "default_value": "eu-west"},
                               {"name": "size", "title": "Size", "default_value": "s"}]}),
    )
    .await;
    let (task, lines) = run(
        &admin,
        &fixture,
        json!({"environment": {"size": "xl", "note": null}}),
    )
    .await;
    assert_eq!(task["status"], "success", "{lines:?}");
    assert_eq!(task["params"]["limit"], json!(["web1"]));
    assert_eq!(task["params"]["debug"], true);
    assert_eq!(task["params"]["tags"], json!(["deploy"]));
    let environment: Value = serde_json::from_str(task["environment"].as_str().unwrap()).unwrap();
    assert_eq!(
        environment,
        json!({"region": "eu-west", "size": "xl", "note": null})
    );
    for expected in ["arg=[region=eu-west]", "arg=[size=xl]"] {
        assert!(lines.iter().any(|l| l == expected), "{expected}: {lines:?}");
    }
    // The task's own switches win over the template's.
    let (task, _) = run(&admin, &fixture, json!({"params": {"limit": ["db1"]}})).await;
    assert_eq!(task["params"]["limit"], json!(["db1"]));
    server.stop().await;
}

/// Deleting a task that is running stops it first and answers 204, as Semaphore does.
async fn deleting_a_running_task_stops_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let script = "case \"$1\" in quick=*) echo quick; exit 0;; esac\necho started\nsleep 300\n";
    let fixture = fixture(&admin, &[("run.sh", script)], json!({})).await;
    let base = fixture.path("");
    let task = admin
        .create(
            &format!("{base}/tasks"),
            json!({"template_id": fixture.template()}),
        )
        .await;
    let id = task["id"].as_i64().unwrap();
    admin
        .wait_status(fixture.id, id, "running", Duration::from_secs(60))
        .await;
    let r = admin.delete(&format!("{base}/tasks/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        admin.get(&format!("{base}/tasks/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    // The template is free again: its next task runs.
    let (next, lines) = run(
        &admin,
        &fixture,
        json!({"environment": "{\"quick\": \"1\"}"}),
    )
    .await;
    assert_eq!(next["status"], "success", "{lines:?}");
    server.stop().await;
}

/// The routes of the 2.16 spec that Semaphore's web frontend and clients use: user options,
/// `can_create_project`, the admins' list of active tasks, stopping all tasks of a template,
/// host configs; and `/api/openapi.json` lists them.
async fn the_routes_of_the_spec_answer(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (_, user) = server.user("uma", false).await;

    assert_eq!(
        admin.get("/api/user/").await.body["can_create_project"],
        true
    );
    assert_eq!(
        user.get("/api/user").await.body["can_create_project"],
        false
    );
    assert_eq!(user.get("/api/user/options").await.body, json!({}));
    let option = json!({"key": "nav.unpinnedItems", "value": "[\"dashboard\"]"});
    let r = user.post("/api/user/options", option.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, option);
    let r = user
        .post(
            "/api/user/options",
            json!({"key": "nav.unpinnedItems", "value": "[]"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        user.get("/api/user/options").await.body,
        json!({"nav.unpinnedItems": "[]"})
    );
    assert_eq!(
        admin.get("/api/user/options").await.body,
        json!({}),
        "per user"
    );
    let r = user
        .post("/api/user/options", json!({"key": "../x y", "value": ""}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Active tasks of every project (admins), and stopping all tasks of a template.
    let fixture = fixture(&admin, &[("run.sh", "sleep 300\n")], json!({})).await;
    let base = fixture.path("");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let task = admin
            .create(
                &format!("{base}/tasks"),
                json!({"template_id": fixture.template()}),
            )
            .await;
        ids.push(task["id"].as_i64().unwrap());
    }
    admin
        .wait_status(fixture.id, ids[0], "running", Duration::from_secs(60))
        .await;
    let active = admin.get("/api/tasks").await;
    assert_eq!(active.status, StatusCode::OK);
    let mut listed: Vec<i64> = active
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, ids);
    assert_eq!(user.get("/api/tasks").await.status, StatusCode::FORBIDDEN);
    let r = admin
        .post(
            &format!("{base}/templates/{}/stop_all_tasks", fixture.template()),
            json!({"force": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for id in &ids {
        let task = admin
            .wait_task(fixture.id, *id, Duration::from_secs(60))
            .await;
        assert_eq!(task["status"], "stopped");
    }
    assert_eq!(admin.get("/api/tasks").await.body, json!([]));

    // Host configs.
    let key = admin
        .create(
            &format!("{base}/keys"),
            json!({"name": "k", "type": "none"}),
        )
        .await;
    let hosts = format!("{base}/host_configs");
    let created = admin
        .create(
            &hosts,
            json!({"project_id": fixture.id, "type": "host", "host": "github.com",
                   "ssh_key_id": key["id"]}),
        )
        .await;
    let host_id = created["id"].as_i64().unwrap();
    assert_eq!(created["host"], "github.com");
    let r = admin
        .put(
            &format!("{hosts}/{host_id}"),
            json!({"id": host_id, "project_id": fixture.id, "type": "url",
                   "host": "https://git.example.test/", "ssh_key_id": key["id"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        admin.get(&format!("{hosts}/{host_id}")).await.body["type"],
        "url"
    );
    assert_eq!(admin.get(&hosts).await.body.as_array().unwrap().len(), 1);
    let r = admin
        .post(&hosts, json!({"type": "ftp", "host": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = admin
        .post(
            &hosts,
            json!({"type": "host", "host": "x", "ssh_key_id": 999999}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        admin.delete(&format!("{hosts}/{host_id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(admin.get(&hosts).await.body, json!([]));

    let doc = server.anonymous().get("/api/openapi.json").await.body;
    for path in [
        "/api/user/options",
        "/api/tasks",
        "/api/project/{project_id}/templates/{template_id}/stop_all_tasks",
        "/api/project/{project_id}/host_configs",
        "/api/project/{project_id}/host_configs/{host_config_id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is not listed");
    }
    server.stop().await;
}

/// Templates of the apps ralf cannot run yet (`pulumi`, `powershell`, `terragrunt`) are stored
/// and updated; a task of one ends in `error` and its log says why.
async fn templates_of_apps_ralf_cannot_run_are_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let fixture = fixture(
        &admin,
        &[("run.sh", "echo ran\n")],
        json!({"app": "pulumi"}),
    )
    .await;
    let base = fixture.path("");
    for app in ["powershell", "terragrunt"] {
        let template = admin
            .create(
                &format!("{base}/templates"),
                json!({"name": app, "app": app, "playbook": "run.sh",
                       "repository_id": fixture.repository}),
            )
            .await;
        assert_eq!(template["app"], app);
    }
    let path = format!("{base}/templates/{}", fixture.template());
    let mut template = admin.get(&path).await.body;
    assert_eq!(template["app"], "pulumi");
    template["description"] = json!("infrastructure");
    let r = admin.put(&path, template).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let (task, lines) = run(&admin, &fixture, json!({})).await;
    assert_eq!(task["status"], "error", "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ralf cannot run pulumi templates yet")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l == "ran"), "{lines:?}");
    server.stop().await;
}

/// Terraform and OpenTofu workspace inventories without a workspace name are stored (a task
/// then uses the `default` workspace).
async fn workspace_inventories_may_have_no_name(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let fixture = fixture(&admin, &[("run.sh", "echo ran\n")], json!({})).await;
    let base = fixture.path("");
    for kind in ["terraform-workspace", "tofu-workspace"] {
        let inventory = admin
            .create(
                &format!("{base}/inventory"),
                json!({"name": kind, "type": kind, "inventory": ""}),
            )
            .await;
        assert_eq!(inventory["inventory"], "");
        let id = inventory["id"].as_i64().unwrap();
        let r = admin
            .put(
                &format!("{base}/inventory/{id}"),
                json!({"id": id, "name": kind, "type": kind, "inventory": " "}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    server.stop().await;
}

/// An `enum` survey variable without values is stored; a task started without an answer to it
/// runs without it.
async fn enum_survey_variables_may_have_no_values(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let fixture = fixture(
        &admin,
        &[("run.sh", "echo \"args: $*\"\n")],
        json!({"survey_vars": [{"name": "size", "title": "Size", "type": "enum"},
                               {"name": "tier", "title": "Tier", "type": "enum",
                                "values": null}]}),
    )
    .await;
    let template = admin
        .get(&format!(
            "{}/templates/{}",
            fixture.path(""),
            fixture.template()
        ))
        .await
        .body;
    assert_eq!(template["survey_vars"][0]["type"], "enum");
    let (task, lines) = run(&admin, &fixture, json!({})).await;
    assert_eq!(task["status"], "success", "{lines:?}");
    assert!(lines.iter().any(|l| l == "args: "), "{lines:?}");
    server.stop().await;
}

/// A cron schedule that never matches (the 30th of February) is stored, as Semaphore stores
/// it, and the validate endpoint accepts it; it never starts a task.
async fn schedules_may_never_match(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let fixture = fixture(&admin, &[("run.sh", "echo ran\n")], json!({})).await;
    let base = fixture.path("");
    let schedule = admin
        .create(
            &format!("{base}/schedules"),
            json!({"name": "never", "template_id": fixture.template(),
                   "cron_format": "0 0 30 2 *"}),
        )
        .await;
    assert_eq!(schedule["cron_format"], "0 0 30 2 *");
    let r = admin
        .post(
            &format!("{base}/schedules/validate"),
            json!({"cron_format": "0 0 30 2 *"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    server.stop().await;
}

on_both_backends!(
    users_may_be_created_without_a_password,
    survey_variables_may_have_no_name,
    runners_may_have_a_negative_task_limit,
    a_key_retyped_without_its_secret_fails_when_used,
    template_defaults_reach_tasks_started_over_the_api,
    deleting_a_running_task_stops_it,
    the_routes_of_the_spec_answer,
    templates_of_apps_ralf_cannot_run_are_stored,
    workspace_inventories_may_have_no_name,
    enum_survey_variables_may_have_no_values,
    schedules_may_never_match,
);
