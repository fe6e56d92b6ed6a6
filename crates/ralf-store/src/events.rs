//! The activity log: what happened to which object, by whom.

use const_format::concatcp;
use ralf_core::api::events::{Event, NewEvent};
use ralf_core::{ProjectId, Timestamp};

use crate::{Result, Store, with_db};

const EVENT_SELECT: &str = "SELECT e.id, e.project_id, e.user_id, e.object_id, e.object_type, e.description,
        e.created, p.name AS project_name, u.username AS username
     FROM events e LEFT JOIN projects p ON p.id = e.project_id LEFT JOIN users u ON u.id = e.user_id";

impl Store {
    pub async fn record_event(&self, event: &NewEvent) -> Result<()> {
        with_db!(self, write, |pool| sqlx::query(
            "INSERT INTO events (project_id, user_id, object_id, object_type, description, created)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(event.project_id)
        .bind(event.user_id)
        .bind(event.object_id)
        .bind(event.object_type)
        .bind(&event.description)
        .bind(Timestamp::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The newest events of the projects `user_id` belongs to (all projects for an admin).
    pub async fn events_visible_to(
        &self,
        user_id: i64,
        admin: bool,
        limit: i64,
    ) -> Result<Vec<Event>> {
        const EVERY_PROJECT: &str =
            concatcp!(EVENT_SELECT, " WHERE $1 = $1 ORDER BY e.id DESC LIMIT $2");
        const MEMBER_PROJECTS: &str = concatcp!(
            EVENT_SELECT,
            " WHERE e.project_id IN (SELECT project_id FROM project_users WHERE user_id = $1)
             ORDER BY e.id DESC LIMIT $2"
        );
        let sql = if admin {
            EVERY_PROJECT
        } else {
            MEMBER_PROJECTS
        };
        Ok(with_db!(self, read, |pool| sqlx::query_as::<_, Event>(
            sql
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
    }

    pub async fn project_events(&self, project_id: ProjectId, limit: i64) -> Result<Vec<Event>> {
        const SQL: &str = concatcp!(
            EVENT_SELECT,
            " WHERE e.project_id = $1 ORDER BY e.id DESC LIMIT $2"
        );
        Ok(with_db!(self, read, |pool| sqlx::query_as::<_, Event>(
            SQL
        )
        .bind(project_id)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
    }
}
