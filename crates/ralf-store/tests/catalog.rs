//! The catalog's rows on both backends: settings checked against the project, one unfinished
//! rollout per project, numbered events where a taken number or a step started twice is a
//! conflict that leaves nothing behind (not even the step's task), outcomes recorded once, and
//! everything gone with the project.

mod common;

use std::collections::BTreeMap;

use ralf_catalog::api::CatalogSettings;
use ralf_catalog::{
    Plan, RolloutEvent, RolloutOptions, RolloutState, Selection, ServiceState, StepId, StepKind,
    StepResult, StepStatus,
};
use ralf_core::Timestamp;
use ralf_core::api::tasks::TaskParams;
use ralf_core::{ProjectId, RolloutId, TaskId, TemplateId};
use ralf_store::catalog::{Advice, NewRollout, NewStepTask, NextRuns, ServiceRecord};
use ralf_store::repositories::RepositoryFields;
use ralf_store::tasks::{NewTask, TaskQuery};
use ralf_store::{Store, StoreError};
use ralf_testdb::{Backend, TestDatabase, on_both_backends};

struct Fixture {
    store: Store,
    project: ProjectId,
    repository: i64,
    template: i64,
    user: i64,
    _db: TestDatabase,
}

async fn fixture(backend: Backend) -> Fixture {
    let db = TestDatabase::new(backend).await;
    let store = Store::connect(&db.settings).await.expect("store");
    let user = common::user(&store, "ops").await;
    let project = common::project(&store, user, "p").await;
    let repository = repository(&store, project).await;
    let template = common::raw_scalar(
        &db.settings,
        &format!(
            "INSERT INTO templates (project_id, name, app, playbook, repository_id)
             VALUES ({project}, 'Deploy', 'bash', 'deploy.sh', {repository}) RETURNING id"
        ),
    )
    .await;
    Fixture {
        store,
        project: ProjectId(project),
        repository,
        template,
        user,
        _db: db,
    }
}

async fn repository(store: &Store, project: i64) -> i64 {
    store
        .create_repository(
            ProjectId(project),
            &RepositoryFields {
                name: "catalog",
                git_url: "file:///srv/catalog",
                git_branch: "main",
                ssh_key_id: None,
            },
        )
        .await
        .unwrap()
        .id
}

fn empty_plan() -> Plan {
    Plan {
        selection: Selection::All,
        services: Vec::new(),
        skipped: Vec::new(),
    }
}

async fn start(f: &Fixture, plan: &Plan) -> Result<RolloutId, StoreError> {
    f.store
        .create_rollout(&NewRollout {
            project_id: f.project,
            state: RolloutState::Running,
            selection: &Selection::All,
            plan,
            options: &RolloutOptions::default(),
            commit: "ee1a2e575f0962f253c00fa8fc783a34892d9df9",
            started_by: Some(f.user),
        })
        .await
        .map(|r| r.id)
}

fn started(step: &str) -> RolloutEvent {
    RolloutEvent::StepStarted {
        step_id: step.parse().unwrap(),
        task_id: None,
        at: Timestamp::now(),
    }
}

async fn task_count(f: &Fixture) -> usize {
    f.store
        .tasks(f.project, &TaskQuery::default())
        .await
        .unwrap()
        .len()
}

async fn settings_name_a_repository_of_the_project(backend: Backend) {
    let f = fixture(backend).await;
    assert_eq!(f.store.catalog_settings(f.project).await.unwrap(), None);
    let settings = CatalogSettings {
        repository_id: Some(f.repository),
        parallelism: 3,
        ..CatalogSettings::default()
    };
    f.store
        .save_catalog_settings(f.project, &settings, NextRuns::default())
        .await
        .unwrap();
    assert_eq!(
        f.store.catalog_settings(f.project).await.unwrap(),
        Some(settings.clone())
    );
    let other = common::project(&f.store, f.user, "other").await;
    let foreign = repository(&f.store, other).await;
    let refused = f
        .store
        .save_catalog_settings(
            f.project,
            &CatalogSettings {
                repository_id: Some(foreign),
                ..settings.clone()
            },
            NextRuns::default(),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(ref m)) if m.contains("repository_id")),
        "{refused:?}"
    );
    // The catalog's repository stays while the catalog reads it.
    assert!(matches!(
        f.store.delete_repository(f.project, f.repository).await,
        Err(StoreError::InUse(_))
    ));
}

