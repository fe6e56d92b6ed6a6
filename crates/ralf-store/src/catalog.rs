//! The service catalog's rows: each project's catalog settings, what ralf recorded of each
//! service's last rollout, rollouts with their events, the reports catalog steps leave, and the
//! advisor's answers.
//!
//! The database decides what concurrent servers cannot both do. A project has at most one
//! unfinished rollout (a partial unique index). A rollout's events are numbered, and whoever
//! appends one names the number after the last event it replayed: of two servers acting on the
//! same history, one appends and the other learns it lost ([`StoreError::Conflict`]) and reads
//! again. A step's start is recorded in the same transaction as its task
//! ([`Store::append_rollout_event`]), and once only (a unique key on the started step), so no
//! restart and no second server applies a service twice.

use ralf_catalog::api::{CatalogSettings, WriteBackResult};
use ralf_catalog::{
    Plan, RolloutEvent, RolloutOptions, RolloutState, Selection, ServiceState, StepId, StepStatus,
};
use ralf_core::api::tasks::Task;
use ralf_core::{ProjectId, RolloutId, TaskId, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

use crate::driver::{Reference, Tx as _};
use crate::tasks::{NewTask, task_references};
use crate::{Result, Store, StoreError, with_db};

/// What ralf records of a service's last rollout: read back as it stands, and written when a
/// rollout settles (or a backup is restored), where a `None` keeps what is recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    pub name: String,
    /// Deployed, degraded, failed, held or rolled back.
    pub state: ServiceState,
    pub deployed_at: Option<Timestamp>,
    /// The catalog's commit it was deployed from.
    pub commit: Option<String>,
    /// The status object of its last finished step.
    pub last_status: Option<StepStatus>,
    pub last_task_id: Option<i64>,
}

/// A rollout about to start.
pub struct NewRollout<'a> {
    pub project_id: ProjectId,
    pub state: RolloutState,
    pub selection: &'a Selection,
    pub plan: &'a Plan,
    pub options: &'a RolloutOptions,
    pub commit: &'a str,
    pub started_by: Option<i64>,
}

/// A stored rollout (its events are read apart, [`Store::rollout_history`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRollout {
    pub id: RolloutId,
    pub project_id: ProjectId,
    /// As last recorded; the events decide.
    pub state: RolloutState,
    pub selection: Selection,
    pub plan: Plan,
    pub options: RolloutOptions,
    pub commit: String,
    pub started_by: Option<i64>,
    pub created: Timestamp,
    pub finished: Option<Timestamp>,
    /// What the write-back did once it ended; `None` while none was tried.
    pub write_back: Option<WriteBackResult>,
}

/// The advisor's answers for one rollout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Advice {
    /// On the order of its services.
    pub order: Option<String>,
    /// A diagnosis per failed step, by the step's id.
    pub steps: std::collections::BTreeMap<String, String>,
}

/// A rollout's events in order, and the number the next one takes.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutHistory {
    pub events: Vec<RolloutEvent>,
    pub next_seq: i64,
}

/// The rollout step a task runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogStep {
    pub rollout_id: RolloutId,
    pub step_id: StepId,
    /// The environment its task runs with: the service's `environment` and ralf's `RALF_*`
    /// variables ([`ralf_catalog::step_environment`]).
    pub environment: BTreeMap<String, String>,
}

/// The task of a step that starts, with the environment it is to run with.
pub struct NewStepTask<'a> {
    pub task: NewTask<'a>,
    pub environment: &'a BTreeMap<String, String>,
}

/// What a catalog schedule starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// A rollout of every service not yet deployed (the settings' `schedule`).
    Deploy,
    /// A health check (the settings' `check_schedule`).
    Check,
}

impl ScheduleKind {
    /// Moves its next run on, when it is still the one claimed.
    const fn claim_sql(self) -> &'static str {
        match self {
            ScheduleKind::Deploy => {
                "UPDATE catalog_settings SET schedule_next_run = $1
                 WHERE project_id = $2 AND schedule_next_run = $3"
            }
            ScheduleKind::Check => {
                "UPDATE catalog_settings SET check_schedule_next_run = $1
                 WHERE project_id = $2 AND check_schedule_next_run = $3"
            }
        }
    }
}

