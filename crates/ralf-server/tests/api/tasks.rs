//! Tasks: starting one (201, waiting), what a start request may and may not say, lists and
//! their paging, output, stop / confirm / reject, delete, and who may do what.
//!
//! Tasks really run, so the tests that need tasks to stay `waiting` start the server with one
//! task slot, taken by a task that does not end ([`TestServer::start_busy`]): every task they
//! start queues behind it, as it would on a busy server.

use std::time::Duration;

use ralf_core::{TaskId, TaskStatus, Timestamp};
use ralf_testkit::reqwest::{Method, StatusCode};
use ralf_testkit::{
    Api, Backend, ProjectFixture, TestProject, TestServer, json, merge_fields, on_both_backends,
};
use serde_json::Value;

/// A project with a repository (a real one, whose `run.sh` prints a line), an inventory and a
/// bash template `run` running `run.sh`; `template` adds to (or overrides) the template body.
async fn fixture(api: &Api, name: &str, template: Value) -> TestProject {
    ProjectFixture::new(name)
        .files(&[("run.sh", "echo \"run.sh ran\"\n")])
        .template(template)
        .create(api)
        .await
}

/// Starts a task of the project's template (`extra` added to the request) and returns it.
async fn start(api: &Api, f: &TestProject, extra: Value) -> Value {
    let mut body = json!({"template_id": f.template()});
    merge_fields(&mut body, extra);
    api.create(&f.path("/tasks"), body).await
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array().unwrap().iter().map(id).collect()
}

