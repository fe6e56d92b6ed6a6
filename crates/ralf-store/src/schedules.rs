//! Schedules, and the claim of a firing that makes it happen once however many servers share
//! the database.
//!
//! A schedule's `next_run` is when it fires next. The store does not compute it (cron patterns
//! are the caller's business); it keeps it and moves it on. [`Store::fire_schedule`] moves it
//! from the value the caller read to the next one with a compare-and-set and inserts the task
//! in the same transaction: of several servers that saw the same firing due, exactly one
//! changes the row and creates the task, and a crash in between leaves neither.

use const_format::concatcp;
use ralf_core::api::schedules::{Schedule, ScheduleFields};
use ralf_core::api::tasks::{Task, TaskRequest};
use ralf_core::{ProjectId, TemplateId, Timestamp};

use crate::driver::{Reference, Tx as _};
use crate::in_project::InProject;
use crate::tasks::{NewTask, task_references};
use crate::{Result, Store, StoreError, found, with_db};

/// The columns of a schedule row with its template's name, over `schedules s` joined with
/// `templates tpl`.
const SCHEDULE_COLUMNS: &str = "s.id, s.project_id, s.template_id, s.cron_format, s.name, s.active,
    s.type, s.run_at, s.task_params, s.next_run, s.last_fired, tpl.name AS tpl_name";

const SCHEDULE_FROM: &str = "schedules s JOIN templates tpl ON tpl.id = s.template_id";

const SCHEDULES: InProject = InProject {
    list: concatcp!(
        "SELECT ",
        SCHEDULE_COLUMNS,
        " FROM ",
        SCHEDULE_FROM,
        " WHERE s.project_id = $1"
    ),
    get: concatcp!(
        "SELECT ",
        SCHEDULE_COLUMNS,
        " FROM ",
        SCHEDULE_FROM,
        " WHERE s.project_id = $1 AND s.id = $2"
    ),
    delete: "DELETE FROM schedules WHERE project_id = $1 AND id = $2",
};

/// The project's schedules (`$1`), of template `$2` only when that is not `NULL`.
const SCHEDULES_OF_TEMPLATE: &str = concatcp!(
    SCHEDULES.list,
    " AND ($2 IS NULL OR s.template_id = $2) ORDER BY s.id"
);

/// Every active schedule that will fire, of every project.
const PENDING_SCHEDULES: &str = concatcp!(
    "SELECT ",
    SCHEDULE_COLUMNS,
    " FROM ",
    SCHEDULE_FROM,
    " WHERE s.active AND s.next_run IS NOT NULL ORDER BY s.id"
);

#[derive(sqlx::FromRow)]
struct ScheduleRow {
    id: i64,
    project_id: i64,
    template_id: i64,
    cron_format: String,
    name: String,
    active: bool,
    #[sqlx(rename = "type")]
    kind: String,
    run_at: Option<Timestamp>,
    task_params: Option<String>,
    next_run: Option<Timestamp>,
    last_fired: Option<Timestamp>,
    tpl_name: String,
}

impl ScheduleRow {
    fn into_schedule(self) -> Result<Schedule> {
        let task_params = match self.task_params.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(serde_json::from_str::<TaskRequest>(text).map_err(|e| {
                StoreError::Corrupt(format!(
                    "schedule {} has unreadable task_params: {e}",
                    self.id
                ))
            })?),
        };
        Ok(Schedule {
            id: self.id,
            project_id: self.project_id,
            template_id: self.template_id,
            cron_format: self.cron_format,
            name: self.name,
            active: self.active,
            kind: self.kind,
            run_at: self.run_at,
            task_params,
            tpl_name: self.tpl_name,
            next_run: self.next_run,
            last_fired: self.last_fired,
        })
    }
}

/// What became of a claimed firing.
#[derive(Debug)]
pub enum Firing {
    /// This call claimed the firing and created the task.
    Fired(Box<Task>),
    /// This call claimed the firing, but no task could be made (the reason says why); the
    /// schedule moved on all the same.
    Skipped(String),
    /// Another server claimed it first, or the schedule changed since it was read.
    Lost,
}

fn params_json(fields: &ScheduleFields) -> Result<Option<String>> {
    fields
        .task_params
        .as_ref()
        .map(|p| {
            serde_json::to_string(p).map_err(|e| StoreError::Invalid(format!("task_params: {e}")))
        })
        .transpose()
}

/// The ids a schedule names that must be objects of its project: its template, and the
/// inventory its overrides name.
fn schedule_references(fields: &ScheduleFields) -> [Reference; 2] {
    [
        Reference {
            id: Some(fields.template_id),
            count: "SELECT COUNT(*) FROM templates WHERE id = $1 AND project_id = $2",
            missing: "template_id: no such template in this project",
        },
        Reference {
            id: fields
                .task_params
                .as_ref()
                .and_then(|p| p.inventory_id)
                .filter(|&id| id != 0),
            count: "SELECT COUNT(*) FROM inventories WHERE id = $1 AND project_id = $2",
            missing: "task_params.inventory_id: no such inventory in this project",
        },
    ]
}

