//! A tenant's outbound webhook endpoints: where its Pix events are delivered.
//! Routing by flow and entity (with fallback) is the delivery engine's concern; this is storage.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::sealed::Sealer;
use crate::{Store, StoreError, StoreResult, on_pool, parse_uuid};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    /// `None` matches every flow (the tenant's default endpoint).
    pub flow_type: Option<String>,
    /// `None` matches every entity of the flow.
    pub entity_type: Option<String>,
    pub enabled: bool,
    /// Standard Webhooks signing secret (`whsec_…`), in the clear here; stored sealed.
    pub secret: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewWebhookEndpoint {
    pub url: String,
    pub flow_type: Option<String>,
    pub entity_type: Option<String>,
    pub enabled: bool,
    pub secret: String,
    pub description: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    tenant_id: String,
    url: String,
    flow_type: Option<String>,
    entity_type: Option<String>,
    enabled: bool,
    secret: String,
    description: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The associated data a secret is sealed with: a sealed value moved to another row won't open.
pub(crate) fn secret_context(endpoint_id: &str) -> String {
    format!("webhook_endpoints.secret:{endpoint_id}")
}

impl Row {
    fn open(self, sealer: &Sealer) -> StoreResult<WebhookEndpoint> {
        let secret = sealer
            .open_or_plain(&self.secret, &secret_context(&self.id))
            .map_err(|e| StoreError::Corrupt(format!("webhook endpoint {} secret: {e}", self.id)))?;
        WebhookEndpoint::try_from(Row { secret, ..self })
    }
}

impl TryFrom<Row> for WebhookEndpoint {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<Self> {
        Ok(WebhookEndpoint {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            url: r.url,
            flow_type: r.flow_type,
            entity_type: r.entity_type,
            enabled: r.enabled,
            secret: r.secret,
            description: r.description,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str =
    "id, tenant_id, url, flow_type, entity_type, enabled, secret, description, created_at, updated_at";

impl Store {
    pub async fn create_webhook_endpoint(
        &self,
        tenant: Uuid,
        new: &NewWebhookEndpoint,
        now: DateTime<Utc>,
    ) -> StoreResult<WebhookEndpoint> {
        let id = pix_core::ids::new_id();
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO webhook_endpoints
                    (id, tenant_id, url, flow_type, entity_type, enabled, secret, description, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .bind(id.to_string())
            .bind(tenant.to_string())
            .bind(&new.url)
            .bind(&new.flow_type)
            .bind(&new.entity_type)
            .bind(new.enabled)
            .bind(self.sealer().seal(&new.secret, &secret_context(&id.to_string())))
            .bind(&new.description)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        self.webhook_endpoint(tenant, id).await?.ok_or(StoreError::NotFound)
    }

    /// The endpoint `id` if it belongs to `tenant`; another tenant's endpoint is `None`.
    pub async fn webhook_endpoint(&self, tenant: Uuid, id: Uuid) -> StoreResult<Option<WebhookEndpoint>> {
        let sql = format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2");
        let row: Option<Row> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
        })?;
        row.map(|r| r.open(self.sealer())).transpose()
    }

    /// A page of the tenant's endpoints, oldest first, and the total count.
    pub async fn list_webhook_endpoints(
        &self,
        tenant: Uuid,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<WebhookEndpoint>, i64)> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        );
        let rows: Vec<Row> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant.to_string())
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
        })?;
        let total: i64 = on_pool!(self.db(), pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE tenant_id = $1")
                .bind(tenant.to_string())
                .fetch_one(pool)
                .await
        })?;
        let items = rows.into_iter().map(|r| r.open(self.sealer())).collect::<StoreResult<_>>()?;
        Ok((items, total))
    }

    pub async fn delete_webhook_endpoint(&self, tenant: Uuid, id: Uuid) -> StoreResult<()> {
        let done = on_pool!(self.db(), pool => {
            sqlx::query("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.to_string())
                .bind(id.to_string())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        if done == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Seals every signing secret still stored in plaintext (rows written before sealing
    /// existed). Run once at start-up; idempotent, and safe beside another instance doing the
    /// same (a row is rewritten only if it still holds the plaintext read). Returns how many.
    pub async fn seal_plaintext_webhook_secrets(&self) -> StoreResult<u64> {
        let rows: Vec<(String, String)> = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT id, secret FROM webhook_endpoints WHERE secret NOT LIKE 'v1:%'")
                .fetch_all(pool)
                .await
        })?;
        let mut sealed = 0;
        for (id, plain) in rows {
            let value = self.sealer().seal(&plain, &secret_context(&id));
            sealed += on_pool!(self.db(), pool => {
                sqlx::query("UPDATE webhook_endpoints SET secret = $1 WHERE id = $2 AND secret = $3")
                    .bind(&value)
                    .bind(&id)
                    .bind(&plain)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
        Ok(sealed)
    }
}