/// A project's catalog schedule and when it fires next.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSchedule {
    pub project_id: ProjectId,
    pub kind: ScheduleKind,
    pub schedule: String,
    pub next_run: Timestamp,
}

/// When a project's catalog schedules fire next (`None`: it has no such schedule).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NextRuns {
    pub deploy: Option<Timestamp>,
    pub check: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct SettingsRow {
    repository_id: Option<i64>,
    path: String,
    branch: Option<String>,
    write_back: bool,
    parallelism: i64,
    schedule: Option<String>,
    check_schedule: Option<String>,
    webhook_secret_set: bool,
}

#[derive(sqlx::FromRow)]
struct ServiceRow {
    name: String,
    state: String,
    deployed_at: Option<Timestamp>,
    commit: Option<String>,
    last_status: Option<String>,
    last_task_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct RolloutRow {
    id: i64,
    project_id: i64,
    status: String,
    selection: String,
    plan: String,
    options: String,
    commit: String,
    started_by: Option<i64>,
    created: Timestamp,
    finished: Option<Timestamp>,
    write_back: Option<String>,
}

const ROLLOUT_COLUMNS: &str = r#"SELECT id, project_id, status, selection, plan, options, "commit",
    started_by, created, finished, write_back FROM catalog_rollouts"#;

pub(crate) const SAVE_SETTINGS: &str = "INSERT INTO catalog_settings
        (project_id, repository_id, path, branch, write_back, parallelism, schedule,
         schedule_next_run, check_schedule, check_schedule_next_run)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (project_id) DO UPDATE SET repository_id = excluded.repository_id,
        path = excluded.path, branch = excluded.branch, write_back = excluded.write_back,
        parallelism = excluded.parallelism, schedule = excluded.schedule,
        schedule_next_run = excluded.schedule_next_run,
        check_schedule = excluded.check_schedule,
        check_schedule_next_run = excluded.check_schedule_next_run";

/// Records a service's outcome; a `NULL` keeps what is recorded.
pub(crate) const RECORD_SERVICE: &str = r#"INSERT INTO catalog_services
        (project_id, name, state, deployed_at, "commit", last_status, last_task_id, updated)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (project_id, name) DO UPDATE SET state = excluded.state,
        deployed_at = COALESCE(excluded.deployed_at, catalog_services.deployed_at),
        "commit" = COALESCE(excluded."commit", catalog_services."commit"),
        last_status = COALESCE(excluded.last_status, catalog_services.last_status),
        last_task_id = COALESCE(excluded.last_task_id, catalog_services.last_task_id),
        updated = excluded.updated"#;

const INSERT_EVENT: &str = "INSERT INTO catalog_rollout_events
        (rollout_id, seq, started_step, task_id, event, created, environment)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(crate) fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("{what}: {e}")))
}

fn from_json<T: DeserializeOwned>(text: &str, what: impl FnOnce() -> String) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{}: {e}", what())))
}

impl SettingsRow {
    fn into_settings(self) -> CatalogSettings {
        CatalogSettings {
            repository_id: self.repository_id,
            path: self.path,
            branch: self.branch,
            write_back: self.write_back,
            parallelism: u32::try_from(self.parallelism).unwrap_or(1),
            schedule: self.schedule,
            check_schedule: self.check_schedule,
            webhook_secret: None,
            webhook_secret_set: self.webhook_secret_set,
        }
    }
}

impl ServiceRow {
    fn into_record(self, project_id: ProjectId) -> Result<ServiceRecord> {
        let state = ServiceState::parse(&self.state).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "catalog service {:?} of project {project_id} has the unknown state {:?}",
                self.name, self.state
            ))
        })?;
        let last_status = match &self.last_status {
            Some(text) => Some(from_json(text, || {
                format!("the last status of catalog service {:?}", self.name)
            })?),
            None => None,
        };
        Ok(ServiceRecord {
            name: self.name,
            state,
            deployed_at: self.deployed_at,
            commit: self.commit,
            last_status,
            last_task_id: self.last_task_id,
        })
    }
}