async fn starting_a_task_queues_it(backend: Backend) {
    let (server, busy) = TestServer::start_busy(backend).await;
    let admin = server.admin().await;
    let f = fixture(&admin, "p", json!({})).await;

    let r = admin
        .post(
            &f.path("/tasks"),
            json!({"template_id": f.template(), "debug": true, "message": "first run",
                   "environment": "{\"color\": \"red\"}", "secret": "{\"token\": \"s3cret\"}",
                   "limit": "web1, web2", "params": {"limit": ["web2", "db1"], "tags": ["deploy"]},
                   "inventory_id": f.inventory}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let task = r.body;
    let task_id = id(&task);
    assert_eq!(task["status"], "waiting");
    assert_eq!(task["template_id"], f.template());
    assert_eq!(task["project_id"], f.id);
    assert_eq!(task["debug"], true);
    assert_eq!(task["params"]["debug"], true);
    assert_eq!(task["params"]["limit"], json!(["web2", "db1", "web1"]));
    assert_eq!(task["limit"], "web2,db1,web1");
    assert_eq!(task["params"]["tags"], json!(["deploy"]));
    assert_eq!(task["environment"], "{\"color\": \"red\"}");
    assert_eq!(task["secret"], "");
    assert!(!r.text.contains("s3cret"), "secrets are never shown");
    assert_eq!(task["message"], "first run");
    assert_eq!(task["inventory_id"], f.inventory);
    assert_eq!(task["start"], Value::Null);
    assert_eq!(task["end"], Value::Null);
    assert_eq!(task["tpl_alias"], "run");
    assert_eq!(task["tpl_app"], "bash");
    assert_eq!(task["tpl_playbook"], "run.sh");
    assert_eq!(task["user_name"], "Admin");
    assert!(task["created"].as_str().unwrap().ends_with('Z'));

    let got = admin.get(&f.path(&format!("/tasks/{task_id}"))).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, task);

    let output = admin
        .get(&f.path(&format!("/tasks/{task_id}/output")))
        .await
        .body;
    assert_eq!(
        output[0]["output"],
        format!("Task {task_id} added to queue")
    );
    assert_eq!(output[0]["task_id"], task_id);
    let events = admin.get(&f.path("/events")).await.body;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["object_type"] == "task" && e["object_id"] == task_id),
        "{events}"
    );

    // By name; an id wins over a name; neither is a 400.
    let by_name = start(
        &admin,
        &f,
        json!({"template_id": null, "template_name": "run"}),
    )
    .await;
    assert_eq!(by_name["template_id"], f.template());
    let both = start(&admin, &f, json!({"template_name": "no such template"})).await;
    assert_eq!(both["template_id"], f.template());
    let r = admin.post(&f.path("/tasks"), json!({"debug": true})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "template_id or template_name is required");
    let r = admin
        .post(&f.path("/tasks"), json!({"template_id": 999_999}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "template_id: no such template in this project");
    let r = admin
        .post(&f.path("/tasks"), json!({"template_name": "nope"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().starts_with("template_name:"), "{}", r.text);

    // Queued, not forgotten: once the slot is free, the first task runs.
    assert_eq!(
        admin.get(&f.path(&format!("/tasks/{task_id}"))).await.body["status"],
        "waiting"
    );
    let r = admin
        .post(
            &format!("/api/project/{}/tasks/{}/stop", busy.project, busy.task),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let done = admin
        .wait_task(f.id, task_id, Duration::from_secs(60))
        .await;
    let lines = admin.output_lines(f.id, task_id).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(
        done["start"].is_string() && done["end"].is_string(),
        "{done}"
    );
    assert_eq!(lines[0], format!("Task {task_id} added to queue"));
    assert!(lines.iter().any(|l| l == "run.sh ran"), "{lines:#?}");
    server.stop().await;
}

async fn bad_start_requests_are_refused_with_a_message(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let f = fixture(
        &admin,
        "p",
        json!({"survey_vars": [
            {"name": "count", "title": "Count", "type": "int", "required": true},
            {"name": "color", "title": "Color", "type": "enum",
             "values": [{"name": "Red", "value": "red"}, {"name": "Blue", "value": "blue"}]}
        ]}),
    )
    .await;
    let other = fixture(
        &admin,
        "other",
        json!({"allow_override_args_in_task": true}),
    )
    .await;

    let refused = |body: Value| {
        let admin = admin.clone();
        let path = f.path("/tasks");
        let mut full = json!({"template_id": f.template(), "environment": "{\"count\": 1}"});
        merge_fields(&mut full, body);
        async move {
            let r = admin.post(&path, full).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
            r.error().to_string()
        }
    };
    assert_eq!(
        refused(json!({"environment": "{}"})).await,
        "survey variable count is required"
    );
    assert!(
        refused(json!({"environment": "{\"count\": \"many\"}"}))
            .await
            .starts_with("survey variable count must be a whole number")
    );
    assert!(
        refused(json!({"environment": "{\"count\": 2, \"color\": \"green\"}"}))
            .await
            .starts_with("survey variable color must be one of")
    );
    assert!(
        refused(json!({"environment": "[1]"}))
            .await
            .contains("JSON object")
    );
    assert!(
        refused(json!({"arguments": "[\"-v\"]"}))
            .await
            .contains("allow_override_args_in_task")
    );
    assert!(
        refused(json!({"git_branch": "dev"}))
            .await
            .contains("allow_override_branch_in_task")
    );
    assert_eq!(
        refused(json!({"inventory_id": other.inventory})).await,
        "inventory_id: no such inventory in this project"
    );
    assert!(
        refused(json!({"secret": "not json"}))
            .await
            .starts_with("secret is not valid JSON")
    );
    let r = admin
        .send_raw(
            Method::POST,
            &f.path("/tasks"),
            "{\"template_id\": \"one\"}",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Valid answers pass; a template that allows arguments takes them.
    let ok = start(
        &admin,
        &f,
        json!({"environment": "{\"count\": \"3\", \"color\": \"blue\"}"}),
    )
    .await;
    assert_eq!(ok["status"], "waiting");
    let with_args = start(
        &admin,
        &other,
        json!({"arguments": "[\"--check\", \"-v\"]"}),
    )
    .await;
    assert_eq!(with_args["arguments"], "[\"--check\",\"-v\"]");
    let r = admin.get(&f.path("/tasks")).await;
    assert_eq!(ids(&r.body), vec![id(&ok)], "nothing refused was stored");
    server.stop().await;
}

async fn lists_are_newest_first_and_page(backend: Backend) {
    let (server, _busy) = TestServer::start_busy(backend).await;
    let admin = server.admin().await;
    let f = fixture(&admin, "p", json!({})).await;
    let mut started = Vec::new();
    for _ in 0..5 {
        started.push(id(&start(&admin, &f, json!({})).await));
    }
    let newest_first: Vec<i64> = started.iter().rev().copied().collect();

    let all = admin.get(&f.path("/tasks")).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(ids(&all.body), newest_first);
    let first = ids(&admin.get(&f.path("/tasks?limit=2")).await.body);
    assert_eq!(first, newest_first[..2]);
    let second = ids(&admin
        .get(&f.path(&format!("/tasks?limit=2&before_id={}", first[1])))
        .await
        .body);
    assert_eq!(second, newest_first[2..4]);
    let by_offset = ids(&admin.get(&f.path("/tasks?limit=2&offset=4")).await.body);
    assert_eq!(by_offset, newest_first[4..]);
    let ascending = ids(&admin.get(&f.path("/tasks?order=asc")).await.body);
    assert_eq!(ascending, started);

    // Filters.
    let stopped = started[1];
    let r = admin
        .post(&f.path(&format!("/tasks/{stopped}/stop")), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        ids(&admin.get(&f.path("/tasks?status=stopped")).await.body),
        vec![stopped]
    );
    assert_eq!(
        admin
            .get(&f.path("/tasks?status=waiting,stopped"))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let r = admin.get(&f.path("/tasks?status=sleeping")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("not a task status"), "{}", r.text);
    let r = admin.get(&f.path("/tasks?sort=secret")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = admin.get(&f.path("/tasks?limit=0")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        ids(&admin
            .get(&f.path(&format!("/tasks?template_id={}", f.template())))
            .await
            .body),
        newest_first
    );
    assert_eq!(
        ids(&admin.get(&f.path("/tasks/last")).await.body),
        newest_first
    );

    // A template's tasks.
    let tpl = |rest: &str| f.path(&format!("/templates/{}/tasks{rest}", f.template()));
    assert_eq!(ids(&admin.get(&tpl("")).await.body), newest_first);
    assert_eq!(
        ids(&admin.get(&tpl("/last?limit=1")).await.body),
        newest_first[..1]
    );
    assert_eq!(
        ids(&admin.get(&tpl("?status=stopped")).await.body),
        vec![stopped]
    );
    let r = admin.get(&f.path("/templates/999999/tasks")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = admin.post(&tpl(""), json!({"debug": true})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(
        r.error().starts_with(&format!(
            "tasks are started with POST /api/project/{}/tasks",
            f.id
        )),
        "{}",
        r.text
    );
    assert_eq!(
        admin
            .get(&f.path("/tasks"))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // Another project's task is not found here.
    let g = fixture(&admin, "q", json!({})).await;
    let r = admin.get(&g.path(&format!("/tasks/{}", started[0]))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(admin.get(&g.path("/tasks")).await.body, json!([]));
    server.stop().await;
}

async fn output_reads_whole_in_slices_and_raw(backend: Backend) {
    let (server, _busy) = TestServer::start_busy(backend).await;
    let admin = server.admin().await;
    let f = fixture(&admin, "p", json!({})).await;
    let task_id = id(&start(&admin, &f, json!({})).await);
    let now = Timestamp::now();
    server
        .store()
        .append_task_output(
            TaskId(task_id),
            &[
                (now, "PLAY [all]".into()),
                (now, "".into()),
                (now, "ok: [localhost] ✓".into()),
            ],
        )
        .await
        .unwrap();

    let all = admin
        .get(&f.path(&format!("/tasks/{task_id}/output")))
        .await
        .body;
    let lines: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["output"].as_str().unwrap())
        .collect();
    let first = format!("Task {task_id} added to queue");
    assert_eq!(
        lines,
        [first.as_str(), "PLAY [all]", "", "ok: [localhost] ✓"]
    );
    let mut keys: Vec<&String> = all[1].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["output", "task_id", "time"]);
    let slice = admin
        .get(&f.path(&format!("/tasks/{task_id}/output?offset=1&limit=1")))
        .await;
    assert_eq!(slice.body.as_array().unwrap().len(), 1);
    assert_eq!(slice.body[0]["output"], "PLAY [all]");
    // The whole count comes with any slice, so a client can page through a long output.
    assert_eq!(slice.headers["x-total-count"], "4");

    let raw = admin
        .get(&f.path(&format!("/tasks/{task_id}/raw_output")))
        .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        raw.text,
        format!("{first}\nPLAY [all]\n\nok: [localhost] ✓")
    );

    // Long outputs stream in pieces and still join with exactly one newline between lines;
    // stored in batches (as a writer does), over a dozen seconds, some lines JSON must escape.
    let long_id = id(&start(&admin, &f, json!({})).await);
    let long: Vec<(Timestamp, String)> = (0..12_345)
        .map(|i| {
            let time = Timestamp(now.0 + chrono::Duration::milliseconds(i));
            (time, format!("line {i} \"quoted\" \\ \u{1b}[0m\t"))
        })
        .collect();
    for batch in long.chunks(1000) {
        server
            .store()
            .append_task_output(TaskId(long_id), batch)
            .await
            .unwrap();
    }
    let raw = admin
        .get(&f.path(&format!("/tasks/{long_id}/raw_output")))
        .await
        .text;
    let mut expected = vec![format!("Task {long_id} added to queue")];
    expected.extend(long.into_iter().map(|(_, line)| line));
    assert_eq!(raw, expected.join("\n"));

    // The JSON output streams a page at a time too, and sends the very bytes one list of the
    // stored lines would be: whole, and in a slice across the pages.
    for (query, offset, limit) in [("", 0, None), ("?offset=4990&limit=5020", 4990, Some(5020))] {
        let r = admin
            .get(&f.path(&format!("/tasks/{long_id}/output{query}")))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], "application/json");
        let stored = server
            .store()
            .task_output(TaskId(long_id), offset, limit)
            .await
            .unwrap();
        assert_eq!(r.text, serde_json::to_string(&stored).unwrap(), "{query}");
    }
    let none = admin
        .get(&f.path(&format!("/tasks/{long_id}/output?offset=99999")))
        .await;
    assert_eq!(none.text, "[]");

    let r = admin.get(&f.path("/tasks/999999/raw_output")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// Moves a task through the store as the dispatcher would; only for tasks queued behind the busy
/// slot, which the dispatcher leaves alone.
async fn walk(server: &TestServer, task_id: i64, path: &[TaskStatus]) {
    for pair in path.windows(2) {
        let changed = server
            .store()
            .set_task_status(TaskId(task_id), pair[0], pair[1], Timestamp::now())
            .await
            .unwrap();
        assert!(changed, "{} -> {}", pair[0], pair[1]);
    }
}

async fn stop_confirm_reject_and_delete(backend: Backend) {
    use TaskStatus::*;
    let (server, _busy) = TestServer::start_busy(backend).await;
    let admin = server.admin().await;
    let f = fixture(&admin, "p", json!({})).await;
    let task = |id: i64| {
        let admin = admin.clone();
        let path = f.path(&format!("/tasks/{id}"));
        async move { admin.get(&path).await.body }
    };
    let act = |id: i64, what: &str| f.path(&format!("/tasks/{id}/{what}"));

    // A waiting task stops at once, even with an empty body.
    let waiting = id(&start(&admin, &f, json!({})).await);
    let r = admin
        .send_raw(Method::POST, &act(waiting, "stop"), "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let t = task(waiting).await;
    assert_eq!(t["status"], "stopped");
    assert!(t["end"].is_string());
    let out = admin.get(&act(waiting, "raw_output")).await.text;
    assert!(out.ends_with("Task stopped by admin"), "{out}");
    let r = admin.post(&act(waiting, "stop"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.error().contains("stopped already"), "{}", r.text);
    let r = admin
        .post(&act(waiting, "stop"), json!({"force": "yes"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A running task is asked to stop; force ends it.
    let running = id(&start(&admin, &f, json!({})).await);
    walk(&server, running, &[Waiting, Starting, Running]).await;
    assert!(task(running).await["start"].is_string());
    let r = admin
        .post(&act(running, "stop"), json!({"force": false}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(task(running).await["status"], "stopping");
    assert_eq!(task(running).await["end"], Value::Null);
    let r = admin.post(&act(running, "stop"), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "stopping twice is fine");
    let r = admin
        .post(&act(running, "stop"), json!({"force": true}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(task(running).await["status"], "stopped");

    // Confirm and reject only from waiting_confirmation.
    let plan = id(&start(&admin, &f, json!({})).await);
    let r = admin.post(&act(plan, "confirm"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.error(),
        format!("task {plan} is waiting; only a task waiting for confirmation can be confirmed")
    );
    walk(
        &server,
        plan,
        &[Waiting, Starting, Running, WaitingConfirmation],
    )
    .await;
    let r = admin.post(&act(plan, "confirm"), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(task(plan).await["status"], "confirmed");
    let r = admin.post(&act(plan, "reject"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.error().contains("is confirmed"), "{}", r.text);

    let rejected = id(&start(&admin, &f, json!({})).await);
    walk(
        &server,
        rejected,
        &[Waiting, Starting, Running, WaitingConfirmation],
    )
    .await;
    let r = admin.post(&act(rejected, "reject"), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let t = task(rejected).await;
    assert_eq!(t["status"], "rejected");
    assert!(t["end"].is_string());
    let out = admin.get(&act(rejected, "raw_output")).await.text;
    assert!(out.ends_with("Task rejected by admin"), "{out}");

    // A task that has not finished is stopped, then deleted (Semaphore answers 204 too).
    let r = admin.delete(&f.path(&format!("/tasks/{plan}"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        admin.get(&f.path(&format!("/tasks/{plan}"))).await.status,
        StatusCode::NOT_FOUND
    );
    // Deleted tasks are deleted with their output.
    let r = admin.delete(&f.path(&format!("/tasks/{waiting}"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        admin
            .get(&f.path(&format!("/tasks/{waiting}")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.get(&act(waiting, "output")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        server
            .store()
            .task_output(TaskId(waiting), 0, None)
            .await
            .unwrap()
            .is_empty()
    );
    let r = admin.post(&act(999_999, "stop"), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn guests_read_runners_run(backend: Backend) {
    let (server, _busy) = TestServer::start_busy(backend).await;
    let admin = server.admin().await;
    let f = fixture(&admin, "p", json!({})).await;
    let (guest_id, guest) = server.user("gina", false).await;
    let (runner_id, runner) = server.user("rob", false).await;
    let (_, stranger) = server.user("sam", false).await;
    for (user, role) in [(guest_id, "guest"), (runner_id, "task_runner")] {
        let r = admin
            .post(&f.path("/users"), json!({"user_id": user, "role": role}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    let start = json!({"template_id": f.template()});

    let r = guest.post(&f.path("/tasks"), start.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = stranger.post(&f.path("/tasks"), start.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = runner.post(&f.path("/tasks"), start.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let task_id = id(&r.body);
    assert_eq!(r.body["user_id"], runner_id);
    assert_eq!(r.body["user_name"], "rob");

    assert_eq!(ids(&guest.get(&f.path("/tasks")).await.body), vec![task_id]);
    let stop = f.path(&format!("/tasks/{task_id}/stop"));
    assert_eq!(
        guest.post(&stop, json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        runner.post(&stop, json!({})).await.status,
        StatusCode::NO_CONTENT
    );
    let delete = f.path(&format!("/tasks/{task_id}"));
    assert_eq!(runner.delete(&delete).await.status, StatusCode::FORBIDDEN);
    assert_eq!(admin.delete(&delete).await.status, StatusCode::NO_CONTENT);
    server.stop().await;
}

/// ralf's filters of the task history: who started a task, and when it was created.
async fn lists_filter_by_user_and_creation_time(backend: Backend) {
    let (server, _busy) = TestServer::start_busy(backend).await;
    let admin = server.admin().await;
    let f = fixture(&admin, "p", json!({})).await;
    let (bob_id, bob) = server.user("bob", false).await;
    let r = admin
        .post(
            &f.path("/users"),
            json!({"user_id": bob_id, "role": "task_runner"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let by_admin = id(&start(&admin, &f, json!({})).await);
    let by_bob = id(&start(&bob, &f, json!({})).await);
    let admin_id = admin.get("/api/user").await.body["id"].as_i64().unwrap();

    let list = |query: String| {
        let admin = admin.clone();
        let path = f.path(&format!("/tasks?{query}"));
        async move {
            let r = admin.get(&path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
            ids(&r.body)
        }
    };
    assert_eq!(list(format!("user_id={bob_id}")).await, vec![by_bob]);
    assert_eq!(list(format!("user_id={admin_id}")).await, vec![by_admin]);
    let created = admin.get(&f.path(&format!("/tasks/{by_admin}"))).await.body["created"]
        .as_str()
        .unwrap()
        .to_string();
    let from = list(format!("created_from={created}")).await;
    assert_eq!(from, vec![by_bob, by_admin]);
    assert_eq!(
        list(format!("created_until={created}")).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        list("created_from=2000-01-01T00:00:00Z&created_until=2001-01-01T00:00:00Z".into()).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        list(format!(
            "created_until=2999-01-01T00:00:00Z&user_id={bob_id}"
        ))
        .await,
        vec![by_bob]
    );
    let r = admin.get(&f.path("/tasks?created_from=yesterday")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    server.stop().await;
}

on_both_backends!(
    lists_filter_by_user_and_creation_time,
    starting_a_task_queues_it,
    bad_start_requests_are_refused_with_a_message,
    lists_are_newest_first_and_page,
    output_reads_whole_in_slices_and_raw,
    stop_confirm_reject_and_delete,
    guests_read_runners_run,
);