impl Store {
    /// The project's schedules (of one template, if given), oldest first.
    pub async fn schedules(
        &self,
        project_id: ProjectId,
        template_id: Option<TemplateId>,
    ) -> Result<Vec<Schedule>> {
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, ScheduleRow>(
            SCHEDULES_OF_TEMPLATE
        )
        .bind(project_id)
        .bind(template_id)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(ScheduleRow::into_schedule).collect()
    }

    pub async fn schedule(&self, project_id: ProjectId, id: i64) -> Result<Schedule> {
        self.get_in_project::<ScheduleRow>(&SCHEDULES, project_id, id)
            .await?
            .into_schedule()
    }

    /// Every active schedule that will fire, of every project: what the scheduler looks at.
    pub async fn pending_schedules(&self) -> Result<Vec<Schedule>> {
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, ScheduleRow>(
            PENDING_SCHEDULES
        )
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(ScheduleRow::into_schedule).collect()
    }

    /// Creates a schedule that fires next at `next_run`. The template (and an inventory the
    /// overrides name) must be the project's, else [`StoreError::Invalid`].
    pub async fn create_schedule(
        &self,
        project_id: ProjectId,
        fields: &ScheduleFields,
        next_run: Option<Timestamp>,
    ) -> Result<Schedule> {
        let params = params_json(fields)?;
        let id = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.check_in_project(project_id, &schedule_references(fields))
                .await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO schedules (project_id, template_id, name, cron_format, type,
                        run_at, active, task_params, created, next_run)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(project_id)
            .bind(fields.template_id)
            .bind(&fields.name)
            .bind(&fields.cron_format)
            .bind(&fields.kind)
            .bind(fields.run_at)
            .bind(fields.active)
            .bind(params.as_deref())
            .bind(Timestamp::now())
            .bind(next_run)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            id
        });
        self.schedule(project_id, id).await
    }

    /// Replaces a schedule's settings and when it fires next.
    pub async fn update_schedule(
        &self,
        project_id: ProjectId,
        id: i64,
        fields: &ScheduleFields,
        next_run: Option<Timestamp>,
    ) -> Result<()> {
        let params = params_json(fields)?;
        let done = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.check_in_project(project_id, &schedule_references(fields))
                .await?;
            let done = sqlx::query(
                "UPDATE schedules SET template_id = $1, name = $2, cron_format = $3,
                        type = $4, run_at = $5, active = $6, task_params = $7, next_run = $8
                     WHERE project_id = $9 AND id = $10",
            )
            .bind(fields.template_id)
            .bind(&fields.name)
            .bind(&fields.cron_format)
            .bind(&fields.kind)
            .bind(fields.run_at)
            .bind(fields.active)
            .bind(params.as_deref())
            .bind(next_run)
            .bind(project_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            done
        });
        found(done)
    }

    /// Switches a schedule on (firing next at `next_run`) or off.
    pub async fn set_schedule_active(
        &self,
        project_id: ProjectId,
        id: i64,
        active: bool,
        next_run: Option<Timestamp>,
    ) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "UPDATE schedules SET active = $1, next_run = $2
                     WHERE project_id = $3 AND id = $4",
        )
        .bind(active)
        .bind(next_run)
        .bind(project_id)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    pub async fn delete_schedule(&self, project_id: ProjectId, id: i64) -> Result<()> {
        self.delete_in_project(&SCHEDULES, project_id, id).await
    }

    /// Claims the firing of schedule `id` that was due at `due` (its `next_run` as the caller
    /// read it) and creates `task` for it, in one transaction. The claim moves `next_run` to
    /// `next` (`None`: the schedule is done and becomes inactive) only if the schedule is still
    /// active and still due at `due`; when it is not, nothing changes and the answer is
    /// [`Firing::Lost`]. Without a `task` (the caller found the overrides no longer fit the
    /// template), or when the task names an object that is not the project's, the firing is
    /// claimed without a task ([`Firing::Skipped`]).
    pub async fn fire_schedule(
        &self,
        id: i64,
        due: Timestamp,
        next: Option<Timestamp>,
        task: Option<&NewTask<'_>>,
    ) -> Result<Firing> {
        let params = task
            .map(|t| serde_json::to_string(t.params))
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("params: {e}")))?
            .unwrap_or_default();
        let fired = Timestamp::now();
        let outcome = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(
                "UPDATE schedules SET next_run = $1, active = $2, last_fired = $3
                     WHERE id = $4 AND active AND next_run = $5",
            )
            .bind(next)
            .bind(next.is_some())
            .bind(fired)
            .bind(id)
            .bind(due)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                return Ok(Firing::Lost);
            }
            let Some(new) = task else {
                tx.commit().await?;
                return Ok(Firing::Skipped(
                    "the task's overrides no longer suit the template".into(),
                ));
            };
            let missing = tx
                .first_missing(new.project_id, &task_references(new))
                .await?;
            if let Some(missing) = missing {
                tx.commit().await?;
                return Ok(Firing::Skipped(missing.into()));
            }
            let task_id = tx.insert_task(new, &params).await?;
            let row = tx.task_row(task_id).await?;
            tx.commit().await?;
            row
        });
        Ok(Firing::Fired(Box::new(outcome.into_task()?)))
    }
}
