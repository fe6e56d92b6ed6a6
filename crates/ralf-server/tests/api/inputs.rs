//! What a task runs stays in the project's repository: paths that would leave the checkout
//! (playbooks of templates and tasks, working directories, file inventories) and repository
//! URLs into ralf's own directories are refused with 400, naming the field. Semaphore's habit
//! of one generic template whose tasks each name a playbook inside the checkout keeps working.

use ralf_testkit::{
    Api, Backend, ProjectFixture, TestProject, TestServer, json, merge_fields, on_both_backends,
};
use reqwest::StatusCode;
use serde_json::Value;

/// A project with a repository, a static inventory and a bash template `generic` (playbook
/// `run.sh` in the working directory `scripts`).
async fn project(admin: &Api) -> TestProject {
    ProjectFixture::new("p")
        .template(json!({"name": "generic", "working_directory": "scripts"}))
        .create(admin)
        .await
}

fn assert_refused(r: &ralf_testkit::Reply, message: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.error(), message, "{}", r.text);
}

const ABSOLUTE: &str = "playbook must be relative to the repository, not an absolute path";
const OUTSIDE: &str = "playbook must stay inside the repository";

async fn paths_that_leave_the_checkout_are_refused(backend: Backend) {
    let (server, _busy) = TestServer::start_busy(backend).await;
    let admin = server.admin().await;
    let p = project(&admin).await;
    let (runner_id, runner) = server.user("rob", false).await;
    let r = admin
        .post(
            &p.path("/users"),
            json!({"user_id": runner_id, "role": "task_runner"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    // A task_runner's playbook override: no file of the server, nothing above the checkout
    // (the template's working directory counts: `scripts/../../x` leaves it).
    for (playbook, message) in [
        ("/etc/passwd", ABSOLUTE),
        ("../../x", OUTSIDE),
        ("../../../../initial-admin-password", OUTSIDE),
        ("tools/../../../x", OUTSIDE),
    ] {
        let r = runner
            .post(
                &p.path("/tasks"),
                json!({"template_id": p.template(), "playbook": playbook}),
            )
            .await;
        assert_refused(&r, message);
    }
    // One generic template, a playbook chosen per task inside the checkout.
    for playbook in ["other.sh", "tools/deploy.sh", "../top-level.sh", ""] {
        let r = runner
            .post(
                &p.path("/tasks"),
                json!({"template_id": p.template(), "playbook": playbook}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{playbook}: {}", r.text);
        assert_eq!(r.body["playbook"], playbook);
    }

    // Templates, created and updated.
    let template = |changes: Value| {
        let mut body = json!({"name": "t", "app": "bash", "playbook": "run.sh",
                              "repository_id": p.repository, "inventory_id": p.inventory});
        merge_fields(&mut body, changes);
        body
    };
    for (changes, message) in [
        (json!({"playbook": "/etc/passwd"}), ABSOLUTE),
        (json!({"playbook": "../../x"}), OUTSIDE),
        (
            json!({"working_directory": "deploy", "playbook": "../../x"}),
            OUTSIDE,
        ),
        (
            json!({"working_directory": "/etc"}),
            "working_directory must be relative to the repository, not an absolute path",
        ),
    ] {
        let r = admin
            .post(&p.path("/templates"), template(changes.clone()))
            .await;
        assert_refused(&r, message);
        let mut update = template(changes);
        update["id"] = json!(p.template());
        let r = admin
            .put(&p.path(&format!("/templates/{}", p.template())), update)
            .await;
        assert_refused(&r, message);
    }
    let r = admin
        .post(
            &p.path("/templates"),
            template(json!({"working_directory": "deploy", "playbook": "../site.sh"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // File inventories are paths in the checkout too.
    for (path, message) in [
        (
            "/etc/ansible/hosts",
            "inventory must be relative to the repository, not an absolute path",
        ),
        ("../../hosts", "inventory must stay inside the repository"),
    ] {
        let body = json!({"name": "f", "type": "file", "inventory": path});
        let r = admin.post(&p.path("/inventory"), body.clone()).await;
        assert_refused(&r, message);
        let mut update = body;
        update["id"] = json!(p.inventory);
        let r = admin
            .put(&p.path(&format!("/inventory/{}", p.inventory)), update)
            .await;
        assert_refused(&r, message);
    }
    server.stop().await;
}

async fn repositories_cannot_point_into_ralfs_directories(backend: Backend) {
    let top = tempfile::tempdir().unwrap();
    let top = top.path().canonicalize().unwrap();
    let data = top.join("data");
    let work = data.join("work");
    let cache = work.join("repos/repository-1.git");
    std::fs::create_dir_all(&cache).unwrap();
    let elsewhere = top.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&work, elsewhere.join("link")).unwrap();
    let server = TestServer::start_with(backend, |s| {
        s.sandbox.hide = vec![data.clone()];
        s.work_dir = work.clone();
    })
    .await;
    let admin = server.admin().await;
    let p = project(&admin).await;
    let repositories = p.path("/repositories");
    let body = |url: String| json!({"name": "r", "git_url": url, "git_branch": "main"});
    for url in [
        cache.display().to_string(),
        format!("file://{}", cache.display()),
        format!("{}/initial-admin-password", data.display()),
        format!("file://{}/../data/work/repos", elsewhere.display()),
        format!("{}/link/repos/repository-1.git", elsewhere.display()),
    ] {
        let r = admin.post(&repositories, body(url.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}: {}", r.text);
        assert!(
            r.error().starts_with("git_url points into ralf's own data"),
            "{}",
            r.text
        );
        let mut update = body(url);
        update["id"] = json!(p.repository);
        let r = admin
            .put(&format!("{repositories}/{}", p.repository), update)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    // Other local repositories and remote URLs stay fine.
    for url in [
        elsewhere.display().to_string(),
        format!("file://{}", elsewhere.display()),
        "git@example.test:team/site.git".to_string(),
        "https://example.test/data/work".to_string(),
    ] {
        let r = admin.post(&repositories, body(url.clone())).await;
        assert_eq!(r.status, StatusCode::CREATED, "{url}: {}", r.text);
    }
    server.stop().await;
}

on_both_backends!(
    paths_that_leave_the_checkout_are_refused,
    repositories_cannot_point_into_ralfs_directories,
);
