//! A server started on the database of one that died: what the dead one left active ends in
//! error, saying why, and the queue it left runs.

use ralf_core::api::tasks::TaskParams;
use ralf_core::{ProjectId, TaskId, TaskStatus, TemplateId};
use ralf_server::dispatch::INTERRUPTED_LINE;
use ralf_store::Store;
use ralf_store::tasks::NewTask;
use ralf_testkit::{Backend, GitRepo, TestServer, json, on_both_backends};

use crate::common::{Project, WAIT, has};

async fn tasks_left_active_by_a_dead_server_end_in_error(backend: Backend) {
    let repo = GitRepo::new(&[("ok.sh", "echo ran after the restart\n")]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let template = project
        .template("ok", "bash", "ok.sh", json!({"allow_parallel_tasks": true}))
        .await;
    let db = server.stop_keeping_database().await;

    // What a server that died would have left: tasks it claimed, ran, or planned (their
    // processes and plans died with it), and one it never got to.
    let store = Store::connect(&db.settings).await.unwrap();
    let params = TaskParams::default();
    let new = NewTask {
        project_id: ProjectId(project.id),
        template_id: TemplateId(template),
        user_id: None,
        playbook: "",
        environment: "{}",
        arguments: None,
        git_branch: None,
        commit_hash: None,
        message: "",
        inventory_id: None,
        build_task_id: None,
        version: None,
        params: &params,
        integration_id: None,
        schedule_id: None,
        secret: None,
    };
    use TaskStatus::*;
    let mut left = Vec::new();
    for path in [
        &[Starting][..],
        &[Starting, Running],
        &[Starting, Running, Stopping],
        &[Starting, Running, WaitingConfirmation],
    ] {
        let id = store.create_task(&new).await.unwrap().id;
        let mut from = Waiting;
        for &to in path {
            assert!(
                store
                    .set_task_status(TaskId(id), from, to, ralf_core::Timestamp::now())
                    .await
                    .unwrap()
            );
            from = to;
        }
        left.push((id, from));
    }
    let queued = store.create_task(&new).await.unwrap().id;
    store.close().await;

    let server = TestServer::start_on(db, |_| {}).await;
    let api = server.admin().await;
    for (id, was) in left {
        let task = api.wait_task(project.id, id, WAIT).await;
        assert_eq!(task["status"], "error", "task {id} was {was}: {task}");
        assert!(task["end"].is_string(), "{task}");
        let lines = api.output_lines(project.id, id).await;
        assert_eq!(lines.last().map(String::as_str), Some(INTERRUPTED_LINE));
        assert!(INTERRUPTED_LINE.contains("restarted"));
    }
    let done = api.wait_task(project.id, queued, WAIT).await;
    let lines = api.output_lines(project.id, queued).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(has(&lines, "ran after the restart"), "{lines:#?}");
    server.stop().await;
}

on_both_backends!(tasks_left_active_by_a_dead_server_end_in_error);