impl RolloutRow {
    fn into_rollout(self) -> Result<StoredRollout> {
        let id = RolloutId(self.id);
        let state = RolloutState::parse(&self.status).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "rollout {id} has the unknown status {:?}",
                self.status
            ))
        })?;
        Ok(StoredRollout {
            id,
            project_id: ProjectId(self.project_id),
            state,
            selection: from_json(&self.selection, || format!("the selection of rollout {id}"))?,
            plan: from_json(&self.plan, || format!("the plan of rollout {id}"))?,
            options: from_json(&self.options, || format!("the options of rollout {id}"))?,
            commit: self.commit,
            started_by: self.started_by,
            created: self.created,
            finished: self.finished,
            write_back: self
                .write_back
                .as_deref()
                .map(|text| from_json(text, || format!("the write-back of rollout {id}")))
                .transpose()?,
        })
    }
}

impl Store {
    /// The project's catalog settings; `None` when it never had any.
    pub async fn catalog_settings(&self, project_id: ProjectId) -> Result<Option<CatalogSettings>> {
        let row = with_db!(self, read, |pool| sqlx::query_as::<_, SettingsRow>(
            "SELECT repository_id, path, branch, write_back, parallelism, schedule,
                check_schedule, webhook_secret IS NOT NULL AS webhook_secret_set
             FROM catalog_settings WHERE project_id = $1",
        )
        .bind(project_id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(SettingsRow::into_settings))
    }

    /// Replaces the project's catalog settings, with when its schedules fire next (the caller
    /// works them out from the cron patterns; `None` without a schedule). The repository must be
    /// the project's, else [`StoreError::Invalid`].
    pub async fn save_catalog_settings(
        &self,
        project_id: ProjectId,
        settings: &CatalogSettings,
        next_runs: NextRuns,
    ) -> Result<()> {
        let repository = Reference {
            id: settings.repository_id,
            count: "SELECT COUNT(*) FROM repositories WHERE id = $1 AND project_id = $2",
            missing: "repository_id: no such repository in this project",
        };
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.check_in_project(project_id, &[repository]).await?;
            sqlx::query(SAVE_SETTINGS)
                .bind(project_id)
                .bind(settings.repository_id)
                .bind(&settings.path)
                .bind(settings.branch.as_deref())
                .bind(settings.write_back)
                .bind(i64::from(settings.parallelism))
                .bind(settings.schedule.as_deref())
                .bind(next_runs.deploy)
                .bind(settings.check_schedule.as_deref())
                .bind(next_runs.check)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Sets (an encrypted secret) or removes (`None`) the secret of the project's catalog
    /// webhook; the project must have catalog settings.
    pub async fn set_catalog_webhook_secret(
        &self,
        project_id: ProjectId,
        encrypted: Option<&str>,
    ) -> Result<()> {
        with_db!(self, write, |pool| {
            sqlx::query("UPDATE catalog_settings SET webhook_secret = $1 WHERE project_id = $2")
                .bind(encrypted)
                .bind(project_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The encrypted secret of the project's catalog webhook, if it has one.
    pub async fn catalog_webhook_secret(&self, project_id: ProjectId) -> Result<Option<String>> {
        let secret: Option<Option<String>> = with_db!(self, read, |pool| sqlx::query_scalar(
            "SELECT webhook_secret FROM catalog_settings WHERE project_id = $1",
        )
        .bind(project_id)
        .fetch_optional(pool)
        .await)?;
        Ok(secret.flatten())
    }

    /// Every catalog schedule (deploy and check), with when it fires next.
    pub async fn catalog_schedules(&self) -> Result<Vec<CatalogSchedule>> {
        let rows: Vec<(ProjectId, String, String, Timestamp)> =
            with_db!(self, read, |pool| sqlx::query_as(
                "SELECT project_id, 'deploy', schedule, schedule_next_run FROM catalog_settings
                 WHERE schedule IS NOT NULL AND schedule_next_run IS NOT NULL
                 UNION ALL
                 SELECT project_id, 'check', check_schedule, check_schedule_next_run
                 FROM catalog_settings
                 WHERE check_schedule IS NOT NULL AND check_schedule_next_run IS NOT NULL",
            )
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(project_id, kind, schedule, next_run)| CatalogSchedule {
                project_id,
                kind: if kind == "check" {
                    ScheduleKind::Check
                } else {
                    ScheduleKind::Deploy
                },
                schedule,
                next_run,
            })
            .collect())
    }

    /// Claims the firing of the project's catalog schedule of `kind` due at `due` by moving its
    /// next run on to `next`: true for the one caller (of several servers) whose
    /// compare-and-set changed the row; that caller starts the rollout.
    pub async fn claim_catalog_schedule(
        &self,
        project_id: ProjectId,
        kind: ScheduleKind,
        due: Timestamp,
        next: Option<Timestamp>,
    ) -> Result<bool> {
        let claimed = with_db!(self, write, |pool| {
            sqlx::query(kind.claim_sql())
                .bind(next)
                .bind(project_id)
                .bind(due)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(claimed == 1)
    }

    /// What ralf recorded of the project's services, by name.
    pub async fn catalog_services(&self, project_id: ProjectId) -> Result<Vec<ServiceRecord>> {
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, ServiceRow>(
            r#"SELECT name, state, deployed_at, "commit", last_status, last_task_id
               FROM catalog_services WHERE project_id = $1 ORDER BY name"#,
        )
        .bind(project_id)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|row| row.into_record(project_id))
            .collect()
    }

    /// Starts a rollout; [`StoreError::Conflict`] when the project has an unfinished one.
    pub async fn create_rollout(&self, new: &NewRollout<'_>) -> Result<StoredRollout> {
        let selection = to_json(new.selection, "selection")?;
        let plan = to_json(new.plan, "plan")?;
        let options = to_json(new.options, "options")?;
        let id: i64 = with_db!(self, write, |pool| sqlx::query_scalar(
            r#"INSERT INTO catalog_rollouts
                (project_id, status, selection, plan, options, "commit", started_by, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"#,
        )
        .bind(new.project_id)
        .bind(new.state.as_str())
        .bind(&selection)
        .bind(&plan)
        .bind(&options)
        .bind(new.commit)
        .bind(new.started_by)
        .bind(Timestamp::now())
        .fetch_one(pool)
        .await)
        .map_err(|e| {
            StoreError::from(e).conflict_as("the project has an unfinished rollout already")
        })?;
        self.rollout(new.project_id, RolloutId(id)).await
    }

    /// Rollout `id` of the project.
    pub async fn rollout(&self, project_id: ProjectId, id: RolloutId) -> Result<StoredRollout> {
        let sql = const_format::concatcp!(ROLLOUT_COLUMNS, " WHERE project_id = $1 AND id = $2");
        let row = with_db!(self, read, |pool| sqlx::query_as::<_, RolloutRow>(sql)
            .bind(project_id)
            .bind(id)
            .fetch_one(pool)
            .await)?;
        row.into_rollout()
    }

    /// The project's newest rollouts, at most `limit`.
    pub async fn rollouts(&self, project_id: ProjectId, limit: i64) -> Result<Vec<StoredRollout>> {
        let sql = const_format::concatcp!(
            ROLLOUT_COLUMNS,
            " WHERE project_id = $1 ORDER BY id DESC LIMIT $2"
        );
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, RolloutRow>(sql)
            .bind(project_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(RolloutRow::into_rollout).collect()
    }

    /// The project's unfinished rollout, if it has one.
    pub async fn unfinished_rollout(&self, project_id: ProjectId) -> Result<Option<StoredRollout>> {
        let sql = const_format::concatcp!(
            ROLLOUT_COLUMNS,
            " WHERE project_id = $1 AND finished IS NULL"
        );
        let row = with_db!(self, read, |pool| sqlx::query_as::<_, RolloutRow>(sql)
            .bind(project_id)
            .fetch_optional(pool)
            .await)?;
        row.map(RolloutRow::into_rollout).transpose()
    }

    /// The ids of every unfinished rollout, of every project, oldest first.
    pub async fn unfinished_rollout_ids(&self) -> Result<Vec<(RolloutId, ProjectId)>> {
        Ok(with_db!(self, read, |pool| sqlx::query_as(
            "SELECT id, project_id FROM catalog_rollouts WHERE finished IS NULL ORDER BY id",
        )
        .fetch_all(pool)
        .await)?)
    }

    /// Rollout `id`'s events, in the order they were recorded.
    pub async fn rollout_history(&self, id: RolloutId) -> Result<RolloutHistory> {
        let rows: Vec<(i64, String)> = with_db!(self, read, |pool| sqlx::query_as(
            "SELECT seq, event FROM catalog_rollout_events WHERE rollout_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(pool)
        .await)?;
        let next_seq = rows.last().map_or(1, |(seq, _)| seq + 1);
        let events = rows
            .iter()
            .map(|(seq, text)| from_json(text, || format!("event {seq} of rollout {id}")))
            .collect::<Result<_>>()?;
        Ok(RolloutHistory { events, next_seq })
    }

    /// Appends `event` to rollout `rollout_id`'s history as number `seq` (the `next_seq` of the
    /// history the caller replayed); [`StoreError::Conflict`] when that number is taken (someone
    /// appended first: read again) or the event starts a step already started.
    ///
    /// With a `task` (for a [`RolloutEvent::StepStarted`] only), the task is inserted in the
    /// same transaction and the event records its id and environment: both are stored or
    /// neither. The task must name objects of its project (else [`StoreError::Invalid`]); it is
    /// returned.
    pub async fn append_rollout_event(
        &self,
        rollout_id: RolloutId,
        seq: i64,
        event: &RolloutEvent,
        step: Option<&NewStepTask<'_>>,
    ) -> Result<Option<Task>> {
        let task = step.map(|s| &s.task);
        let params = task
            .map(|t| to_json(t.params, "params"))
            .transpose()?
            .unwrap_or_default();
        let environment = step
            .map(|s| to_json(s.environment, "environment"))
            .transpose()?;
        if task.is_some() && !matches!(event, RolloutEvent::StepStarted { .. }) {
            return Err(StoreError::Invalid(
                "only a step's start creates a task".into(),
            ));
        }
        let row = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let mut event = event.clone();
            let mut created = None;
            if let Some(new) = task {
                tx.check_in_project(new.project_id, &task_references(new))
                    .await?;
                let id = tx.insert_task(new, &params).await?;
                if let RolloutEvent::StepStarted { task_id, .. } = &mut event {
                    *task_id = Some(id);
                }
                created = Some(id);
            }
            let (started_step, task_id) = match &event {
                RolloutEvent::StepStarted {
                    step_id, task_id, ..
                } => (Some(step_id.to_string()), *task_id),
                _ => (None, None),
            };
            sqlx::query(INSERT_EVENT)
                .bind(rollout_id)
                .bind(seq)
                .bind(started_step)
                .bind(task_id)
                .bind(to_json(&event, "event")?)
                .bind(Timestamp::now())
                .bind(environment.as_deref())
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from(e).conflict_as("the rollout changed meanwhile"))?;
            let row = match created {
                Some(id) => Some(tx.task_row(id).await?),
                None => None,
            };
            tx.commit().await?;
            row
        });
        row.map(|r| r.into_task()).transpose()
    }

    /// Records what the write-back of finished rollout `id` did.
    pub async fn record_write_back(
        &self,
        id: RolloutId,
        write_back: &WriteBackResult,
    ) -> Result<()> {
        let text = to_json(write_back, "write-back")?;
        with_db!(self, write, |pool| {
            sqlx::query("UPDATE catalog_rollouts SET write_back = $1 WHERE id = $2")
                .bind(&text)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records how rollout `id` of the project stands and the outcomes of its services, in one
    /// transaction; with `finished`, the rollout ends (once: a rollout already finished is left
    /// as it is, and so are its services). True when this call changed the rollout (so, with
    /// `finished`, when it ended it).
    pub async fn update_rollout(
        &self,
        project_id: ProjectId,
        id: RolloutId,
        state: RolloutState,
        finished: Option<Timestamp>,
        outcomes: &[ServiceRecord],
    ) -> Result<bool> {
        let outcomes: Vec<(&ServiceRecord, Option<String>)> = outcomes
            .iter()
            .map(|o| {
                let status = o
                    .last_status
                    .as_ref()
                    .map(|s| to_json(s, "last status"))
                    .transpose()?;
                Ok((o, status))
            })
            .collect::<Result<_>>()?;
        let now = Timestamp::now();
        let changed = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE catalog_rollouts SET status = $1, finished = $2
                 WHERE project_id = $3 AND id = $4 AND finished IS NULL",
            )
            .bind(state.as_str())
            .bind(finished)
            .bind(project_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                for (outcome, status) in &outcomes {
                    sqlx::query(RECORD_SERVICE)
                        .bind(project_id)
                        .bind(&outcome.name)
                        .bind(outcome.state.as_str())
                        .bind(outcome.deployed_at)
                        .bind(outcome.commit.as_deref())
                        .bind(status.as_deref())
                        .bind(outcome.last_task_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            changed
        });
        Ok(changed == 1)
    }

    /// Keeps the report a catalog step's task left (replacing an earlier one).
    pub async fn save_step_report(&self, task_id: TaskId, report: &str) -> Result<()> {
        with_db!(self, write, |pool| sqlx::query(
            "INSERT INTO catalog_step_reports (task_id, report) VALUES ($1, $2)
             ON CONFLICT (task_id) DO UPDATE SET report = excluded.report",
        )
        .bind(task_id)
        .bind(report)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The report task `task_id` left, if any.
    pub async fn step_report(&self, task_id: TaskId) -> Result<Option<String>> {
        Ok(with_db!(self, read, |pool| sqlx::query_scalar(
            "SELECT report FROM catalog_step_reports WHERE task_id = $1",
        )
        .bind(task_id)
        .fetch_optional(pool)
        .await)?)
    }

    /// The rollout step task `task_id` runs, if it runs one, with its environment as recorded
    /// when it started (derived from the rollout's plan for a step started before ralf recorded
    /// it).
    pub async fn catalog_step(&self, task_id: TaskId) -> Result<Option<CatalogStep>> {
        let row: Option<(RolloutId, String, Option<String>, Option<String>)> =
            with_db!(self, read, |pool| sqlx::query_as(
                "SELECT e.rollout_id, e.started_step, e.environment,
                    CASE WHEN e.environment IS NULL
                        THEN (SELECT r.plan FROM catalog_rollouts r WHERE r.id = e.rollout_id)
                    END
                 FROM catalog_rollout_events e
                 WHERE e.task_id = $1 AND e.started_step IS NOT NULL",
            )
            .bind(task_id)
            .fetch_optional(pool)
            .await)?;
        let Some((rollout_id, step, environment, plan)) = row else {
            return Ok(None);
        };
        let step_id: StepId = step
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("a step of rollout {rollout_id}: {e}")))?;
        let environment = match (environment, plan) {
            (Some(text), _) => from_json(&text, || {
                format!("the environment of step {step_id} of rollout {rollout_id}")
            })?,
            (None, Some(plan)) => {
                let plan: Plan = from_json(&plan, || format!("the plan of rollout {rollout_id}"))?;
                let planned = plan.get(&step_id.service).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "rollout {rollout_id} has a step of {:?}, which its plan does not have",
                        step_id.service
                    ))
                })?;
                ralf_catalog::step_environment(&planned.service, &step_id)
            }
            (None, None) => {
                return Err(StoreError::Corrupt(format!(
                    "step {step_id} of rollout {rollout_id} has neither environment nor plan"
                )));
            }
        };
        Ok(Some(CatalogStep {
            rollout_id,
            step_id,
            environment,
        }))
    }

    /// Keeps the advisor's answer for rollout `rollout_id`: on its order (`step` `None`) or
    /// on one of its steps (by the step's id), replacing an earlier one.
    pub async fn save_advice(
        &self,
        rollout_id: RolloutId,
        step: Option<&StepId>,
        advice: &str,
    ) -> Result<()> {
        let step = step.map(ToString::to_string).unwrap_or_default();
        with_db!(self, write, |pool| sqlx::query(
            "INSERT INTO catalog_advice (rollout_id, step, advice, created) VALUES ($1, $2, $3, $4)
             ON CONFLICT (rollout_id, step) DO UPDATE SET advice = excluded.advice,
                created = excluded.created",
        )
        .bind(rollout_id)
        .bind(&step)
        .bind(advice)
        .bind(Timestamp::now())
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The advisor's answers for rollout `rollout_id`: on its order, and by step id.
    pub async fn advice(&self, rollout_id: RolloutId) -> Result<Advice> {
        let rows: Vec<(String, String)> = with_db!(self, read, |pool| sqlx::query_as(
            "SELECT step, advice FROM catalog_advice WHERE rollout_id = $1",
        )
        .bind(rollout_id)
        .fetch_all(pool)
        .await)?;
        let mut advice = Advice::default();
        for (step, text) in rows {
            if step.is_empty() {
                advice.order = Some(text);
            } else {
                advice.steps.insert(step, text);
            }
        }
        Ok(advice)
    }
}
