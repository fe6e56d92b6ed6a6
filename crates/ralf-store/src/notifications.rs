//! Notifications owed for tasks' ends (docs/notifications.md). A row is written in the
//! transaction that stores a notifiable status (`Tx::owe_notification`), so a stored end is
//! never without its notification and storing it never waits for a channel. A server claims a
//! due row by moving its `next_attempt` on with a compare-and-set (a lease): of several servers
//! that saw it due, one sends it; a server that dies while sending leaves it to be claimed
//! again when the lease ends. What the message says is read from the task, its template and
//! its project when it is sent ([`Store::notification_facts`]).

use ralf_core::{ProjectId, TaskId, TaskStatus, TemplateId};

use crate::{Result, Store, StoreError, with_db};

/// `$1` the task, `$2` the status, `$3` when it is due (Unix milliseconds). Nothing is owed
/// when the task's project has its alerts off: most projects do, and their tasks' ends then
/// cost no row. The sender still reads the project's and template's flags when it sends.
pub(crate) const OWE_NOTIFICATION: &str =
    "INSERT INTO task_notifications (task_id, status, next_attempt)
     SELECT tasks.id, $2, $3 FROM tasks JOIN projects ON projects.id = tasks.project_id
     WHERE tasks.id = $1 AND projects.alert
     ON CONFLICT (task_id, status) DO NOTHING";

/// A notification this server claimed and now sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedNotification {
    pub id: i64,
    pub task_id: TaskId,
    pub status: TaskStatus,
    /// Attempts made, this one included.
    pub attempts: i64,
    /// The channels still owed after an earlier attempt; `None`: every channel.
    pub channels: Option<Vec<String>>,
}

/// What a message about a task says, and whom it goes to besides the server's channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationFacts {
    pub project_id: ProjectId,
    pub project_name: String,
    /// The project's `alert`: whether its tasks are told of at all.
    pub alert: bool,
    /// The project's `alert_chat`: the Telegram chat its messages go to instead of the
    /// server's.
    pub alert_chat: Option<String>,
    pub template_id: TemplateId,
    pub template_name: String,
    pub suppress_success_alerts: bool,
    pub suppress_error_alerts: bool,
    /// Who started the task: a user's name, `schedule`, `integration`, or `unknown`.
    pub started_by: String,
    pub message: String,
    /// The e-mail addresses of the project's members and the admins whose `alert` is on.
    pub subscribers: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct OwedRow {
    id: i64,
    task_id: i64,
    status: String,
    attempts: i64,
    next_attempt: i64,
    channels: Option<String>,
}

#[derive(sqlx::FromRow)]
struct FactsRow {
    project_id: i64,
    project_name: String,
    alert: bool,
    alert_chat: Option<String>,
    template_id: i64,
    template_name: String,
    suppress_success_alerts: bool,
    suppress_error_alerts: bool,
    user_name: Option<String>,
    schedule_id: Option<i64>,
    integration_id: Option<i64>,
    message: String,
}

