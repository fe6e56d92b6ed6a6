//! Task lists follow every change that alters what they show (a status change, a template
//! rename, a user rename, a new task, a deleted one), on one server and across two servers on
//! one PostgreSQL database: every list route answers, task for task, what `…/tasks/{id}` says.

use std::time::Duration;

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{
    Api, Backend, ProjectFixture, TestProject, TestServer, json, on_both_backends, wait_until,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// A project with two bash templates: `run` (prints a line) and `hold` (sleeps).
async fn fixture(api: &Api) -> TestProject {
    ProjectFixture::new("lists")
        .files(&[("run.sh", "echo ran\n"), ("hold.sh", "sleep 300\n")])
        .template(json!({"name": "run", "playbook": "run.sh"}))
        .template(json!({"name": "hold", "playbook": "hold.sh"}))
        .create(api)
        .await
}

/// Every list route of the project, as `reader` answers it, checked task for task against
/// `…/tasks/{id}` (which reads one row, never a kept page); returns the project's list.
async fn lists_agree(reader: &Api, f: &TestProject) -> Vec<Value> {
    let mut paths = vec![
        "/tasks".to_string(),
        "/tasks?limit=1".to_string(),
        "/tasks/last".to_string(),
    ];
    for template in &f.templates {
        paths.push(format!("/templates/{template}/tasks"));
        paths.push(format!("/templates/{template}/tasks/last"));
    }
    let mut whole = Vec::new();
    for path in paths {
        let r = reader.get(&f.path(&path)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        let list = r.body.as_array().expect("a list").clone();
        for task in &list {
            let one = reader
                .get(&f.path(&format!("/tasks/{}", task["id"])))
                .await
                .body;
            assert_eq!(task, &one, "{path} agrees with the task's own answer");
        }
        if path == "/tasks" {
            whole = list;
        }
    }
    whole
}

fn find(list: &[Value], id: i64) -> Option<&Value> {
    list.iter().find(|t| t["id"] == id)
}

/// Reads through `reader`, changes through `writer` (another server, or the same one).
async fn lists_follow_changes(reader: &Api, writer: &Api) {
    let f = fixture(writer).await;
    let (run, hold) = (f.templates[0], f.templates[1]);
    assert!(lists_agree(reader, &f).await.is_empty());

    // A new task, then its status changes: running, then stopped.
    let held = writer
        .create(&f.path("/tasks"), json!({"template_id": hold}))
        .await["id"]
        .as_i64()
        .unwrap();
    // Running, and its commit recorded (written after `running`, once the checkout is done).
    let held_path = f.path(&format!("/tasks/{held}"));
    wait_until(WAIT, async || {
        let task = writer.get(&held_path).await.body;
        match (&task["status"], &task["commit_hash"]) {
            (status, Value::String(_)) if status == "running" => Ok(()),
            (status, commit) => Err(format!("task {held} is {status}, commit {commit}")),
        }
    })
    .await;
    let list = lists_agree(reader, &f).await;
    assert_eq!(find(&list, held).unwrap()["status"], "running");
    let r = writer
        .post(
            &f.path(&format!("/tasks/{held}/stop")),
            json!({"force": true}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    writer.wait_status(f.id, held, "stopped", WAIT).await;
    let list = lists_agree(reader, &f).await;
    assert_eq!(find(&list, held).unwrap()["status"], "stopped");

    let ran = writer
        .create(&f.path("/tasks"), json!({"template_id": run}))
        .await["id"]
        .as_i64()
        .unwrap();
    writer.wait_task(f.id, ran, WAIT).await;
    let list = lists_agree(reader, &f).await;
    assert_eq!(find(&list, ran).unwrap()["status"], "success");
    assert_eq!(find(&list, ran).unwrap()["tpl_alias"], "run");

    // The template's new name.
    let path = f.path(&format!("/templates/{run}"));
    let mut template = writer.get(&path).await.body;
    template["name"] = json!("renamed");
    let r = writer.put(&path, template).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let list = lists_agree(reader, &f).await;
    assert_eq!(find(&list, ran).unwrap()["tpl_alias"], "renamed");
    assert_eq!(find(&list, held).unwrap()["tpl_alias"], "hold");

    // The user's new name.
    let mut me = writer.get("/api/user").await.body;
    let old_name = me["name"].clone();
    me["name"] = json!("Renamed Admin");
    let r = writer
        .put(&format!("/api/users/{}", me["id"]), me.clone())
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let list = lists_agree(reader, &f).await;
    assert_eq!(find(&list, ran).unwrap()["user_name"], "Renamed Admin");
    me["name"] = old_name;
    let r = writer.put(&format!("/api/users/{}", me["id"]), me).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    // A deleted task.
    let r = writer.delete(&f.path(&format!("/tasks/{ran}"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let list = lists_agree(reader, &f).await;
    assert!(find(&list, ran).is_none());
    assert_eq!(list.len(), 1);
}

async fn lists_follow_every_change(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    lists_follow_changes(&admin, &admin).await;
    server.stop().await;
}

on_both_backends!(lists_follow_every_change);

/// A page one server keeps is not served after another server's change: the version it was
/// kept at is checked against the database's on every request.
/// Servers share a database on PostgreSQL only (a second server on an SQLite file is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_follow_changes_made_through_another_server() {
    let first = TestServer::start(Backend::Postgres).await;
    let second = TestServer::start_on(first.db.shared(), |_| {}).await;
    let reader = first.admin().await;
    let writer = second.admin().await;
    lists_follow_changes(&reader, &writer).await;
    second.stop().await;
    first.stop().await;
}