async fn one_unfinished_rollout_and_each_event_and_step_once(backend: Backend) {
    let f = fixture(backend).await;
    let plan = empty_plan();
    let id = start(&f, &plan).await.unwrap();
    assert!(matches!(
        start(&f, &plan).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        f.store
            .unfinished_rollout(f.project)
            .await
            .unwrap()
            .map(|r| r.id),
        Some(id)
    );

    let params = TaskParams::default();
    let task = NewTask {
        project_id: f.project,
        template_id: TemplateId(f.template),
        user_id: Some(f.user),
        playbook: "",
        environment: "{}",
        arguments: None,
        git_branch: None,
        commit_hash: None,
        message: "Catalog rollout: apply of db",
        inventory_id: None,
        build_task_id: None,
        version: None,
        params: &params,
        integration_id: None,
        schedule_id: None,
        secret: None,
    };
    let environment = BTreeMap::from([("RALF_SERVICE".to_owned(), "db".to_owned())]);
    let task = NewStepTask {
        task,
        environment: &environment,
    };
    let created = f
        .store
        .append_rollout_event(id, 1, &started("db.apply.1"), Some(&task))
        .await
        .unwrap()
        .expect("the step's task");
    let history = f.store.rollout_history(id).await.unwrap();
    assert_eq!(history.next_seq, 2);
    assert_eq!(
        history.events,
        [RolloutEvent::StepStarted {
            step_id: "db.apply.1".parse().unwrap(),
            task_id: Some(created.id),
            at: match &history.events[0] {
                RolloutEvent::StepStarted { at, .. } => *at,
                other => panic!("{other:?}"),
            },
        }]
    );
    let step = f
        .store
        .catalog_step(TaskId(created.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(step.rollout_id, id);
    assert_eq!(step.step_id, StepId::new("db", StepKind::Apply, 1));
    assert_eq!(step.environment, environment);

    // A number taken, or a step started already: refused, and the task with it.
    let again = f
        .store
        .append_rollout_event(id, 1, &started("web.apply.1"), Some(&task))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let twice = f
        .store
        .append_rollout_event(id, 2, &started("db.apply.1"), Some(&task))
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    assert_eq!(task_count(&f).await, 1);
    assert_eq!(f.store.rollout_history(id).await.unwrap().next_seq, 2);

    f.store
        .save_step_report(TaskId(created.id), r#"{"result": "WARN"}"#)
        .await
        .unwrap();
    assert_eq!(
        f.store
            .step_report(TaskId(created.id))
            .await
            .unwrap()
            .as_deref(),
        Some(r#"{"result": "WARN"}"#)
    );

    // Ending it records the outcomes, once.
    let status = StepStatus {
        step_id: "db.apply.1".parse().unwrap(),
        result: StepResult::Ok,
        summary: "applied db".into(),
        artifacts: Vec::new(),
        next_actions: Vec::new(),
        task_id: Some(created.id),
    };
    let outcome = |state| ServiceRecord {
        name: "db".into(),
        state,
        deployed_at: Some(Timestamp::now()),
        commit: Some("ee1a2e5".into()),
        last_status: Some(status.clone()),
        last_task_id: Some(created.id),
    };
    f.store
        .update_rollout(
            f.project,
            id,
            RolloutState::Succeeded,
            Some(Timestamp::now()),
            &[outcome(ServiceState::Deployed)],
        )
        .await
        .unwrap();
    f.store
        .update_rollout(
            f.project,
            id,
            RolloutState::Failed,
            Some(Timestamp::now()),
            &[outcome(ServiceState::Failed)],
        )
        .await
        .unwrap();
    let records = f.store.catalog_services(f.project).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].state, ServiceState::Deployed);
    assert_eq!(records[0].last_status.as_ref(), Some(&status));
    let rollout = f.store.rollout(f.project, id).await.unwrap();
    assert_eq!(rollout.state, RolloutState::Succeeded);
    assert!(rollout.finished.is_some());
    assert_eq!(f.store.unfinished_rollout(f.project).await.unwrap(), None);

    // The next one may start; an outcome without a status keeps the last one.
    let next = start(&f, &plan).await.unwrap();
    f.store
        .update_rollout(
            f.project,
            next,
            RolloutState::Failed,
            Some(Timestamp::now()),
            &[ServiceRecord {
                name: "db".into(),
                state: ServiceState::Held,
                deployed_at: None,
                commit: None,
                last_status: None,
                last_task_id: None,
            }],
        )
        .await
        .unwrap();
    let records = f.store.catalog_services(f.project).await.unwrap();
    assert_eq!(records[0].state, ServiceState::Held);
    assert_eq!(records[0].last_status.as_ref(), Some(&status));
    assert_eq!(records[0].commit.as_deref(), Some("ee1a2e5"));
    assert_eq!(
        f.store
            .rollouts(f.project, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [next, id]
    );

    // Deleting the project deletes its catalog.
    f.store
        .save_catalog_settings(
            f.project,
            &CatalogSettings {
                repository_id: Some(f.repository),
                ..CatalogSettings::default()
            },
            NextRuns::default(),
        )
        .await
        .unwrap();
    f.store.delete_project(f.project).await.unwrap();
    assert_eq!(f.store.catalog_settings(f.project).await.unwrap(), None);
    assert!(
        f.store
            .catalog_services(f.project)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(f.store.rollouts(f.project, 10).await.unwrap().is_empty());
    assert_eq!(f.store.unfinished_rollout_ids().await.unwrap(), []);
    assert_eq!(
        f.store.catalog_step(TaskId(created.id)).await.unwrap(),
        None
    );
}

async fn the_advisors_answers_are_kept_per_rollout_and_step(backend: Backend) {
    let f = fixture(backend).await;
    let id = start(&f, &empty_plan()).await.unwrap();
    assert_eq!(f.store.advice(id).await.unwrap(), Advice::default());
    let step: StepId = "api.apply.1".parse().unwrap();
    f.store
        .save_advice(id, None, "the order is sound")
        .await
        .unwrap();
    f.store.save_advice(id, Some(&step), "first").await.unwrap();
    // A second answer replaces the first.
    f.store
        .save_advice(id, Some(&step), "check the database")
        .await
        .unwrap();
    let advice = f.store.advice(id).await.unwrap();
    assert_eq!(advice.order.as_deref(), Some("the order is sound"));
    assert_eq!(
        advice.steps,
        [("api.apply.1".to_string(), "check the database".to_string())].into()
    );
    // Deleting the project deletes its rollouts' advice.
    f.store.delete_project(f.project).await.unwrap();
    assert_eq!(f.store.advice(id).await.unwrap(), Advice::default());
}

on_both_backends!(
    settings_name_a_repository_of_the_project,
    one_unfinished_rollout_and_each_event_and_step_once,
    the_advisors_answers_are_kept_per_rollout_and_step,
);
