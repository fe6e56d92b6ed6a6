//! The store's tasks on both backends: paging a few hundred rows (no page overlaps or skips),
//! compare-and-set status changes and the statuses of a set of tasks, batched output, deleting.

mod common;

use ralf_core::api::tasks::TaskParams;
use ralf_core::{ProjectId, TaskId, TaskStatus, TemplateId, Timestamp};
use ralf_store::tasks::{NewTask, TaskQuery};
use ralf_store::{Store, StoreError};
use ralf_testdb::{Backend, TestDatabase, on_both_backends};

const TASKS: i64 = 300;

/// A store with a project, two templates and a user.
struct Fixture {
    store: Store,
    project: ProjectId,
    templates: [TemplateId; 2],
    user: i64,
    _db: TestDatabase,
}

async fn fixture(backend: Backend) -> Fixture {
    let db = TestDatabase::new(backend).await;
    let store = Store::connect(&db.settings).await.expect("store");
    let user = common::user(&store, "runner").await;
    let project = ProjectId(common::project(&store, user, "p").await);
    let mut templates = [TemplateId(0); 2];
    for (i, name) in ["build", "deploy"].into_iter().enumerate() {
        let sql = format!(
            "INSERT INTO templates (project_id, name, app, playbook) VALUES ({project}, '{name}', 'bash', 'run.sh') RETURNING id"
        );
        templates[i] = TemplateId(common::raw_scalar(&db.settings, &sql).await);
    }
    Fixture {
        store,
        project,
        templates,
        user,
        _db: db,
    }
}

/// Inserts `TASKS` tasks in one multi-row INSERT: templates alternate, every third succeeded,
/// the rest are waiting.
async fn many_tasks(f: &Fixture) {
    let rows: Vec<String> = (0..TASKS)
        .map(|i| {
            let status = if i % 3 == 0 { "success" } else { "waiting" };
            format!(
                "({}, {}, '{status}', {}, '2026-01-01T00:00:00Z')",
                f.project,
                f.templates[(i % 2) as usize],
                f.user
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO tasks (project_id, template_id, status, user_id, created) VALUES {}
         RETURNING id",
        rows.join(", ")
    );
    common::raw_scalar(&f._db.settings, &sql).await;
}

fn new_task<'a>(f: &Fixture, params: &'a TaskParams) -> NewTask<'a> {
    NewTask {
        project_id: f.project,
        template_id: f.templates[0],
        user_id: Some(f.user),
        playbook: "",
        environment: "{}",
        arguments: None,
        git_branch: None,
        commit_hash: None,
        message: "",
        inventory_id: None,
        build_task_id: None,
        version: None,
        params,
        integration_id: None,
        schedule_id: None,
        secret: None,
    }
}

