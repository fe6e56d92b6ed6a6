//! Retention: how many finished tasks, or how many days of them, each project and template
//! keeps, and the sweep that deletes the rest in small batches. A template's own policy
//! replaces its project's; a project's applies to each template that has none. A task that is
//! not finished is never deleted.

use const_format::concatcp;
use ralf_core::{ProjectId, Timestamp};

use crate::{Result, Store, StoreError, with_db};

/// What a project or template keeps; both `None`: everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// The newest N finished tasks of each template.
    pub keep_tasks: Option<i64>,
    /// The finished tasks created in the last N days.
    pub keep_days: Option<i64>,
}

impl RetentionPolicy {
    pub fn keeps_everything(&self) -> bool {
        self.keep_tasks.is_none() && self.keep_days.is_none()
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub tasks_deleted: u64,
    pub batches: u64,
}

/// The statuses a task never leaves (`TaskStatus::is_finished`).
const FINISHED: &str = "('success', 'error', 'stopped', 'rejected')";

const BEYOND_COUNT: &str = concatcp!(
    "DELETE FROM tasks WHERE id IN (
         SELECT id FROM tasks WHERE template_id = $1 AND status IN ",
    FINISHED,
    " ORDER BY id DESC LIMIT $2 OFFSET $3)"
);

const BEFORE_CUTOFF: &str = concatcp!(
    "DELETE FROM tasks WHERE id IN (
         SELECT id FROM tasks WHERE template_id = $1 AND status IN ",
    FINISHED,
    " AND created < $3 ORDER BY id LIMIT $2)"
);

impl Store {
    /// The policy set on a project (`template_id` `None`) or on one of its templates; `None`
    /// when none is set there.
    pub async fn retention(
        &self,
        project_id: ProjectId,
        template_id: Option<i64>,
    ) -> Result<Option<RetentionPolicy>> {
        let row: Option<(Option<i64>, Option<i64>)> = with_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT keep_tasks, keep_days FROM retention_policies
                 WHERE project_id = $1 AND COALESCE(template_id, 0) = COALESCE($2, 0)",
            )
            .bind(project_id)
            .bind(template_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(keep_tasks, keep_days)| RetentionPolicy {
            keep_tasks,
            keep_days,
        }))
    }

    /// Sets (or, when it keeps everything, removes) the policy of a project or of one of its
    /// templates. A template of another project is [`StoreError::NotFound`].
    pub async fn set_retention(
        &self,
        project_id: ProjectId,
        template_id: Option<i64>,
        policy: &RetentionPolicy,
    ) -> Result<()> {
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(template_id) = template_id {
                let found: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM templates WHERE id = $1 AND project_id = $2",
                )
                .bind(template_id)
                .bind(project_id)
                .fetch_optional(&mut *tx)
                .await?;
                if found.is_none() {
                    return Err(StoreError::NotFound);
                }
            }
            sqlx::query(
                "DELETE FROM retention_policies
                 WHERE project_id = $1 AND COALESCE(template_id, 0) = COALESCE($2, 0)",
            )
            .bind(project_id)
            .bind(template_id)
            .execute(&mut *tx)
            .await?;
            if !policy.keeps_everything() {
                sqlx::query(
                    "INSERT INTO retention_policies (project_id, template_id, keep_tasks, keep_days)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(project_id)
                .bind(template_id)
                .bind(policy.keep_tasks)
                .bind(policy.keep_days)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every template a policy applies to, with the policy in force for it.
    async fn policies_in_force(&self) -> Result<Vec<(i64, RetentionPolicy)>> {
        let rows: Vec<(i64, Option<i64>, Option<i64>)> = with_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT tm.id,
                        CASE WHEN tp.id IS NOT NULL THEN tp.keep_tasks ELSE pp.keep_tasks END,
                        CASE WHEN tp.id IS NOT NULL THEN tp.keep_days ELSE pp.keep_days END
                 FROM templates tm
                 LEFT JOIN retention_policies tp ON tp.template_id = tm.id
                 LEFT JOIN retention_policies pp
                     ON pp.project_id = tm.project_id AND pp.template_id IS NULL
                 WHERE tp.id IS NOT NULL OR pp.id IS NOT NULL
                 ORDER BY tm.id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(template, keep_tasks, keep_days)| {
                (
                    template,
                    RetentionPolicy {
                        keep_tasks,
                        keep_days,
                    },
                )
            })
            .collect())
    }

    /// Deletes the finished tasks (their output, secrets and references go with them, by the
    /// foreign keys) that a policy no longer keeps, at most `batch` in one statement, so the
    /// writer is held only briefly each time and other writes go between the batches.
    pub async fn sweep_retention(&self, now: Timestamp, batch: i64) -> Result<SweepReport> {
        let batch = batch.max(1);
        let mut report = SweepReport::default();
        for (template, policy) in self.policies_in_force().await? {
            if let Some(keep) = policy.keep_tasks {
                self.delete_in_batches(&mut report, batch, |pool_batch| {
                    (
                        BEYOND_COUNT,
                        template,
                        pool_batch,
                        Bound::Offset(keep.max(0)),
                    )
                })
                .await?;
            }
            if let Some(days) = policy.keep_days {
                // A limit beyond what a date can express keeps everything.
                let Some(cutoff) = chrono::Duration::try_days(days.max(0))
                    .and_then(|span| now.0.checked_sub_signed(span))
                else {
                    continue;
                };
                let cutoff = Timestamp(cutoff);
                self.delete_in_batches(&mut report, batch, |pool_batch| {
                    (BEFORE_CUTOFF, template, pool_batch, Bound::Before(cutoff))
                })
                .await?;
            }
        }
        Ok(report)
    }

    async fn delete_in_batches(
        &self,
        report: &mut SweepReport,
        batch: i64,
        statement: impl Fn(i64) -> (&'static str, i64, i64, Bound),
    ) -> Result<()> {
        loop {
            let (sql, template, limit, bound) = statement(batch);
            let deleted = with_db!(self, write, |pool| {
                let q = sqlx::query(sql).bind(template).bind(limit);
                let q = match bound {
                    Bound::Offset(offset) => q.bind(offset),
                    Bound::Before(cutoff) => q.bind(cutoff),
                };
                q.execute(pool).await?.rows_affected()
            });
            if deleted > 0 {
                report.batches += 1;
                report.tasks_deleted += deleted;
            }
            if deleted < batch as u64 {
                return Ok(());
            }
            // Lets the writes that queued behind this batch go first.
            tokio::task::yield_now().await;
        }
    }

    /// Gives the space of deleted rows back: SQLite's `VACUUM` rewrites the file; on
    /// PostgreSQL `VACUUM ANALYZE` makes it reusable by the tables, and `full` (`VACUUM FULL`,
    /// which locks each table while it rewrites it) returns it to the file system. Answers the
    /// database's size before and after, in bytes.
    pub async fn vacuum(&self, full: bool) -> Result<(u64, u64)> {
        let before = self.database_size().await?;
        with_db!(self, write, |pool| {
            sqlx::query(match (self.dialect(), full) {
                ("sqlite", _) => "VACUUM",
                (_, true) => "VACUUM (FULL, ANALYZE)",
                (_, false) => "VACUUM ANALYZE",
            })
            .execute(pool)
            .await?;
        });
        if self.dialect() == "sqlite" {
            with_db!(self, write, |pool| {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(pool)
                    .await?;
            });
        }
        Ok((before, self.database_size().await?))
    }

    /// The database's size in bytes (SQLite: pages in use and free; PostgreSQL: the database).
    pub async fn database_size(&self) -> Result<u64> {
        let size: i64 = if self.dialect() == "sqlite" {
            with_db!(self, read, |pool| {
                sqlx::query_scalar(
                    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                )
                .fetch_one(pool)
                .await?
            })
        } else {
            with_db!(self, read, |pool| {
                sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(pool)
                    .await?
            })
        };
        Ok(size.max(0) as u64)
    }
}

#[derive(Clone, Copy)]
enum Bound {
    Offset(i64),
    Before(Timestamp),
}
