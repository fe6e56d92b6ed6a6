//! Several real processes on loopback: `ralf server`s sharing one PostgreSQL database and
//! `ralf runner`s taking work from them. Tasks run exactly once, whoever claims them; a server
//! or runner killed mid-task has its task ended in error with a line saying so; an SQLite
//! database refuses a second server.

use std::path::Path;
use std::time::{Duration, Instant};

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{
    ADMIN_LOGIN, ADMIN_PASSWORD, Api, Backend, GitRepo, ProjectFixture, RunnerProcess,
    ServerProcess, TEST_ENCRYPTION_KEY, TestDatabase, TestProject, json, wait_until,
};
use serde_json::Value;

use crate::RALF;

/// A `ralf server` on `db` with the test admin; `remote` sends every task to runners.
pub(crate) async fn server(db: &TestDatabase, data: &Path, remote: bool) -> ServerProcess {
    let env = [
        ("RALF_DB", db.url()),
        ("RALF_DATA_DIR", data.display().to_string()),
        (
            "RALF_ACCESS_KEY_ENCRYPTION",
            TEST_ENCRYPTION_KEY.to_string(),
        ),
        ("SEMAPHORE_ADMIN", ADMIN_LOGIN.to_string()),
        ("SEMAPHORE_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("SEMAPHORE_ADMIN_NAME", "Admin".to_string()),
        ("SEMAPHORE_ADMIN_EMAIL", "admin@example.test".to_string()),
        ("SEMAPHORE_USE_REMOTE_RUNNER", remote.to_string()),
        // Room for 200 tasks at once across the cluster.
        ("SEMAPHORE_MAX_PARALLEL_TASKS", "0".to_string()),
    ];
    ServerProcess::start(RALF, &env, &[]).await
}

/// An API client of `server` logged in as the admin (bearer token).
pub(crate) async fn admin(server: &ServerProcess) -> Api {
    server.login(ADMIN_LOGIN, ADMIN_PASSWORD).await
}

/// A project with a repository at `repo` and a bash template running `script`.
pub(crate) async fn project(
    api: &Api,
    repo: &GitRepo,
    script: &str,
    parallel: bool,
) -> TestProject {
    ProjectFixture::new("cluster")
        .git_url(&repo.url())
        .template(json!({"name": script, "playbook": script, "allow_parallel_tasks": parallel}))
        .create(api)
        .await
}

/// A global runner created through the API; its token.
async fn runner_token(api: &Api, name: &str) -> String {
    let r = api
        .post(
            "/api/runners",
            json!({"name": name, "max_parallel_tasks": 0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["token"].as_str().expect("token").to_string()
}

/// Waits (up to `limit`) until the task's output has the line `line`.
pub(crate) async fn wait_for_line(api: &Api, project: i64, task: i64, line: &str, limit: Duration) {
    wait_until(limit, async || {
        let lines = api.output_lines(project, task).await;
        if lines.iter().any(|l| l == line) {
            Ok(())
        } else {
            Err(format!("task {task} never printed {line:?}: {lines:#?}"))
        }
    })
    .await
}

pub(crate) async fn start_task(api: &Api, project: i64, template: i64) -> i64 {
    let r = api
        .post(
            &format!("/api/project/{project}/tasks"),
            json!({"template_id": template}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

/// Waits until the task's status is one of `want`, and returns the task.
pub(crate) async fn wait_status(
    api: &Api,
    project: i64,
    task: i64,
    want: &[&str],
    limit: Duration,
) -> Value {
    api.wait_task_until(project, task, limit, |status| want.contains(&status))
        .await
}

fn path() -> std::ffi::OsString {
    std::env::var_os("PATH").unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_and_two_runners_run_200_tasks_exactly_once() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let dirs = tempfile::tempdir().unwrap();
    // Each run says where it runs (its own directory is <work>/tasks/<id>/repo); a task sees
    // nothing outside it, so a second run of the same task shows in the task's output only.
    let script = "echo \"where $PWD\"\necho ran\n";
    let repo = GitRepo::new(&[("once.sh", script)]);
    let a = server(&db, &dirs.path().join("a"), false).await;
    let b = server(&db, &dirs.path().join("b"), false).await;
    let (api_a, api_b) = (admin(&a).await, admin(&b).await);
    let p = project(&api_a, &repo, "once.sh", true).await;
    let (project, template) = (p.id, p.template());
    let _r1 = RunnerProcess::start(RALF, &a.url, &runner_token(&api_a, "r1").await, 4, &path());
    let _r2 = RunnerProcess::start(RALF, &b.url, &runner_token(&api_b, "r2").await, 4, &path());

    let mut ids = Vec::new();
    for i in 0..200 {
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        ids.push(start_task(api, project, template).await);
    }
    let mut places = std::collections::BTreeMap::new();
    for &id in &ids {
        let task = wait_status(
            &api_b,
            project,
            id,
            &["success", "error"],
            Duration::from_secs(120),
        )
        .await;
        let lines = api_a.output_lines(project, id).await;
        assert_eq!(task["status"], "success", "task {id}: {lines:#?}");
        assert_eq!(
            lines.iter().filter(|l| *l == "ran").count(),
            1,
            "task {id}: {lines:#?}"
        );
        let place = lines
            .iter()
            .find_map(|l| l.strip_prefix("where "))
            .expect("the task said where it ran");
        assert!(place.ends_with(&format!("/tasks/{id}/repo")), "{place}");
        // <some work dir>/tasks/<id>/repo: the work dir says which executor ran it.
        let work = Path::new(place.trim())
            .ancestors()
            .nth(3)
            .unwrap()
            .to_path_buf();
        *places.entry(work).or_insert(0) += 1;
    }
    // Two servers' own executors and two runners: the work was shared out.
    assert!(places.len() >= 2, "tasks ran in {places:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_s_tasks_end_in_error_and_the_other_server_goes_on() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let dirs = tempfile::tempdir().unwrap();
    let repo = GitRepo::new(&[
        ("slow.sh", "echo begun\nsleep 30\necho done\n"),
        ("quick.sh", "echo quick\n"),
    ]);
    let mut a = server(&db, &dirs.path().join("a"), false).await;
    let api_a = admin(&a).await;
    let p = project(&api_a, &repo, "slow.sh", false).await;
    let (project, slow) = (p.id, p.template());
    let running = start_task(&api_a, project, slow).await;
    wait_status(
        &api_a,
        project,
        running,
        &["running"],
        Duration::from_secs(30),
    )
    .await;
    // Queued behind it (one task per template): must run once, on the server that is left.
    let queued = start_task(&api_a, project, slow).await;

    let b = server(&db, &dirs.path().join("b"), false).await;
    let api_b = admin(&b).await;
    a.kill();
    let killed_at = Instant::now();
    let task = wait_status(
        &api_b,
        project,
        running,
        &["error"],
        Duration::from_secs(30),
    )
    .await;
    let lines = api_b.output_lines(project, running).await;
    let last = lines.last().cloned().unwrap_or_default();
    assert!(
        last.contains("server that ran this task")
            && last.contains("stopped or restarted while the task was active"),
        "{lines:#?}"
    );
    assert!(task["end"].is_string(), "{task}");
    eprintln!(
        "the killed server's task ended after {:?}",
        killed_at.elapsed()
    );

    // The other server serves and runs: the queued task, and a new one.
    let quick_template = p
        .add_template(&api_b, json!({"name": "quick", "playbook": "quick.sh"}))
        .await;
    let quick = start_task(&api_b, project, quick_template).await;
    let done = wait_status(
        &api_b,
        project,
        quick,
        &["success", "error"],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(done["status"], "success");
    wait_status(
        &api_b,
        project,
        queued,
        &["running"],
        Duration::from_secs(30),
    )
    .await;
    let begun = api_b.output_lines(project, queued).await;
    assert_eq!(
        begun.iter().filter(|l| *l == "begun").count(),
        1,
        "{begun:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runner_s_task_ends_in_error_within_a_minute() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let dirs = tempfile::tempdir().unwrap();
    let repo = GitRepo::new(&[("slow.sh", "echo begun\nsleep 120\necho done\n")]);
    let server = server(&db, &dirs.path().join("s"), true).await;
    let api = admin(&server).await;
    let p = project(&api, &repo, "slow.sh", false).await;
    let (project, slow) = (p.id, p.template());
    let mut runner = RunnerProcess::start(
        RALF,
        &server.url,
        &runner_token(&api, "doomed").await,
        2,
        &path(),
    );
    let task = start_task(&api, project, slow).await;
    wait_status(&api, project, task, &["running"], Duration::from_secs(30)).await;
    // Its output came over the runner's channel.
    wait_for_line(&api, project, task, "begun", Duration::from_secs(20)).await;
    runner.kill();
    let killed_at = Instant::now();
    let ended = wait_status(&api, project, task, &["error"], Duration::from_secs(60)).await;
    let lines = api.output_lines(project, task).await;
    let last = lines.last().cloned().unwrap_or_default();
    assert!(
        last.contains("runner \"doomed\"") && last.contains("was lost"),
        "{lines:#?}"
    );
    assert!(ended["end"].is_string());
    eprintln!(
        "the lost runner's task ended after {:?}",
        killed_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_runs_tagged_tasks_and_streams_their_output() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let dirs = tempfile::tempdir().unwrap();
    // The script shows its secrets (masked in the output) and leaves them in a file of its
    // checkout, which must be gone with the task.
    let script = "for i in 1 2 3; do echo line $i; done\necho \"token=$API_TOKEN pass=$DEPLOY_PASS\"\necho \"$API_TOKEN $DEPLOY_PASS\" > left-behind.txt\n";
    let repo = GitRepo::new(&[("hello.sh", script)]);
    let server = server(&db, &dirs.path().join("s"), false).await;
    let api = admin(&server).await;
    let p = project(&api, &repo, "hello.sh", true).await;
    let project = p.id;
    let base = p.path("");
    let env = api
        .create(
            &format!("{base}/environment"),
            json!({"name": "vars", "json": "{}", "env": "{}",
                   "secrets": [{"name": "API_TOKEN", "secret": "tok-3141592653", "type": "env"}]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let template = p
        .add_template(
            &api,
            json!({"name": "hello", "playbook": "hello.sh",
                   "environment_id": env, "runner_tags": ["edge"],
                   "survey_vars": [{"name": "DEPLOY_PASS", "title": "Password", "type": "secret", "target": "env"}]}),
        )
        .await;
    // Nobody carries the tag yet: the server itself does not take the task.
    let r = api
        .post(
            &format!("{base}/tasks"),
            json!({"template_id": template, "secret": json!({"DEPLOY_PASS": "pw-2718281828"}).to_string()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let task = r.body["id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = api
        .get(&format!("/api/project/{project}/tasks/{task}"))
        .await
        .body;
    assert_eq!(waiting["status"], "waiting", "{waiting}");

    // A runner with the tag, registered through a one-time registration token.
    let r = api
        .post(
            "/api/runners",
            json!({"name": "edge-1", "tags": ["edge"], "registered": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let runner_id = r.body["id"].as_i64().unwrap();
    let r = api
        .post(
            &format!("/api/runners/{runner_id}/registration-token"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let registration = r.body["registration_token"].as_str().unwrap().to_string();
    let credentials = dirs.path().join("runner.json");
    let out = std::process::Command::new(RALF)
        .args([
            "runner",
            "register",
            "--url",
            &server.url,
            "--registration-token",
            &registration,
            "--credentials",
        ])
        .arg(&credentials)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&credentials)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let stored: Value = serde_json::from_slice(&std::fs::read(&credentials).unwrap()).unwrap();
    let runner = RunnerProcess::start(
        RALF,
        &server.url,
        stored["token"].as_str().unwrap(),
        2,
        &path(),
    );

    let done = wait_status(
        &api,
        project,
        task,
        &["success", "error"],
        Duration::from_secs(30),
    )
    .await;
    let lines = api.output_lines(project, task).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    for want in ["line 1", "line 2", "line 3"] {
        assert_eq!(lines.iter().filter(|l| *l == want).count(), 1, "{lines:#?}");
    }
    assert!(done["commit_hash"].is_string(), "{done}");
    assert!(
        lines.contains(&"token=********** pass=**********".to_string()),
        "{lines:#?}"
    );
    // Nothing of the task's secrets is left on the runner's disk.
    let mut files = vec![runner.work_dir().to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("tok-3141592653") && !text.contains("pw-2718281828"),
                "a secret is left in {}",
                path.display()
            );
        }
    }
    let me = api.get(&format!("/api/runners/{runner_id}")).await.body;
    assert!(me["touched"].is_string(), "{me}");
}

#[tokio::test]
async fn a_second_server_on_one_sqlite_file_is_refused() {
    let dirs = tempfile::tempdir().unwrap();
    let data = dirs.path().join("data");
    let _first =
        ServerProcess::start(RALF, &[("RALF_DATA_DIR", data.display().to_string())], &[]).await;
    let out = std::process::Command::new(RALF)
        .args(["server", "--data-dir"])
        .arg(&data)
        .args([
            "--listen",
            &format!("127.0.0.1:{}", ralf_testkit::free_port()),
        ])
        .env("RALF_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another ralf server is already running") && stderr.contains("PostgreSQL"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_runner_s_task_goes_back_to_the_queue_where_the_template_allows() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let dirs = tempfile::tempdir().unwrap();
    // The first run hangs (its runner is killed under it); the run after that finishes. A task
    // sees nothing outside its own directory, so the script tells the runs apart by where they
    // run: the first runner's work directory (committed once that runner exists).
    let repo = GitRepo::new(&[("again.sh", "echo begun\necho finished\n")]);
    let server = server(&db, &dirs.path().join("s"), true).await;
    let api = admin(&server).await;
    let p = project(&api, &repo, "again.sh", false).await;
    let project = p.id;
    let template = api
        .create(
            &p.path("/templates"),
            json!({"name": "again", "app": "bash", "playbook": "again.sh",
                   "repository_id": p.repository, "inventory_id": p.inventory,
                   "requeue_when_lost": true}),
        )
        .await;
    assert_eq!(template["requeue_when_lost"], true, "{template}");
    let template = template["id"].as_i64().unwrap();
    let mut first = RunnerProcess::start(
        RALF,
        &server.url,
        &runner_token(&api, "first").await,
        2,
        &path(),
    );
    let script = format!(
        "echo begun\ncase \"$PWD\" in {}/*) sleep 120;; esac\necho finished\n",
        first.work_dir().display()
    );
    repo.commit(&[("again.sh", &script)], "the first run hangs");
    let task = start_task(&api, project, template).await;
    wait_status(&api, project, task, &["running"], Duration::from_secs(30)).await;
    wait_for_line(&api, project, task, "begun", Duration::from_secs(20)).await;
    first.kill();
    let _second = RunnerProcess::start(
        RALF,
        &server.url,
        &runner_token(&api, "second").await,
        2,
        &path(),
    );
    let done = wait_status(
        &api,
        project,
        task,
        &["success", "error"],
        Duration::from_secs(90),
    )
    .await;
    let lines = api.output_lines(project, task).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    let requeued: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("back in the queue"))
        .collect();
    assert_eq!(requeued.len(), 1, "{lines:#?}");
    assert!(requeued[0].contains("runner \"first\""), "{lines:#?}");
    assert_eq!(
        lines.iter().filter(|l| *l == "begun").count(),
        2,
        "{lines:#?}"
    );
    assert_eq!(
        lines.iter().filter(|l| *l == "finished").count(),
        1,
        "{lines:#?}"
    );
}
