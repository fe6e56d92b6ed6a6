//! Remote runners: global ones (`project_id` NULL) and project ones, their credentials and tags.
//!
//! A runner's token and its one-time registration token are made here (random, see
//! [`ralf_core::token`]) and kept only as sha256 digests: the clear token leaves the store once,
//! in the answer of the call that made it. Every method aimed at one runner of an owner takes
//! the [`RunnerOwner`] and filters by it, so a project's runner id used with another project (or
//! as a global runner) is simply not found.

use std::collections::BTreeMap;

use const_format::concatcp;
use ralf_core::api::runners::{
    REGISTRATION_TOKEN_LIFETIME_SECS, RegistrationFields, Runner, RunnerFields,
    RunnerRegistrationToken, RunnerTag,
};
use ralf_core::{ProjectId, Timestamp, token};

use crate::{Result, Store, StoreError, found, with_db};

const RUNNER_COLUMNS: &str = "id, project_id, name, webhook, max_parallel_tasks, active, tags,
    (token_hash IS NOT NULL) AS registered, touched, cleaning_requested";

/// Matches the owner bound as `$1`: 0 for global runners (project ids start at 1).
const OWNED_BY: &str = "COALESCE(project_id, 0) = $1";

/// Whom a runner belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerOwner {
    /// Every project's: managed by administrators.
    Global,
    /// One project's.
    Project(i64),
}

impl RunnerOwner {
    fn key(self) -> i64 {
        match self {
            RunnerOwner::Global => 0,
            RunnerOwner::Project(id) => id,
        }
    }

    fn project_id(self) -> Option<i64> {
        match self {
            RunnerOwner::Global => None,
            RunnerOwner::Project(id) => Some(id),
        }
    }
}

#[derive(sqlx::FromRow)]
struct RunnerRow {
    id: i64,
    project_id: Option<i64>,
    name: String,
    webhook: String,
    max_parallel_tasks: i64,
    active: bool,
    tags: String,
    registered: bool,
    touched: Option<Timestamp>,
    cleaning_requested: Option<Timestamp>,
}

impl RunnerRow {
    fn into_runner(self) -> Result<Runner> {
        Ok(Runner {
            id: self.id,
            project_id: self.project_id,
            name: self.name,
            webhook: self.webhook,
            max_parallel_tasks: self.max_parallel_tasks,
            active: self.active,
            is_default: false,
            tags: parse_tags(self.id, &self.tags)?,
            touched: self.touched,
            cleaning_requested: self.cleaning_requested,
            registered: self.registered,
        })
    }
}

fn parse_tags(id: i64, text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("runner {id}: stored tags are not valid: {e}")))
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).expect("a list of strings serializes")
}

fn runners_of(rows: Vec<RunnerRow>) -> Result<Vec<Runner>> {
    rows.into_iter().map(RunnerRow::into_runner).collect()
}

/// The registration token's row, read before it is consumed.
#[derive(sqlx::FromRow)]
struct PendingRegistration {
    id: i64,
    registration_expires: Option<Timestamp>,
}

