//! Users, their login sessions and their API tokens.

use const_format::concatcp;
use ralf_core::api::users::{ApiToken, User};
use ralf_core::{ProjectId, Role, Timestamp};

use crate::projects::Membership;
use crate::{Result, Store, StoreError, audited, found, order_by, with_db};

const USER_COLUMNS: &str = "id, username, name, email, created, admin, external, alert";

/// [`USER_COLUMNS`] of a source aliased `u`.
const USER_COLUMNS_OF_U: &str =
    "u.id, u.username, u.name, u.email, u.created, u.admin, u.external, u.alert";

/// How long a session lives without being used (Semaphore: 7 days).
const SESSION_IDLE_DAYS: i64 = 7;

/// A user about to be created.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    /// A hash from `ralf_core::password::hash`; empty for external users.
    pub password_hash: &'a str,
    pub admin: bool,
    pub external: bool,
    pub alert: bool,
}

/// The editable fields of a user.
pub struct UserUpdate<'a> {
    pub username: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub admin: bool,
    pub alert: bool,
}

/// An API token as stored: its id is the token's digest until the route puts the token in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredApiToken {
    #[sqlx(flatten)]
    pub token: ApiToken,
    /// The token encrypted with the access key; `None` for tokens stored without one.
    pub sealed_id: Option<String>,
}

const TAKEN: &str = "a user with that username or e-mail exists already";

/// A failed insert or update of a user: a login that is taken (a unique index, or the trigger
/// that keeps usernames and e-mails apart, see migration 0005) is a conflict that says so.
fn user_write_error(e: sqlx::Error) -> StoreError {
    // SQLite reports the trigger's refusal as a plain constraint error, with its message.
    let by_trigger = matches!(&e, sqlx::Error::Database(db)
        if db.message().contains("UNIQUE constraint failed: users login"));
    if by_trigger {
        return StoreError::Conflict(TAKEN.into());
    }
    StoreError::from(e).conflict_as(TAKEN)
}

impl Store {
    pub async fn create_user(&self, new: &NewUser<'_>) -> Result<User> {
        const SQL: &str = concatcp!(
            "INSERT INTO users (username, name, email, password, admin, external, alert, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
            USER_COLUMNS
        );
        with_db!(self, write, |pool| sqlx::query_as::<_, User>(SQL)
            .bind(new.username)
            .bind(new.name)
            .bind(new.email)
            .bind(new.password_hash)
            .bind(new.admin)
            .bind(new.external)
            .bind(new.alert)
            .bind(Timestamp::now())
            .fetch_one(pool)
            .await)
        .map_err(user_write_error)
    }

    pub async fn user(&self, id: i64) -> Result<User> {
        const SQL: &str = concatcp!("SELECT ", USER_COLUMNS, " FROM users WHERE id = $1");
        Ok(with_db!(self, read, |pool| sqlx::query_as::<_, User>(SQL)
            .bind(id)
            .fetch_one(pool)
            .await)?)
    }

    /// The user whose username or e-mail is `login` (case-insensitive), with their password hash.
    pub async fn user_for_login(&self, login: &str) -> Result<Option<(User, String)>> {
        const SQL: &str = concatcp!(
            "SELECT ",
            USER_COLUMNS,
            ", password FROM users
             WHERE LOWER(username) = LOWER($1) OR LOWER(email) = LOWER($1)
             ORDER BY id LIMIT 1"
        );
        let row = with_db!(self, read, |pool| {
            let row = sqlx::query(SQL).bind(login).fetch_optional(pool).await?;
            match row {
                None => None,
                Some(row) => {
                    use sqlx::{FromRow, Row};
                    Some((User::from_row(&row)?, row.try_get::<String, _>("password")?))
                }
            }
        });
        Ok(row)
    }

    pub async fn users(&self, sort: Option<&str>, descending: bool) -> Result<Vec<User>> {
        let order = order_by(
            &[
                ("username", "username"),
                ("name", "name"),
                ("email", "email"),
                ("created", "created"),
            ],
            sort,
            descending,
        )?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users {order}");
        Ok(with_db!(self, read, |pool| sqlx::query_as::<_, User>(
            audited(&sql)
        )
        .fetch_all(pool)
        .await)?)
    }

