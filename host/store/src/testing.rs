//! Test databases: a fresh SQLite file, and (when `PIX_TEST_DATABASE_URL` is set) a fresh
//! PostgreSQL schema per test, dropped afterwards even if the test panics.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::{DbOptions, Store};

/// The environment variable that enables the PostgreSQL half of the storage tests.
pub const PG_ENV: &str = "PIX_TEST_DATABASE_URL";

/// A migrated store that cleans up after itself when dropped.
pub struct TestStore {
    pub store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code, reason = "held so the directory outlives the pool")] tempfile::TempDir),
    Postgres {
        url: String,
        schema: String,
    },
    /// A database of its own: `DROP DATABASE` on the server at `url`.
    Database {
        url: String,
        name: String,
    },
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestStore {
    /// A migrated SQLite database in a temporary directory.
    pub async fn sqlite() -> TestStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = Store::connect(&url, &DbOptions::default()).await.expect("open sqlite");
        store.migrate().await.expect("migrate sqlite");
        TestStore { store, cleanup: Cleanup::Sqlite(dir) }
    }

    /// A migrated PostgreSQL schema of its own, or `None` when `PIX_TEST_DATABASE_URL` is unset.
    /// Under CI (`CI` set) a missing variable is an error, so PostgreSQL coverage cannot vanish.
    pub async fn postgres() -> Option<TestStore> {
        let Ok(url) = std::env::var(PG_ENV) else {
            assert!(std::env::var_os("CI").is_none(), "{PG_ENV} must be set in CI");
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                eprintln!("{PG_ENV} not set: PostgreSQL storage tests skipped");
            }
            return None;
        };
        let schema = format!("pix_test_{}", uuid::Uuid::new_v4().simple());
        let options = DbOptions { schema: Some(schema.clone()), max_connections: 8, ..Default::default() };
        let store = Store::connect(&url, &options).await.expect("connect postgres");
        store.migrate().await.expect("migrate postgres");
        Some(TestStore { store, cleanup: Cleanup::Postgres { url, schema } })
    }

    /// A migrated PostgreSQL database of its own (not just a schema), for tests that read
    /// per-database statistics such as `pg_stat_database.xact_commit`. `None` when
    /// `PIX_TEST_DATABASE_URL` is unset.
    pub async fn postgres_database() -> Option<TestStore> {
        let url = std::env::var(PG_ENV).ok()?;
        let name = format!("pix_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&url).await.expect("connect postgres");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let (server, _) = url.rsplit_once('/').expect("PIX_TEST_DATABASE_URL names a database");
        let own = format!("{server}/{name}");
        let store = Store::connect(&own, &DbOptions::default()).await.expect("connect test database");
        store.migrate().await.expect("migrate postgres");
        Some(TestStore { store, cleanup: Cleanup::Database { url, name } })
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let (url, statement) = match &self.cleanup {
            Cleanup::Sqlite(_) => return,
            Cleanup::Postgres { url, schema } => (url.clone(), format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")),
            Cleanup::Database { url, name } => {
                (url.clone(), format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            }
        };
        // Drop may run inside a runtime (or during a panic): clean up on a thread of our own.
        let joined = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let pool = sqlx::PgPool::connect(&url).await?;
                sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await?;
                pool.close().await;
                Ok::<_, sqlx::Error>(())
            })
            .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(joined, Ok(Ok(()))) {
            eprintln!("could not drop test schema: {joined:?}");
        }
    }
}

/// Defines `sqlite_<name>` and `postgres_<name>` tests running one async check on each backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        pub mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::testing::TestStore::sqlite().await;
                    super::$name(&db).await;
                }
            )*
        }
        pub mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::testing::TestStore::postgres().await else { return };
                    super::$name(&db).await;
                }
            )*
        }
    };
}
