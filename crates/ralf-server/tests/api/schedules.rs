//! Schedules: create, read, change, switch off, delete, what a schedule may say, who may do
//! what; a `run_at` schedule makes exactly one task, which runs; a schedule switched off makes
//! none; two servers on one database make one task per firing between them.

use std::collections::HashMap;
use std::time::Duration;

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{
    Api, Backend, ProjectFixture, TestProject, TestServer, json, on_both_backends, wait_until,
};
use serde_json::Value;

/// A project with a real repository whose `run.sh` prints a line, and a bash template.
async fn fixture(api: &Api, name: &str) -> TestProject {
    ProjectFixture::new(name)
        .files(&[("run.sh", "echo \"scheduled run\"\n")])
        .template(json!({}))
        .create(api)
        .await
}

/// The tasks of project `f` that schedule `schedule` made.
async fn tasks_of(api: &Api, f: &TestProject, schedule: i64) -> Vec<Value> {
    let tasks = api.get(&f.path("/tasks")).await.body;
    tasks
        .as_array()
        .expect("task list")
        .iter()
        .filter(|t| t["schedule_id"] == schedule)
        .cloned()
        .collect()
}

/// `run_at` `seconds` from now, on a whole second.
fn in_seconds(seconds: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::seconds(seconds);
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn assert_status(r: &ralf_testkit::Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text);
}