    pub async fn count_users(&self) -> Result<i64> {
        Ok(with_db!(self, read, |pool| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM users"
        )
        .fetch_one(pool)
        .await)?)
    }

    pub async fn update_user(&self, id: i64, update: &UserUpdate<'_>) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "UPDATE users SET username = $1, name = $2, email = $3, admin = $4, alert = $5 WHERE id = $6",
        )
        .bind(update.username)
        .bind(update.name)
        .bind(update.email)
        .bind(update.admin)
        .bind(update.alert)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(user_write_error)?;
        found(done)
    }

    pub async fn set_password(&self, id: i64, password_hash: &str) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "UPDATE users SET password = $1 WHERE id = $2"
        )
        .bind(password_hash)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    pub async fn delete_user(&self, id: i64) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "DELETE FROM users WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    // ----- sessions -----

    /// Records a session whose cookie secret has the digest `secret_digest`.
    pub async fn create_session(
        &self,
        user_id: i64,
        secret_digest: &str,
        ip: &str,
        user_agent: &str,
    ) -> Result<()> {
        let now = Timestamp::now();
        with_db!(self, write, |pool| sqlx::query(
            "INSERT INTO sessions (user_id, secret, created, last_active, ip, user_agent)
             VALUES ($1, $2, $3, $3, $4, $5)",
        )
        .bind(user_id)
        .bind(secret_digest)
        .bind(now)
        .bind(ip)
        .bind(user_agent)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The user of a live session, marking the session as used now. Sessions idle for more
    /// than seven days, older than `lifetime`, or logged out, find nobody.
    pub async fn session_user(
        &self,
        secret_digest: &str,
        lifetime: std::time::Duration,
    ) -> Result<Option<User>> {
        let now = Timestamp::now();
        let oldest = Timestamp(now.0 - chrono::Duration::days(SESSION_IDLE_DAYS));
        // A century is forever here, and keeps the bound a time both databases can store.
        let lifetime = chrono::Duration::from_std(lifetime)
            .unwrap_or(chrono::Duration::MAX)
            .min(chrono::Duration::days(36_500));
        let born_after = Timestamp(now.0 - lifetime);
        const SQL: &str = concatcp!(
            "SELECT ",
            USER_COLUMNS_OF_U,
            " FROM users u JOIN sessions s ON s.user_id = u.id
             WHERE s.secret = $1 AND NOT s.expired AND s.last_active > $2 AND s.created > $3"
        );
        let user = with_db!(self, read, |pool| sqlx::query_as::<_, User>(SQL)
            .bind(secret_digest)
            .bind(oldest)
            .bind(born_after)
            .fetch_optional(pool)
            .await)?;
        if user.is_some() {
            with_db!(self, write, |pool| sqlx::query(
                "UPDATE sessions SET last_active = $1 WHERE secret = $2"
            )
            .bind(now)
            .bind(secret_digest)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        }
        Ok(user)
    }

    pub async fn expire_session(&self, secret_digest: &str) -> Result<()> {
        with_db!(self, write, |pool| sqlx::query(
            "UPDATE sessions SET expired = TRUE WHERE secret = $1"
        )
        .bind(secret_digest)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends every session of the user except the one whose secret has the digest `keep`
    /// (after a password change: whoever knew the old password is logged out).
    pub async fn expire_sessions_of(&self, user_id: i64, keep: Option<&str>) -> Result<u64> {
        Ok(with_db!(self, write, |pool| sqlx::query(
            "UPDATE sessions SET expired = TRUE
                     WHERE user_id = $1 AND NOT expired AND secret <> $2",
        )
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?)
    }

    // ----- API tokens -----

    /// Stores a token under its digest; `sealed_id` is the token encrypted with the access key
    /// (what lists show as its id), if there is a key.
    pub async fn create_api_token(
        &self,
        user_id: i64,
        token_digest: &str,
        sealed_id: Option<&str>,
        name: &str,
    ) -> Result<StoredApiToken> {
        Ok(with_db!(self, write, |pool| sqlx::query_as::<
            _,
            StoredApiToken,
        >(
            "INSERT INTO api_tokens (id, user_id, name, created, sealed_id)
             VALUES ($1, $2, $3, $4, $5)
             RETURNING id, created, expired, user_id, name, sealed_id",
        )
        .bind(token_digest)
        .bind(user_id)
        .bind(name)
        .bind(Timestamp::now())
        .bind(sealed_id)
        .fetch_one(pool)
        .await)?)
    }

    pub async fn api_tokens(&self, user_id: i64) -> Result<Vec<StoredApiToken>> {
        Ok(with_db!(self, read, |pool| sqlx::query_as::<
            _,
            StoredApiToken,
        >(
            "SELECT id, created, expired, user_id, name, sealed_id FROM api_tokens
             WHERE user_id = $1 ORDER BY created, id",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await)?)
    }

    /// The owner of an unexpired token with this digest.
    pub async fn api_token_user(&self, token_digest: &str) -> Result<Option<User>> {
        const SQL: &str = concatcp!(
            "SELECT ",
            USER_COLUMNS_OF_U,
            " FROM users u JOIN api_tokens t ON t.user_id = u.id WHERE t.id = $1 AND NOT t.expired"
        );
        Ok(with_db!(self, read, |pool| sqlx::query_as::<_, User>(SQL)
            .bind(token_digest)
            .fetch_optional(pool)
            .await)?)
    }

    /// The owner of an unexpired token with this digest and their standing in a project, in
    /// one query: what a project's route called with a token needs ([`Store::api_token_user`]
    /// and [`Store::membership`] together). The standing is `None` when there is no such
    /// project.
    pub async fn api_token_user_in_project(
        &self,
        token_digest: &str,
        project_id: ProjectId,
    ) -> Result<Option<(User, Option<Membership>)>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: User,
            task_list_version: Option<i64>,
            role: Option<String>,
        }
        const SQL: &str = concatcp!(
            "SELECT ",
            USER_COLUMNS_OF_U,
            ", p.task_list_version, pu.role
             FROM users u JOIN api_tokens t ON t.user_id = u.id
             LEFT JOIN projects p ON p.id = $2
             LEFT JOIN project_users pu ON pu.project_id = p.id AND pu.user_id = u.id
             WHERE t.id = $1 AND NOT t.expired"
        );
        let row = with_db!(self, read, |pool| sqlx::query_as::<_, Row>(SQL)
            .bind(token_digest)
            .bind(project_id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|row| {
            let membership = row.task_list_version.map(|task_list_version| Membership {
                role: row.role.as_deref().and_then(Role::parse),
                task_list_version,
            });
            (row.user, membership)
        }))
    }

    /// Expires one of the user's tokens, named by its digest.
    pub async fn expire_api_token(&self, user_id: i64, token_id: &str) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "UPDATE api_tokens SET expired = TRUE WHERE id = $1 AND user_id = $2",
        )
        .bind(token_id)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }
}

/// A user's own options (`/api/user/options`), each a key and a text value.
impl Store {
    pub async fn user_options(&self, user_id: i64) -> Result<Vec<(String, String)>> {
        Ok(with_db!(self, read, |pool| sqlx::query_as::<
            _,
            (String, String),
        >(
            "SELECT key, value FROM user_options WHERE user_id = $1 ORDER BY key",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await)?)
    }

    /// Stores one option of the user, replacing its value if it has one.
    pub async fn set_user_option(&self, user_id: i64, key: &str, value: &str) -> Result<()> {
        with_db!(self, write, |pool| sqlx::query(
            "INSERT INTO user_options (user_id, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(user_id)
        .bind(key)
        .bind(value)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aliased_user_columns_are_the_user_columns() {
        let aliased: Vec<String> = USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect();
        assert_eq!(USER_COLUMNS_OF_U, aliased.join(", "));
    }
}
