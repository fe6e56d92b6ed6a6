//! Test helpers: a database made for one test, on SQLite (a file in a temporary directory) or
//! PostgreSQL (a database of its own, dropped when the test ends), and a way to run a test on
//! both. The store's own tests use it; `ralf-testkit` builds its servers on it.
//!
//! PostgreSQL tests connect to `RALF_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), create a database of their own and drop it
//! when they end.

pub use ralf_core::database::DatabaseSettings;

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL, as
/// `sqlite::name` and `postgres::name` tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A database made for one test and removed after it.
pub struct TestDatabase {
    pub settings: DatabaseSettings,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

fn pg_admin_url() -> String {
    std::env::var("RALF_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("ralf.db");
                TestDatabase {
                    settings: DatabaseSettings::Sqlite { path },
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let name = format!("ralf_test_{:016x}", rand::random::<u64>());
                let admin = pg_admin_url();
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at {admin} is needed for this test: {e}")
                    });
                sqlx::Executor::execute(
                    &mut conn,
                    sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
                )
                .await
                .expect("create test database");
                let base = admin
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_string())
                    .unwrap_or(admin);
                TestDatabase {
                    settings: DatabaseSettings::Postgres {
                        url: format!("{base}/{name}"),
                    },
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl TestDatabase {
    /// The same database for another server (of a cluster on PostgreSQL): the handle owns
    /// nothing, so dropping it removes nothing; the original removes the database.
    pub fn shared(&self) -> TestDatabase {
        TestDatabase {
            settings: self.settings.clone(),
            _dir: None,
            pg_name: None,
        }
    }

    /// The database URL as `ralf server --db` takes it.
    pub fn url(&self) -> String {
        match &self.settings {
            DatabaseSettings::Sqlite { path } => format!("sqlite://{}", path.display()),
            DatabaseSettings::Postgres { url } => url.clone(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async; a helper thread with its own runtime removes the database.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&pg_admin_url()).await
                {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(sql)).await;
                }
            });
        })
        .join();
    }
}
