//! One connection API over SQLite (embedded default) and PostgreSQL (production).
//!
//! Repositories write each query once with `$N` placeholders (both drivers accept them) and run
//! it through [`on_pool!`] or [`on_tx!`], which expand the same expression for either backend.
//! Timestamps are always bound from Rust (never `now()` in SQL) so the clock is injectable and
//! both backends behave the same.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Connection settings that matter for both backends.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout`; keeps a stuck query below the HTTP request budget.
    pub statement_timeout: Duration,
    /// PostgreSQL schema to use (created if missing); isolated test runs use one each.
    pub schema: Option<String>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            schema: None,
        }
    }
}

/// A pool on either backend. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction on either backend; dropped without `commit` it rolls back.
#[derive(Debug)]
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$c` bound to the pool of whichever backend `$db` is.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $c:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($c) => $body,
            $crate::db::Db::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the connection of the transaction `$tx`.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::db::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

impl Db {
    /// Connects to `sqlite://path` / `sqlite::memory:` or `postgres://…`.
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Db, sqlx::Error> {
        if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(options.acquire_timeout);
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut connect = PgConnectOptions::from_str(url)?
                .options([("statement_timeout", format!("{}ms", options.statement_timeout.as_millis()))]);
            if let Some(schema) = &options.schema {
                // Create the schema with a one-off connection, then pin every pooled one to it.
                let admin = PgPoolOptions::new().max_connections(1).connect_with(connect.clone()).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                connect = connect.options([("search_path", schema.as_str())]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(sqlx::Error::Configuration("database url must start with sqlite: or postgres:".into()))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Db::Sqlite(_) => &SQLITE_MIGRATIONS,
            Db::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        on_pool!(self, pool => self.migrator().run(pool).await)
    }

    /// Versions this binary knows that the database has not applied yet (empty when up to date).
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, sqlx::Error> {
        let applied: Vec<i64> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(pool)
                .await
        })
        .or_else(|e| if is_undefined_table(&e) { Ok(Vec::new()) } else { Err(e) })?;
        Ok(self.migrator().iter().map(|m| m.version).filter(|v| !applied.contains(v)).collect())
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected())).map(|_| ())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

impl Tx {
    pub async fn commit(self) -> crate::StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

fn is_undefined_table(e: &sqlx::Error) -> bool {
    // PostgreSQL 42P01; SQLite reports "no such table".
    e.as_database_error().is_some_and(|d| d.code().as_deref() == Some("42P01") || d.message().contains("no such table"))
}

/// True when `e` is a unique-constraint violation (23505 on PostgreSQL, 2067/1555 on SQLite).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| matches!(d.kind(), sqlx::error::ErrorKind::UniqueViolation))
}

/// Notifications from PostgreSQL `LISTEN` on one channel. The listening connection is taken from
/// the pool and kept: it counts against `max_connections`.
pub struct Notifications(sqlx::postgres::PgListener);

/// What [`Notifications::recv`] saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Notified {
    /// A notification with this payload.
    Payload(String),
    /// The connection was lost and has been re-established: notifications sent in between are
    /// gone, so the caller must re-read whatever they would have announced.
    Reconnected,
}

impl Notifications {
    /// The next notification, or word that the connection was replaced. An error (the database
    /// unreachable) comes back at once: callers wait before calling again.
    pub async fn recv(&mut self) -> Result<Notified, sqlx::Error> {
        Ok(match self.0.try_recv().await? {
            Some(n) => Notified::Payload(n.payload().to_owned()),
            None => Notified::Reconnected,
        })
    }
}

impl Db {
    /// Listens on `channel`; `None` on SQLite, which has no notifications (callers poll).
    pub async fn listen(&self, channel: &str) -> Result<Option<Notifications>, sqlx::Error> {
        match self {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(channel).await?;
                Ok(Some(Notifications(listener)))
            }
        }
    }
}