async fn schedules_are_created_changed_and_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let f = fixture(&admin, "p").await;
    let other = fixture(&admin, "other").await;

    let r = admin
        .post(
            &f.path("/schedules"),
            json!({"name": "nightly", "template_id": f.template(), "cron_format": "0 3 * * *",
                   "task_params": {"message": "from the schedule", "params": {"debug": true}}}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
    let s = r.body;
    let id = s["id"].as_i64().unwrap();
    assert_eq!(s["project_id"], f.id);
    assert_eq!(s["template_id"], f.template());
    assert_eq!(s["name"], "nightly");
    assert_eq!(s["active"], true);
    assert_eq!(s["type"], "");
    assert_eq!(s["run_at"], Value::Null);
    assert_eq!(s["tpl_name"], "run");
    assert_eq!(s["task_params"]["message"], "from the schedule");
    assert_eq!(s["task_params"]["params"]["debug"], true);
    let next = s["next_run"].as_str().expect("next_run");
    assert!(next.ends_with("T03:00:00Z"), "{next}");

    let list = admin.get(&f.path("/schedules")).await.body;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id);
    let of_template = admin
        .get(&f.path(&format!("/templates/{}/schedules", f.template())))
        .await
        .body;
    assert_eq!(of_template, list);
    assert_eq!(
        admin.get(&f.path(&format!("/schedules/{id}"))).await.body,
        s
    );

    // Changes.
    let r = admin
        .put(
            &f.path(&format!("/schedules/{id}")),
            json!({"id": id, "name": "hourly", "template_id": f.template(),
                   "cron_format": "15 * * * *"}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let s = admin.get(&f.path(&format!("/schedules/{id}"))).await.body;
    assert_eq!(s["name"], "hourly");
    assert_eq!(s["cron_format"], "15 * * * *");
    assert_eq!(s["task_params"], Value::Null);
    assert!(s["next_run"].as_str().unwrap().ends_with(":15:00Z"));

    let r = admin
        .put(
            &f.path(&format!("/schedules/{id}/active")),
            json!({"active": false}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let s = admin.get(&f.path(&format!("/schedules/{id}"))).await.body;
    assert_eq!(s["active"], false);
    assert_eq!(s["next_run"], Value::Null);
    let r = admin
        .put(
            &f.path(&format!("/schedules/{id}/active")),
            json!({"active": true}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let s = admin.get(&f.path(&format!("/schedules/{id}"))).await.body;
    assert_eq!(s["active"], true);
    assert!(s["next_run"].is_string());

    // Validation.
    for (cron, ok) in [
        ("* * * * *", true),
        ("*/10 2-4 1 * MON-FRI", true),
        ("@daily", true),
        ("* * * *", false),
        ("0 * * * * *", false),
        ("99 * * * *", false),
        ("", false),
    ] {
        let r = admin
            .post(&f.path("/schedules/validate"), json!({"cron_format": cron}))
            .await;
        let expected = if ok {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(r.status, expected, "{cron:?}: {}", r.text);
        if !ok {
            assert!(!r.error().is_empty());
        }
    }
    let bad = [
        (json!({"cron_format": "* * * * *"}), "template_id"),
        (
            json!({"template_id": other.template(), "cron_format": "* * * * *"}),
            "no such template",
        ),
        (
            json!({"template_id": f.template(), "cron_format": "0 0 * * * *"}),
            "5 fields",
        ),
        (
            json!({"template_id": f.template(), "cron_format": "not a cron"}),
            "cron_format",
        ),
        (
            json!({"template_id": f.template(), "type": "run_at"}),
            "run_at is required",
        ),
        (
            json!({"template_id": f.template(), "type": "sometimes", "cron_format": "* * * * *"}),
            "type",
        ),
        (
            json!({"template_id": f.template(), "cron_format": "* * * * *",
                   "task_params": {"secret": "{\"token\": \"t\"}"}}),
            "secret",
        ),
        (
            json!({"template_id": f.template(), "cron_format": "* * * * *",
                   "task_params": {"arguments": "[\"-v\"]"}}),
            "allow_override_args_in_task",
        ),
        (
            json!({"template_id": f.template(), "cron_format": "* * * * *",
                   "task_params": {"environment": "[1]"}}),
            "environment",
        ),
        (
            json!({"template_id": f.template(), "cron_format": "* * * * *",
                   "project_id": other.id}),
            "project_id",
        ),
    ];
    for (body, message) in bad {
        let r = admin.post(&f.path("/schedules"), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert!(
            r.error().contains(message),
            "{body}: {:?} should mention {message:?}",
            r.error()
        );
    }
    let r = admin
        .put(
            &f.path(&format!("/schedules/{id}")),
            json!({"id": id + 1, "template_id": f.template(), "cron_format": "* * * * *"}),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST);

    // Another project's schedule is not found through this one.
    let theirs = admin
        .create(
            &other.path("/schedules"),
            json!({"template_id": other.template(), "cron_format": "0 4 * * *"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    for r in [
        admin.get(&f.path(&format!("/schedules/{theirs}"))).await,
        admin.delete(&f.path(&format!("/schedules/{theirs}"))).await,
        admin
            .put(
                &f.path(&format!("/schedules/{theirs}/active")),
                json!({"active": false}),
            )
            .await,
    ] {
        assert_status(&r, StatusCode::NOT_FOUND);
    }

    // Members read, managers write.
    let (guest_id, guest) = server.user("guest", false).await;
    let r = admin
        .post(
            &f.path("/users"),
            json!({"user_id": guest_id, "role": "guest"}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_status(&guest.get(&f.path("/schedules")).await, StatusCode::OK);
    assert_status(
        &guest.get(&f.path(&format!("/schedules/{id}"))).await,
        StatusCode::OK,
    );
    let r = guest
        .post(
            &f.path("/schedules"),
            json!({"template_id": f.template(), "cron_format": "* * * * *"}),
        )
        .await;
    assert_status(&r, StatusCode::FORBIDDEN);
    assert_status(
        &guest.delete(&f.path(&format!("/schedules/{id}"))).await,
        StatusCode::FORBIDDEN,
    );

    // Events, then delete.
    assert_status(
        &admin.delete(&f.path(&format!("/schedules/{id}"))).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin.get(&f.path(&format!("/schedules/{id}"))).await,
        StatusCode::NOT_FOUND,
    );
    let events = admin.get(&f.path("/events")).await.body;
    let described: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object_type"] == "schedule")
        .map(|e| e["description"].as_str().unwrap())
        .collect();
    for what in [
        "Schedule nightly created",
        "Schedule hourly updated",
        "Schedule hourly deactivated",
        "Schedule hourly deleted",
    ] {
        assert!(described.contains(&what), "{what:?} in {described:?}");
    }

    // Deleting a template deletes its schedules.
    let theirs_template = other.template();
    assert_status(
        &admin
            .delete(&other.path(&format!("/templates/{theirs_template}")))
            .await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(admin.get(&other.path("/schedules")).await.body, json!([]));
    server.stop().await;
}

async fn a_run_at_schedule_makes_one_task_which_runs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let f = fixture(&admin, "p").await;
    let schedule = admin
        .create(
            &f.path("/schedules"),
            json!({"name": "once", "template_id": f.template(), "type": "run_at",
                   "run_at": in_seconds(2),
                   "task_params": {"message": "scheduled", "environment": "{\"x\": \"1\"}"}}),
        )
        .await;
    let id = schedule["id"].as_i64().unwrap();
    // Switched off before its time: never fires.
    let off = admin
        .create(
            &f.path("/schedules"),
            json!({"name": "off", "template_id": f.template(), "type": "run_at",
                   "run_at": in_seconds(2)}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    assert_status(
        &admin
            .put(
                &f.path(&format!("/schedules/{off}/active")),
                json!({"active": false}),
            )
            .await,
        StatusCode::NO_CONTENT,
    );
    // Created switched off: never fires either.
    let never = admin
        .create(
            &f.path("/schedules"),
            json!({"name": "never", "template_id": f.template(), "type": "run_at",
                   "run_at": in_seconds(1), "active": false}),
        )
        .await["id"]
        .as_i64()
        .unwrap();

    let task = wait_until(Duration::from_secs(20), async || {
        let tasks = tasks_of(&admin, &f, id).await;
        tasks.first().cloned().ok_or("the schedule made no task")
    })
    .await;
    assert_eq!(task["user_id"], Value::Null);
    assert_eq!(task["template_id"], f.template());
    assert_eq!(task["message"], "scheduled");
    assert_eq!(task["environment"], "{\"x\": \"1\"}");
    let task_id = task["id"].as_i64().unwrap();
    let done = admin
        .wait_task(f.id, task_id, Duration::from_secs(60))
        .await;
    assert_eq!(done["status"], "success", "{done}");
    let lines = admin.output_lines(f.id, task_id).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("added to queue by schedule once")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "scheduled run"), "{lines:?}");

    let s = admin.get(&f.path(&format!("/schedules/{id}"))).await.body;
    assert_eq!(
        s["active"], false,
        "a run_at schedule is done once it fired"
    );
    assert_eq!(s["next_run"], Value::Null);
    assert!(s["last_fired"].is_string());

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tasks_of(&admin, &f, id).await.len(), 1, "exactly one task");
    assert!(tasks_of(&admin, &f, off).await.is_empty());
    assert!(tasks_of(&admin, &f, never).await.is_empty());
    server.stop().await;
}

/// Two servers on one database, schedules created through both (so both schedulers wake for
/// the same moment): every schedule makes exactly one task, and the tasks run.
/// Servers share a database on PostgreSQL only (a second server on an SQLite file is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_fire_each_schedule_once() {
    let first = TestServer::start(Backend::Postgres).await;
    let second = TestServer::start_on(first.db.shared(), |_| {}).await;
    let a = first.admin().await;
    let b = second.admin().await;
    let f = fixture(&a, "cluster").await;
    let at = in_seconds(3);
    let mut ids = Vec::new();
    for i in 0..6 {
        let api = if i % 2 == 0 { &a } else { &b };
        let s = api
            .create(
                &f.path("/schedules"),
                json!({"name": format!("s{i}"), "template_id": f.template(), "type": "run_at",
                       "run_at": at}),
            )
            .await;
        ids.push(s["id"].as_i64().unwrap());
    }

    let made = wait_until(Duration::from_secs(30), async || {
        let tasks = a.get(&f.path("/tasks")).await.body;
        let mut made: HashMap<i64, Vec<i64>> = HashMap::new();
        for t in tasks.as_array().unwrap() {
            if let Some(s) = t["schedule_id"].as_i64() {
                made.entry(s).or_default().push(t["id"].as_i64().unwrap());
            }
        }
        if made.len() == ids.len() {
            Ok(made)
        } else {
            Err(format!(
                "only {} of {} schedules fired: {made:?}",
                made.len(),
                ids.len()
            ))
        }
    })
    .await;
    // Both servers have looked again since (each wakes within a second of the firing).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tasks = a.get(&f.path("/tasks")).await.body;
    for id in &ids {
        let of: Vec<i64> = tasks
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["schedule_id"] == *id)
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        assert_eq!(
            of.len(),
            1,
            "schedule {id} made {of:?} (first look: {made:?})"
        );
        let done = a.wait_task(f.id, of[0], Duration::from_secs(60)).await;
        assert_eq!(done["status"], "success", "{done}");
    }
    for id in &ids {
        let s = b.get(&f.path(&format!("/schedules/{id}"))).await.body;
        assert_eq!(s["active"], false);
    }
    second.stop().await;
    first.stop().await;
}

async fn backups_keep_schedules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let f = fixture(&admin, "source").await;
    admin
        .create(
            &f.path("/schedules"),
            json!({"name": "nightly", "template_id": f.template(), "cron_format": "0 3 * * *",
                   "task_params": {"message": "nightly run", "params": {"tags": ["a"]}}}),
        )
        .await;
    admin
        .create(
            &f.path("/schedules"),
            json!({"name": "later", "template_id": f.template(), "type": "run_at",
                   "run_at": "2099-01-01T00:00:00Z", "active": false}),
        )
        .await;
    let backup = admin.get(&f.path("/backup")).await.body;
    let schedules = backup["schedules"].as_array().expect("schedules");
    assert_eq!(schedules.len(), 2, "{backup}");
    assert_eq!(schedules[0]["template"], "run");
    assert_eq!(schedules[0]["cron_format"], "0 3 * * *");
    assert_eq!(schedules[0]["name"], "nightly");
    assert_eq!(schedules[1]["type"], "run_at");
    assert_eq!(schedules[1]["active"], false);

    let mut copy = backup.clone();
    copy["meta"]["name"] = json!("copy");
    let r = admin.post("/api/projects/restore", copy).await;
    assert_status(&r, StatusCode::OK);
    let project = r.body["id"].as_i64().unwrap();
    let base = format!("/api/project/{project}");
    let template = admin.get(&format!("{base}/templates")).await.body[0]["id"].clone();
    let restored = admin.get(&format!("{base}/schedules")).await.body;
    assert_eq!(restored.as_array().unwrap().len(), 2, "{restored}");
    assert_eq!(restored[0]["template_id"], template);
    assert_eq!(restored[0]["name"], "nightly");
    assert_eq!(restored[0]["cron_format"], "0 3 * * *");
    assert_eq!(restored[0]["active"], true);
    assert!(restored[0]["next_run"].is_string());
    assert_eq!(restored[0]["task_params"]["message"], "nightly run");
    assert_eq!(restored[0]["task_params"]["params"]["tags"], json!(["a"]));
    assert_eq!(restored[1]["type"], "run_at");
    assert_eq!(restored[1]["run_at"], "2099-01-01T00:00:00Z");
    assert_eq!(restored[1]["active"], false);
    assert_eq!(restored[1]["next_run"], Value::Null);

    // A schedule of a template the backup does not have refuses the whole restore.
    let mut broken = backup.clone();
    broken["meta"]["name"] = json!("broken");
    broken["schedules"][0]["template"] = json!("missing");
    let r = admin.post("/api/projects/restore", broken).await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("schedules[0]"), "{}", r.error());
    let mut broken = backup;
    broken["meta"]["name"] = json!("broken");
    broken["schedules"][0]["cron_format"] = json!("* * *");
    let r = admin.post("/api/projects/restore", broken).await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    let names: Vec<Value> = admin
        .get("/api/projects")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert!(!names.contains(&json!("broken")), "{names:?}");
    server.stop().await;
}

on_both_backends!(
    schedules_are_created_changed_and_deleted,
    a_run_at_schedule_makes_one_task_which_runs,
    backups_keep_schedules
);
