//! What the store's own tests share: a user and projects made through the store, and test-made
//! SQL run on a connection of its own (for rows the store has no method to make).

use ralf_store::projects::ProjectFields;
use ralf_store::users::NewUser;
use ralf_store::{DatabaseSettings, Store};

/// A non-admin user `username`, whose name is the same capitalised (`ops` is "Ops"); returns
/// its id.
pub async fn user(store: &Store, username: &str) -> i64 {
    let mut name = username.to_string();
    name[..1].make_ascii_uppercase();
    store
        .create_user(&NewUser {
            username,
            name: &name,
            email: &format!("{username}@example.test"),
            password_hash: "",
            admin: false,
            external: false,
            alert: false,
        })
        .await
        .unwrap()
        .id
}

/// A project named `name` owned by `owner`; returns its id.
pub async fn project(store: &Store, owner: i64, name: &str) -> i64 {
    store
        .create_project(
            &ProjectFields {
                name,
                alert: false,
                alert_chat: None,
                max_parallel_tasks: 0,
                kind: "",
            },
            owner,
        )
        .await
        .unwrap()
        .id
}

/// Runs test-made SQL (constants only) on a connection of its own; returns the first column.
pub async fn raw_scalar(settings: &DatabaseSettings, sql: &str) -> i64 {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    match settings {
        DatabaseSettings::Sqlite { path } => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        DatabaseSettings::Postgres { url } => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    }
}