async fn pages_neither_overlap_nor_skip(backend: Backend) {
    let f = fixture(backend).await;
    many_tasks(&f).await;

    // Keyset paging, newest first.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = f
            .store
            .tasks(
                f.project,
                &TaskQuery {
                    before_id: before,
                    limit: 70,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 70);
        before = page.last().map(|t| t.id);
        seen.extend(page.iter().map(|t| t.id));
    }
    assert_eq!(seen.len() as i64, TASKS);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "strictly newest first"
    );

    // Offset paging gives the same sequence.
    let mut by_offset = Vec::new();
    for offset in (0..TASKS).step_by(70) {
        let page = f
            .store
            .tasks(
                f.project,
                &TaskQuery {
                    offset,
                    limit: 70,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        by_offset.extend(page.iter().map(|t| t.id));
    }
    assert_eq!(by_offset, seen);

    // Filters combine, and the joined fields are there.
    let done = f
        .store
        .tasks(
            f.project,
            &TaskQuery {
                template_id: Some(f.templates[0]),
                statuses: &[TaskStatus::Success],
                ascending: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(done.len(), 50, "i % 6 == 0 of 300");
    assert!(done.windows(2).all(|w| w[0].id < w[1].id));
    assert!(done.iter().all(|t| t.status == TaskStatus::Success
        && t.tpl_alias == "build"
        && t.tpl_app == "bash"
        && t.user_name.as_deref() == Some("Runner")));

    let by_status = f
        .store
        .tasks(
            f.project,
            &TaskQuery {
                sort: Some("status"),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_status.len() as i64, TASKS);
    assert_eq!(by_status[0].status, TaskStatus::Waiting, "descending");
    assert_eq!(by_status.last().unwrap().status, TaskStatus::Success);

    let e = f
        .store
        .tasks(
            f.project,
            &TaskQuery {
                sort: Some("output; DROP TABLE tasks"),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)));
    f.store.close().await;
}

async fn status_changes_are_compare_and_set(backend: Backend) {
    let f = fixture(backend).await;
    let params = TaskParams::default();
    let task = f.store.create_task(&new_task(&f, &params)).await.unwrap();
    assert_eq!(task.status, TaskStatus::Waiting);
    assert_eq!((task.start, task.end), (None, None));

    // Two concurrent starts: exactly one wins.
    let (a, b) = tokio::join!(
        f.store.set_task_status(
            TaskId(task.id),
            TaskStatus::Waiting,
            TaskStatus::Starting,
            Timestamp::now()
        ),
        f.store.set_task_status(
            TaskId(task.id),
            TaskStatus::Waiting,
            TaskStatus::Starting,
            Timestamp::now()
        ),
    );
    assert!(a.unwrap() ^ b.unwrap(), "one and only one change");

    let now = Timestamp::now();
    assert!(
        f.store
            .set_task_status(
                TaskId(task.id),
                TaskStatus::Starting,
                TaskStatus::Running,
                now
            )
            .await
            .unwrap()
    );
    let running = f.store.task(f.project, TaskId(task.id)).await.unwrap();
    assert_eq!(running.status, TaskStatus::Running);
    assert!(running.start.is_some() && running.end.is_none());

    // The state machine is enforced before any SQL.
    let e = f
        .store
        .set_task_status(
            TaskId(task.id),
            TaskStatus::Running,
            TaskStatus::Waiting,
            now,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)));

    assert!(
        f.store
            .set_task_status(
                TaskId(task.id),
                TaskStatus::Running,
                TaskStatus::Success,
                now
            )
            .await
            .unwrap()
    );
    let done = f.store.task(f.project, TaskId(task.id)).await.unwrap();
    assert_eq!(done.status, TaskStatus::Success);
    assert_eq!(done.start, running.start, "start is kept");
    assert!(done.end.is_some());

    // The statuses of a set of tasks; a missing one is left out.
    let other = f.store.create_task(&new_task(&f, &params)).await.unwrap();
    let mut statuses = f
        .store
        .task_statuses(&[other.id, task.id, other.id + 1000])
        .await
        .unwrap();
    statuses.sort_by_key(|(id, _)| *id);
    assert_eq!(
        statuses,
        vec![
            (task.id, TaskStatus::Success),
            (other.id, TaskStatus::Waiting)
        ]
    );
    assert_eq!(
        f.store.task_status(TaskId(other.id)).await.unwrap(),
        Some(TaskStatus::Waiting)
    );
    f.store.close().await;
}

async fn output_is_appended_in_batches_and_read_in_slices(backend: Backend) {
    let f = fixture(backend).await;
    let params = TaskParams::default();
    let task = f.store.create_task(&new_task(&f, &params)).await.unwrap();
    let now = Timestamp::now();
    let lines: Vec<(Timestamp, String)> = (0..12_001).map(|i| (now, format!("line {i}"))).collect();
    f.store
        .append_task_output(TaskId(task.id), &lines)
        .await
        .unwrap();
    f.store
        .append_task_output(TaskId(task.id), &[(now, "last".into())])
        .await
        .unwrap();

    let all = f.store.task_output(TaskId(task.id), 0, None).await.unwrap();
    assert_eq!(all.len(), 12_002);
    assert_eq!(all[0].output, "line 0");
    assert_eq!(all[12_000].output, "line 12000");
    assert_eq!(all[12_001].output, "last");
    let slice = f
        .store
        .task_output(TaskId(task.id), 5_000, Some(2))
        .await
        .unwrap();
    let texts: Vec<&str> = slice.iter().map(|l| l.output.as_str()).collect();
    assert_eq!(texts, ["line 5000", "line 5001"]);

    // A range across two chunks, and the count.
    let across = f
        .store
        .task_output(TaskId(task.id), 11_999, Some(3))
        .await
        .unwrap();
    let texts: Vec<&str> = across.iter().map(|l| l.output.as_str()).collect();
    assert_eq!(texts, ["line 11999", "line 12000", "last"]);
    assert_eq!(
        f.store.task_output_count(TaskId(task.id)).await.unwrap(),
        12_002
    );
    assert!(
        f.store
            .task_output(TaskId(task.id), 12_002, None)
            .await
            .unwrap()
            .is_empty()
    );
    f.store.close().await;
}

async fn only_finished_tasks_are_deleted(backend: Backend) {
    let f = fixture(backend).await;
    let params = TaskParams::default();
    let task = f.store.create_task(&new_task(&f, &params)).await.unwrap();
    let now = Timestamp::now();
    f.store
        .append_task_output(TaskId(task.id), &[(now, "hello".into())])
        .await
        .unwrap();
    let e = f
        .store
        .delete_task(f.project, TaskId(task.id))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    assert!(matches!(
        f.store
            .delete_task(ProjectId(f.project.0 + 1), TaskId(task.id))
            .await,
        Err(StoreError::NotFound)
    ));

    // A task built from this one only loses the reference.
    let mut deploy = new_task(&f, &params);
    deploy.build_task_id = Some(task.id);
    let deploy = f.store.create_task(&deploy).await.unwrap();
    assert_eq!(deploy.build_task_id, Some(task.id));

    f.store
        .set_task_status(
            TaskId(task.id),
            TaskStatus::Waiting,
            TaskStatus::Stopped,
            now,
        )
        .await
        .unwrap();
    f.store
        .delete_task(f.project, TaskId(task.id))
        .await
        .unwrap();
    assert!(matches!(
        f.store.task(f.project, TaskId(task.id)).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        f.store
            .task_output(TaskId(task.id), 0, None)
            .await
            .unwrap()
            .is_empty()
    );
    let deploy = f.store.task(f.project, TaskId(deploy.id)).await.unwrap();
    assert_eq!(deploy.build_task_id, None);
    f.store.close().await;
}

async fn ids_from_elsewhere_are_refused(backend: Backend) {
    let f = fixture(backend).await;
    let params = TaskParams {
        limit: vec!["web".into()],
        ..Default::default()
    };
    let mut new = new_task(&f, &params);
    new.inventory_id = Some(12345);
    let e = f.store.create_task(&new).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "inventory_id: no such inventory in this project"
    );
    new.inventory_id = None;
    new.project_id = ProjectId(f.project.0 + 1);
    let e = f.store.create_task(&new).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "template_id: no such template in this project"
    );
    new.project_id = f.project;
    let task = f.store.create_task(&new).await.unwrap();
    assert_eq!(task.limit, "web");
    assert_eq!(task.params, params);
    f.store.close().await;
}