impl Store {
    /// Claims the oldest notification due at `now_ms` (Unix milliseconds) for `lease_ms`:
    /// nobody else claims it until then. `None` when nothing is due.
    pub async fn claim_notification(
        &self,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<OwedNotification>> {
        // Another server may win the row between the look and the claim; then look again.
        for _ in 0..8 {
            let row = with_db!(self, write, |pool| {
                sqlx::query_as::<_, OwedRow>(
                    "SELECT id, task_id, status, attempts, next_attempt, channels
                     FROM task_notifications WHERE next_attempt <= $1
                     ORDER BY next_attempt, id LIMIT 1",
                )
                .bind(now_ms)
                .fetch_optional(pool)
                .await?
            });
            let Some(row) = row else { return Ok(None) };
            let claimed = with_db!(self, write, |pool| {
                sqlx::query(
                    "UPDATE task_notifications SET next_attempt = $1, attempts = attempts + 1
                     WHERE id = $2 AND next_attempt = $3",
                )
                .bind(now_ms.saturating_add(lease_ms))
                .bind(row.id)
                .bind(row.next_attempt)
                .execute(pool)
                .await?
                .rows_affected()
            });
            if claimed == 1 {
                return row_into_owed(row).map(Some);
            }
        }
        Ok(None)
    }

    /// When the next notification is due (Unix milliseconds), if any is owed.
    pub async fn next_notification_due(&self) -> Result<Option<i64>> {
        Ok(with_db!(self, read, |pool| {
            sqlx::query_scalar::<_, Option<i64>>("SELECT MIN(next_attempt) FROM task_notifications")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Leaves notification `id` owed to `channels` only, due again at `next_ms`.
    pub async fn retry_notification(
        &self,
        id: i64,
        channels: &[String],
        next_ms: i64,
    ) -> Result<()> {
        let channels = serde_json::to_string(channels)
            .map_err(|e| StoreError::Invalid(format!("channels: {e}")))?;
        with_db!(self, write, |pool| {
            sqlx::query(
                "UPDATE task_notifications SET channels = $1, next_attempt = $2 WHERE id = $3",
            )
            .bind(channels)
            .bind(next_ms)
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Notification `id` is done: sent, not wanted, or given up.
    pub async fn forget_notification(&self, id: i64) -> Result<()> {
        with_db!(self, write, |pool| {
            sqlx::query("DELETE FROM task_notifications WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// What a message about task `task_id` says; `None` when the task is gone.
    pub async fn notification_facts(&self, task_id: TaskId) -> Result<Option<NotificationFacts>> {
        let row = with_db!(self, read, |pool| {
            sqlx::query_as::<_, FactsRow>(
                "SELECT t.project_id, p.name AS project_name, p.alert, p.alert_chat,
                        t.template_id, tpl.name AS template_name,
                        tpl.suppress_success_alerts, tpl.suppress_error_alerts,
                        COALESCE(NULLIF(u.name, ''), u.username) AS user_name,
                        t.schedule_id, t.integration_id, t.message
                 FROM tasks t
                 JOIN projects p ON p.id = t.project_id
                 JOIN templates tpl ON tpl.id = t.template_id
                 LEFT JOIN users u ON u.id = t.user_id
                 WHERE t.id = $1",
            )
            .bind(task_id)
            .fetch_optional(pool)
            .await?
        });
        let Some(row) = row else { return Ok(None) };
        let project_id = ProjectId(row.project_id);
        Ok(Some(NotificationFacts {
            subscribers: self.alert_subscribers(project_id).await?,
            project_id,
            project_name: row.project_name,
            alert: row.alert,
            alert_chat: row.alert_chat.filter(|chat| !chat.trim().is_empty()),
            template_id: TemplateId(row.template_id),
            template_name: row.template_name,
            suppress_success_alerts: row.suppress_success_alerts,
            suppress_error_alerts: row.suppress_error_alerts,
            started_by: match (row.user_name, row.schedule_id, row.integration_id) {
                (Some(name), _, _) => name,
                (None, Some(_), _) => "schedule".into(),
                (None, None, Some(_)) => "integration".into(),
                (None, None, None) => "unknown".into(),
            },
            message: row.message,
        }))
    }

    /// The e-mail addresses subscribed to project `project_id`'s alerts: its members and the
    /// admins whose `alert` flag is on, as Semaphore tells them.
    pub async fn alert_subscribers(&self, project_id: ProjectId) -> Result<Vec<String>> {
        Ok(with_db!(self, read, |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT email FROM users
                 WHERE alert AND email <> ''
                   AND (admin OR id IN (SELECT user_id FROM project_users WHERE project_id = $1))
                 ORDER BY id",
            )
            .bind(project_id)
            .fetch_all(pool)
            .await?
        }))
    }
}

fn row_into_owed(row: OwedRow) -> Result<OwedNotification> {
    let status = TaskStatus::parse(&row.status).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "task_notifications {}: unknown status {:?}",
            row.id, row.status
        ))
    })?;
    let channels = row
        .channels
        .map(|text| {
            serde_json::from_str::<Vec<String>>(&text).map_err(|e| {
                StoreError::Corrupt(format!("task_notifications {}: channels: {e}", row.id))
            })
        })
        .transpose()?;
    Ok(OwedNotification {
        id: row.id,
        task_id: TaskId(row.task_id),
        status,
        attempts: row.attempts + 1,
        channels,
    })
}
