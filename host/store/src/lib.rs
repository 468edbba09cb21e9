//! Persistence for pix-host: one repository API over SQLite (the embedded default) and
//! PostgreSQL (production). Every tenant-owned query takes the tenant id; there is no
//! repository method that can read another tenant's rows.

pub mod accounts;
pub mod cautionary_blocks;
pub mod collections;
pub mod db;
pub mod deliveries;
pub mod dict;
pub mod events;
pub mod idempotency;
pub mod inbound;
pub mod inbound_secrets;
pub mod internal_reports;
pub mod jobs;
pub mod limits;
pub mod policies;
mod query;
pub mod recoveries;
pub mod refunds;
pub mod routing;
pub mod sealed;
mod short_cache;
pub mod tenants;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod transfers;
pub mod upstream_calls;
pub mod webhook_endpoints;

/// Bearer credentials: issue (with expiry), resolve, list, expire, revoke.
pub mod credentials;

pub use db::{Backend, Db, DbOptions, Notifications, Notified, Tx};
pub use short_cache::DEFAULT_CREDENTIAL_TTL;

/// Storage failures. Callers map `NotFound`/`Conflict` to 4xx and everything else to a logged 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The repositories, over a shared pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    credentials: short_cache::ShortCache<String, tenants::Credential>,
    tenants: short_cache::ShortCache<uuid::Uuid, tenants::Tenant>,
    /// Seals secrets written to the database (see `sealed`); an ephemeral key until
    /// [`Store::with_sealer`] sets the configured one.
    sealer: std::sync::Arc<sealed::Sealer>,
}

impl Store {
    pub async fn connect(url: &str, options: &DbOptions) -> StoreResult<Store> {
        Ok(Store::new(Db::connect(url, options).await?))
    }

    pub fn new(db: Db) -> Store {
        Store::new_with_ttl(db, DEFAULT_CREDENTIAL_TTL)
    }

    fn new_with_ttl(db: Db, ttl: std::time::Duration) -> Store {
        Store {
            db,
            credentials: short_cache::ShortCache::new(ttl),
            tenants: short_cache::ShortCache::new(ttl),
            sealer: std::sync::Arc::new(sealed::Sealer::ephemeral()),
        }
    }

    /// Sets how long resolved bearer credentials and tenant rows are kept (zero: never kept).
    /// Clones made afterwards share the caches.
    pub fn with_credential_ttl(self, ttl: std::time::Duration) -> Store {
        Store { sealer: self.sealer, ..Store::new_with_ttl(self.db, ttl) }
    }

    /// Seals secrets at rest under `sealer` (the configured `security.secret_key`). Every
    /// process sharing a database must use the same key.
    pub fn with_sealer(self, sealer: sealed::Sealer) -> Store {
        Store { sealer: std::sync::Arc::new(sealer), ..self }
    }

    pub(crate) fn sealer(&self) -> &sealed::Sealer {
        &self.sealer
    }

    /// A key derived from the sealing key for `purpose` (see [`sealed::Sealer::derive`]).
    pub fn derived_key(&self, purpose: &str) -> [u8; 32] {
        self.sealer.derive(purpose)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        Ok(self.db.migrate().await?)
    }

    /// Ready means reachable and fully migrated; the error says which of the two failed (for the
    /// log: it may carry database details, so it is not for the public).
    pub async fn readiness(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| format!("database unreachable: {e}"))?;
        let pending = self.db.pending_migrations().await.map_err(|e| format!("cannot read migrations: {e}"))?;
        if pending.is_empty() { Ok(()) } else { Err(format!("migrations not applied: {pending:?}")) }
    }

    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(self.db.begin().await?)
    }
}

pub(crate) fn parse_uuid(s: &str) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("bad uuid {s:?}: {e}")))
}