/// A notifiable status owes one notification, stored with it, when the project's alerts are
/// on; of several servers claiming it at once, one gets it, and nobody until its lease ends; a
/// retry leaves only what failed.
async fn an_end_owes_one_notification_claimed_once(backend: Backend) {
    let f = fixture(backend).await;
    let params = TaskParams::default();
    let quiet = TaskId(
        f.store
            .create_task(&new_task(&f, &params))
            .await
            .unwrap()
            .id,
    );
    let now = Timestamp::now();
    assert!(
        f.store
            .set_task_status(quiet, TaskStatus::Waiting, TaskStatus::Stopped, now)
            .await
            .unwrap()
    );
    assert_eq!(
        f.store.next_notification_due().await.unwrap(),
        None,
        "alerts off: nothing is owed"
    );
    common::raw_scalar(
        &f._db.settings,
        &format!(
            "UPDATE projects SET alert = TRUE WHERE id = {} RETURNING id",
            f.project
        ),
    )
    .await;
    let task = TaskId(
        f.store
            .create_task(&new_task(&f, &params))
            .await
            .unwrap()
            .id,
    );
    let now = Timestamp::now();
    for (from, to) in [
        (TaskStatus::Waiting, TaskStatus::Starting),
        (TaskStatus::Starting, TaskStatus::Running),
    ] {
        assert!(f.store.set_task_status(task, from, to, now).await.unwrap());
    }
    assert_eq!(
        f.store.next_notification_due().await.unwrap(),
        None,
        "nothing to tell yet"
    );
    assert!(
        f.store
            .set_task_status(task, TaskStatus::Running, TaskStatus::Error, now)
            .await
            .unwrap()
    );
    let due = now.0.timestamp_millis();
    assert_eq!(f.store.next_notification_due().await.unwrap(), Some(due));

    let claim = || f.store.claim_notification(due, 60_000);
    let (a, b, c) = tokio::join!(claim(), claim(), claim());
    let claimed: Vec<_> = [a, b, c].into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(claimed.len(), 1, "one claim wins: {claimed:?}");
    let owed = &claimed[0];
    assert_eq!(
        (owed.task_id, owed.status, owed.attempts),
        (task, TaskStatus::Error, 1)
    );
    assert_eq!(owed.channels, None, "every channel is owed");
    assert!(claim().await.unwrap().is_none(), "leased");
    assert!(
        f.store
            .claim_notification(due + 60_000, 60_000)
            .await
            .unwrap()
            .is_some(),
        "lease over"
    );

    f.store
        .retry_notification(owed.id, &["slack".into()], due)
        .await
        .unwrap();
    let again = claim().await.unwrap().expect("due again");
    assert_eq!(
        (again.attempts, again.channels),
        (3, Some(vec!["slack".to_string()]))
    );
    f.store.forget_notification(again.id).await.unwrap();
    assert_eq!(f.store.next_notification_due().await.unwrap(), None);

    let facts = f
        .store
        .notification_facts(task)
        .await
        .unwrap()
        .expect("facts");
    assert_eq!(
        (facts.project_name.as_str(), facts.template_name.as_str()),
        ("p", "build")
    );
    assert_eq!(facts.started_by, "Runner");
    assert!(facts.alert);
}

on_both_backends!(
    an_end_owes_one_notification_claimed_once,
    pages_neither_overlap_nor_skip,
    status_changes_are_compare_and_set,
    output_is_appended_in_batches_and_read_in_slices,
    only_finished_tasks_are_deleted,
    ids_from_elsewhere_are_refused,
);
