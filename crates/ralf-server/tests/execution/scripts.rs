//! Bash and Python templates: output, exit codes, variables, secrets.

use std::time::Duration;

use ralf_testkit::{Backend, GitRepo, TestServer, json, on_both_backends};

use crate::common::Project;

const WAIT: Duration = Duration::from_secs(60);

async fn a_bash_task_runs_from_git_and_succeeds(backend: Backend) {
    let repo = GitRepo::new(&[(
        "hello.sh",
        "echo \"hello from $GREETING_TARGET\"\necho to-stderr >&2\n",
    )]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let env = project
        .api
        .create(
            &format!("/api/project/{}/environment", project.id),
            json!({"name": "vars", "json": "{}", "env": "{\"GREETING_TARGET\": \"ralf\"}"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let template = project
        .template("hello", "bash", "hello.sh", json!({"environment_id": env}))
        .await;
    let task = project.start(json!({"template_id": template})).await;
    let done = project.api.wait_task(project.id, task, WAIT).await;
    let lines = project.api.output_lines(project.id, task).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(lines.iter().any(|l| l == "hello from ralf"), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "to-stderr"), "{lines:#?}");
    assert_eq!(
        done["commit_hash"].as_str().unwrap().len(),
        40,
        "the commit is recorded"
    );
    assert_eq!(done["commit_message"], "initial commit");
    assert!(done["start"].is_string() && done["end"].is_string());
    server.stop().await;
}

async fn a_failing_script_ends_in_error(backend: Backend) {
    let repo = GitRepo::new(&[("fail.sh", "echo about to fail\nexit 3\n")]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let template = project.template("fail", "bash", "fail.sh", json!({})).await;
    let task = project.start(json!({"template_id": template})).await;
    let done = project.api.wait_task(project.id, task, WAIT).await;
    let lines = project.api.output_lines(project.id, task).await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("exited with code 3")),
        "{lines:#?}"
    );
    server.stop().await;
}

on_both_backends!(
    a_bash_task_runs_from_git_and_succeeds,
    a_failing_script_ends_in_error
);