impl Store {
    /// The owner's runners, by id.
    pub async fn runners(&self, owner: RunnerOwner) -> Result<Vec<Runner>> {
        const SQL: &str = concatcp!(
            "SELECT ",
            RUNNER_COLUMNS,
            " FROM runners WHERE ",
            OWNED_BY,
            " ORDER BY id"
        );
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, RunnerRow>(SQL)
            .bind(owner.key())
            .fetch_all(pool)
            .await)?;
        runners_of(rows)
    }

    /// What a project's runner list shows: the project's runners, then the global runners that
    /// have tags (which the project's templates may ask for), each by id.
    pub async fn runners_for_project(&self, project_id: ProjectId) -> Result<Vec<Runner>> {
        const SQL: &str = concatcp!(
            "SELECT ",
            RUNNER_COLUMNS,
            " FROM runners
             WHERE project_id = $1 OR (project_id IS NULL AND tags <> '[]')
             ORDER BY CASE WHEN project_id IS NULL THEN 1 ELSE 0 END, id"
        );
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, RunnerRow>(SQL)
            .bind(project_id)
            .fetch_all(pool)
            .await)?;
        runners_of(rows)
    }

    /// One of the owner's runners.
    pub async fn runner(&self, owner: RunnerOwner, id: i64) -> Result<Runner> {
        const SQL: &str = concatcp!(
            "SELECT ",
            RUNNER_COLUMNS,
            " FROM runners WHERE ",
            OWNED_BY,
            " AND id = $2"
        );
        with_db!(self, read, |pool| sqlx::query_as::<_, RunnerRow>(SQL)
            .bind(owner.key())
            .bind(id)
            .fetch_one(pool)
            .await)?
        .into_runner()
    }

    /// Any runner, global or a project's (for whoever hands out work).
    pub async fn runner_by_id(&self, id: i64) -> Result<Runner> {
        const SQL: &str = concatcp!("SELECT ", RUNNER_COLUMNS, " FROM runners WHERE id = $1");
        with_db!(self, read, |pool| sqlx::query_as::<_, RunnerRow>(SQL)
            .bind(id)
            .fetch_one(pool)
            .await)?
        .into_runner()
    }

    /// Creates a runner. `registered`: it gets a token, returned here and never again, and is
    /// active unless `fields.active` says otherwise; not registered: no credential at all, and
    /// inactive until it registers (see [`Store::new_runner_registration_token`]).
    pub async fn create_runner(
        &self,
        owner: RunnerOwner,
        fields: &RunnerFields,
        registered: bool,
    ) -> Result<(Runner, Option<String>)> {
        let token = registered.then(token::generate);
        let active = registered && fields.active.unwrap_or(true);
        const SQL: &str = concatcp!(
            "INSERT INTO runners (project_id, name, webhook, max_parallel_tasks, active, tags,
                                  token_hash, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING ",
            RUNNER_COLUMNS
        );
        let row = with_db!(self, write, |pool| sqlx::query_as::<_, RunnerRow>(SQL)
            .bind(owner.project_id())
            .bind(&fields.name)
            .bind(&fields.webhook)
            .bind(fields.max_parallel_tasks)
            .bind(active)
            .bind(tags_json(&fields.tags))
            .bind(token.as_deref().map(token::digest))
            .bind(Timestamp::now())
            .fetch_one(pool)
            .await)?;
        Ok((row.into_runner()?, token))
    }

    /// Changes a runner's settings; `fields.active` `None` keeps its state. An unregistered
    /// runner stays inactive whatever is asked.
    pub async fn update_runner(
        &self,
        owner: RunnerOwner,
        id: i64,
        fields: &RunnerFields,
    ) -> Result<()> {
        const SQL: &str = concatcp!(
            "UPDATE runners SET name = $3, webhook = $4, max_parallel_tasks = $5, tags = $6,
                    active = (COALESCE($7, active) AND token_hash IS NOT NULL)
             WHERE ",
            OWNED_BY,
            " AND id = $2"
        );
        let done = with_db!(self, write, |pool| sqlx::query(SQL)
            .bind(owner.key())
            .bind(id)
            .bind(&fields.name)
            .bind(&fields.webhook)
            .bind(fields.max_parallel_tasks)
            .bind(tags_json(&fields.tags))
            .bind(fields.active)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// Turns a runner on or off. An unregistered runner stays off.
    pub async fn set_runner_active(&self, owner: RunnerOwner, id: i64, active: bool) -> Result<()> {
        const SQL: &str = concatcp!(
            "UPDATE runners SET active = ($3 AND token_hash IS NOT NULL)
             WHERE ",
            OWNED_BY,
            " AND id = $2"
        );
        let done = with_db!(self, write, |pool| sqlx::query(SQL)
            .bind(owner.key())
            .bind(id)
            .bind(active)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// Asks the runner to clear its cache: sets `cleaning_requested`.
    pub async fn request_runner_cleaning(
        &self,
        owner: RunnerOwner,
        id: i64,
        now: Timestamp,
    ) -> Result<()> {
        const SQL: &str = concatcp!(
            "UPDATE runners SET cleaning_requested = $3 WHERE ",
            OWNED_BY,
            " AND id = $2"
        );
        let done = with_db!(self, write, |pool| sqlx::query(SQL)
            .bind(owner.key())
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// Deletes a runner; the tasks it ran keep their history without it.
    pub async fn delete_runner(&self, owner: RunnerOwner, id: i64) -> Result<()> {
        const SQL: &str = concatcp!("DELETE FROM runners WHERE ", OWNED_BY, " AND id = $2");
        let done = with_db!(self, write, |pool| sqlx::query(SQL)
            .bind(owner.key())
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// A new one-time registration token for an unregistered runner, good for
    /// [`REGISTRATION_TOKEN_LIFETIME_SECS`]; it replaces any earlier one. A registered runner
    /// is [`StoreError::Invalid`].
    pub async fn new_runner_registration_token(
        &self,
        owner: RunnerOwner,
        id: i64,
        now: Timestamp,
    ) -> Result<RunnerRegistrationToken> {
        let registration_token = token::generate();
        let expires =
            Timestamp(now.0 + chrono::Duration::seconds(REGISTRATION_TOKEN_LIFETIME_SECS));
        const SELECT: &str = concatcp!(
            "SELECT token_hash IS NOT NULL FROM runners WHERE ",
            OWNED_BY,
            " AND id = $2"
        );
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let registered: bool = sqlx::query_scalar(SELECT)
                .bind(owner.key())
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            if registered {
                return Err(StoreError::Invalid(
                    "the runner is registered already; unregister it first".into(),
                ));
            }
            let done = sqlx::query(
                "UPDATE runners SET registration_token_hash = $1, registration_expires = $2
                     WHERE id = $3 AND token_hash IS NULL",
            )
            .bind(token::digest(&registration_token))
            .bind(expires)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            found(done)?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(RunnerRegistrationToken {
            registration_token,
            runner_id: id,
            project_id: owner.project_id(),
        })
    }

    /// Registers the runner a one-time registration token was made for: consumes the token
    /// (a second use, even at the same moment, is [`StoreError::NotFound`]), gives the runner a
    /// new token, activates it and applies what the runner sent. Returns the runner and its
    /// token. An unknown or used token is [`StoreError::NotFound`], an expired one
    /// [`StoreError::Invalid`] (and is forgotten).
    pub async fn register_runner(
        &self,
        registration_token: &str,
        fields: &RegistrationFields,
    ) -> Result<(Runner, String)> {
        let registration_digest = token::digest(registration_token);
        let runner_token = token::generate();
        let now = Timestamp::now();
        let id = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let pending = sqlx::query_as::<_, PendingRegistration>(
                "SELECT id, registration_expires FROM runners
                     WHERE registration_token_hash = $1",
            )
            .bind(&registration_digest)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
            if pending.registration_expires.is_none_or(|t| t <= now) {
                sqlx::query(
                    "UPDATE runners SET registration_token_hash = NULL,
                                registration_expires = NULL
                         WHERE id = $1 AND registration_token_hash = $2",
                )
                .bind(pending.id)
                .bind(&registration_digest)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Err(StoreError::Invalid(
                    "the registration token has expired; ask for a new one".into(),
                ));
            }
            // Conditional on the token still being there: of two registrations racing
            // with the same token, the second changes no row.
            let done = sqlx::query(
                "UPDATE runners SET token_hash = $1, registration_token_hash = NULL,
                            registration_expires = NULL, active = TRUE,
                            webhook = COALESCE($2, webhook),
                            max_parallel_tasks = COALESCE($3, max_parallel_tasks)
                     WHERE id = $4 AND registration_token_hash = $5",
            )
            .bind(token::digest(&runner_token))
            .bind(fields.webhook.as_deref())
            .bind(fields.max_parallel_tasks)
            .bind(pending.id)
            .bind(&registration_digest)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            found(done)?;
            tx.commit().await?;
            Ok::<_, StoreError>(pending.id)
        })?;
        Ok((self.runner_by_id(id).await?, runner_token))
    }

    /// The runner holding `token` (its `X-Runner-Token`), active or not.
    pub async fn runner_by_token(&self, token: &str) -> Result<Option<Runner>> {
        const SQL: &str = concatcp!(
            "SELECT ",
            RUNNER_COLUMNS,
            " FROM runners WHERE token_hash = $1"
        );
        let row = with_db!(self, read, |pool| sqlx::query_as::<_, RunnerRow>(SQL)
            .bind(token::digest(token))
            .fetch_optional(pool)
            .await)?;
        row.map(RunnerRow::into_runner).transpose()
    }

    /// Forgets the runner's credential: it is unregistered and inactive until it registers
    /// again with a new registration token.
    pub async fn unregister_runner(&self, id: i64) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "UPDATE runners SET token_hash = NULL, active = FALSE WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// Notes that the runner contacted the server at `now`.
    pub async fn touch_runner(&self, id: i64, now: Timestamp) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "UPDATE runners SET touched = $1 WHERE id = $2"
        )
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// The tags runners carry, by tag, with how many runners carry each: for
    /// [`RunnerOwner::Global`] those of the global runners, for a project those of its own
    /// runners and of the global runners (all of which its tasks may use).
    pub async fn runner_tags(&self, owner: RunnerOwner) -> Result<Vec<RunnerTag>> {
        let rows: Vec<(i64, String)> = with_db!(self, read, |pool| sqlx::query_as(
            "SELECT id, tags FROM runners WHERE project_id IS NULL OR project_id = $1",
        )
        .bind(owner.key())
        .fetch_all(pool)
        .await)?;
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for (id, text) in rows {
            for tag in parse_tags(id, &text)? {
                *counts.entry(tag).or_default() += 1;
            }
        }
        Ok(counts
            .into_iter()
            .map(|(tag, number_of_runners)| RunnerTag {
                tag,
                number_of_runners,
            })
            .collect())
    }
}
