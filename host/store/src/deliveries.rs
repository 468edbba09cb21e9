//! Outbound webhook events as routed, and their deliveries: one row per (event, endpoint) with
//! its own retry state, so each endpoint retries independently.
//!
//! Deliveries are claimed under a lease like jobs (`jobs.rs`), with two extra rules in the claim:
//! deliveries of one entity to one endpoint go out one at a time, oldest first (a retrying
//! delivery holds back the later ones), and an endpoint never has more than `per_endpoint`
//! deliveries in flight. Outcomes are fenced by `locked_by`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Backend, Store, StoreError, StoreResult, Tx, on_pool, on_tx, parse_uuid};

/// How the engine routed an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventRouting {
    /// At least one delivery was created.
    Routed,
    /// The tenant has no endpoint for this flow and entity: kept and counted, not an error.
    NotRouted,
    /// The most specific matching endpoints are all disabled: delivery is switched off.
    Disabled,
}

impl EventRouting {
    pub fn as_str(self) -> &'static str {
        match self {
            EventRouting::Routed => "routed",
            EventRouting::NotRouted => "not_routed",
            EventRouting::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<EventRouting> {
        Some(match s {
            "routed" => EventRouting::Routed,
            "not_routed" => EventRouting::NotRouted,
            "disabled" => EventRouting::Disabled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or in flight).
    Pending,
    Delivered,
    /// Dead-lettered: attempts exhausted, endpoint gone (410), deleted or disabled.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

/// An endpoint that may receive an event of some flow and entity (routing input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteCandidate {
    pub id: Uuid,
    pub flow_type: Option<String>,
    pub entity_type: Option<String>,
    pub enabled: bool,
}

/// An event to record with its routing outcome.
#[derive(Debug, Clone)]
pub struct NewWebhookEvent<'a> {
    /// The `webhook-id`.
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub flow_type: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    /// The exact JSON body every attempt sends.
    pub body: &'a str,
    pub occurred_at: DateTime<Utc>,
}

/// A recorded event, without its body (which may carry personal data).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub flow_type: String,
    pub entity_type: String,
    pub entity_id: String,
    pub routing: EventRouting,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: String,
    tenant_id: String,
    flow_type: String,
    entity_type: String,
    entity_id: String,
    routing: String,
    occurred_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for WebhookEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> StoreResult<Self> {
        Ok(WebhookEvent {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            routing: EventRouting::parse(&r.routing).ok_or_else(|| corrupt("event routing", &r.routing))?,
            flow_type: r.flow_type,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            occurred_at: r.occurred_at,
            created_at: r.created_at,
        })
    }
}

/// What [`DeliveryTarget::secret`] holds when the stored secret cannot be opened (another key,
/// tampered row): not a usable `whsec_` secret, so nothing is signed with it.
pub const UNREADABLE_SECRET: &str = "!unreadable";

/// Where a claimed delivery goes. `None` in [`ClaimedDelivery::target`] when the endpoint was deleted.
#[derive(Debug, Clone)]
pub struct DeliveryTarget {
    pub url: String,
    pub secret: String,
    pub enabled: bool,
}

/// A delivery claimed for one attempt.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub event_id: Uuid,
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub flow_type: String,
    pub entity_type: String,
    /// Attempts made before this one in the current round (reset by a redelivery).
    pub attempts: i32,
    pub body: String,
    pub target: Option<DeliveryTarget>,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    event_id: String,
    tenant_id: String,
    endpoint_id: String,
    flow_type: String,
    entity_type: String,
    attempts: i32,
    body: String,
    url: Option<String>,
    secret: Option<String>,
    enabled: Option<bool>,
}

impl TryFrom<ClaimedRow> for ClaimedDelivery {
    type Error = StoreError;
    fn try_from(r: ClaimedRow) -> StoreResult<Self> {
        let target = match (r.url, r.secret, r.enabled) {
            (Some(url), Some(secret), Some(enabled)) => Some(DeliveryTarget { url, secret, enabled }),
            _ => None,
        };
        Ok(ClaimedDelivery {
            id: r.id,
            event_id: parse_uuid(&r.event_id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            endpoint_id: parse_uuid(&r.endpoint_id)?,
            flow_type: r.flow_type,
            entity_type: r.entity_type,
            attempts: r.attempts,
            body: r.body,
            target,
        })
    }
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptOutcome<'a> {
    pub delivered: bool,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why it failed (no URL, no response body: they may carry secrets or personal data).
    pub error: Option<&'a str>,
    pub duration: Duration,
    /// For a failure: when to try again; `None` dead-letters the delivery.
    pub retry_at: Option<DateTime<Utc>>,
}

/// A delivery as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: i64,
    pub event_id: Uuid,
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub flow_type: String,
    pub entity_type: String,
    pub entity_id: String,
    pub status: DeliveryStatus,
    /// Attempts in the current round (a redelivery starts a new round).
    pub attempts: i32,
    pub redeliveries: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    event_id: String,
    tenant_id: String,
    endpoint_id: String,
    flow_type: String,
    entity_type: String,
    entity_id: String,
    status: String,
    attempts: i32,
    redeliveries: i32,
    next_attempt_at: DateTime<Utc>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> StoreResult<Self> {
        Ok(Delivery {
            id: r.id,
            event_id: parse_uuid(&r.event_id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            endpoint_id: parse_uuid(&r.endpoint_id)?,
            flow_type: r.flow_type,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            status: DeliveryStatus::parse(&r.status).ok_or_else(|| corrupt("delivery status", &r.status))?,
            attempts: r.attempts,
            redeliveries: r.redeliveries,
            next_attempt_at: r.next_attempt_at,
            last_status_code: r.last_status_code,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            delivered_at: r.delivered_at,
            failed_at: r.failed_at,
        })
    }
}

const DELIVERY_COLUMNS: &str = "d.id, d.event_id, d.tenant_id, d.endpoint_id, e.flow_type, e.entity_type, \
     e.entity_id, d.status, d.attempts, d.redeliveries, d.next_attempt_at, d.last_status_code, d.last_error, \
     d.created_at, d.updated_at, d.delivered_at, d.failed_at";

/// A row of a page with the total the page was cut from, read in the same statement so the
/// two agree even while deliveries change state.
#[derive(sqlx::FromRow)]
struct Counted<T> {
    #[sqlx(flatten)]
    row: T,
    total: i64,
}

/// One recorded HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Filters of the delivery list; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub tenant_id: Option<Uuid>,
    pub endpoint_id: Option<Uuid>,
    pub flow_type: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
}

impl Store {
    /// The tenant's endpoints that could match `flow`/`entity` at any level (entity, flow, default).
    /// Records `event` and one pending delivery per endpoint, atomically. `false` when the event
    /// was already recorded: nothing changes.
    pub async fn record_webhook_event(
        &self,
        event: &NewWebhookEvent<'_>,
        routing: EventRouting,
        endpoints: &[Uuid],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let inserted = insert_webhook_event(&mut tx, event, routing, endpoints, now).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Every event recorded for `tenant` in the order recorded, as its body plus `entityId`
    /// (what a tenant's endpoints receive; for tests and investigations).
    pub async fn recorded_event_bodies(&self, tenant: Uuid) -> StoreResult<Vec<serde_json::Value>> {
        let rows: Vec<(String, String)> = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT entity_id, body FROM webhook_events WHERE tenant_id = $1 ORDER BY id")
                .bind(tenant.to_string())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter()
            .map(|(entity_id, body)| {
                let mut value: serde_json::Value =
                    serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("webhook event body: {e}")))?;
                value["entityId"] = serde_json::Value::String(entity_id);
                Ok(value)
            })
            .collect()
    }

    pub async fn webhook_event(&self, id: Uuid) -> StoreResult<Option<WebhookEvent>> {
        let row: Option<EventRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, flow_type, entity_type, entity_id, routing, occurred_at, created_at
                 FROM webhook_events WHERE id = $1",
            )
            .bind(id.to_string())
            .fetch_optional(pool)
            .await
        })?;
        row.map(WebhookEvent::try_from).transpose()
    }

    /// A page of recorded events, newest first, and the total count.
    pub async fn list_webhook_events(
        &self,
        tenant: Option<Uuid>,
        routing: Option<EventRouting>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<WebhookEvent>, i64)> {
        let filter = "($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR routing = $2)";
        let sql = format!(
            "SELECT id, tenant_id, flow_type, entity_type, entity_id, routing, occurred_at, created_at,
                    COUNT(*) OVER () AS total
             FROM webhook_events WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
        );
        let (tenant, routing) = (tenant.map(|t| t.to_string()), routing.map(EventRouting::as_str));
        let rows: Vec<Counted<EventRow>> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&tenant)
                .bind(routing)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
        })?;
        let total = match rows.first() {
            Some(first) => first.total,
            None if offset == 0 => 0,
            None => {
                let count = format!("SELECT COUNT(*) FROM webhook_events WHERE {filter}");
                on_pool!(self.db(), pool => {
                    sqlx::query_scalar(sqlx::AssertSqlSafe(count.as_str())).bind(&tenant).bind(routing).fetch_one(pool).await
                })?
            }
        };
        Ok((rows.into_iter().map(|r| WebhookEvent::try_from(r.row)).collect::<StoreResult<_>>()?, total))
    }

    /// Claims up to `limit` due deliveries for `worker` until `now + lease`, keeping each
    /// endpoint's deliveries in flight below `per_endpoint` (a single claim may overshoot; the
    /// caller enforces the exact limit) and one entity's deliveries to an endpoint in order.
    pub async fn claim_deliveries(
        &self,
        worker: &str,
        lease: Duration,
        limit: i64,
        per_endpoint: i64,
        per_tenant: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let locked_until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        // Each (endpoint, entity) queue's head is its oldest pending delivery. The heads and the
        // deliveries in flight per endpoint and tenant are computed once per claim, not once per
        // candidate row: with a backlog of thousands that was quadratic and ran past the
        // statement timeout, so nothing was delivered again (found by the kill -9 run).
        // PostgreSQL gets the heads as an array so the rows are found by primary key whatever
        // its statistics say; SQLite evaluates the uncorrelated `IN` once by itself.
        let heads = "SELECT MIN(o.id) FROM webhook_deliveries o WHERE o.status = 'pending'
                     GROUP BY o.endpoint_id, o.ordering_key";
        let (is_head, lock) = match self.backend() {
            Backend::Postgres => (format!("d.id = ANY(ARRAY({heads}))"), "FOR UPDATE OF d SKIP LOCKED"),
            Backend::Sqlite => (format!("d.id IN ({heads})"), ""),
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET locked_by = $1, locked_until = $2, updated_at = $3
             WHERE id IN (
                 WITH busy_endpoints AS MATERIALIZED (
                     SELECT endpoint_id, COUNT(*) AS n FROM webhook_deliveries
                     WHERE status = 'pending' AND locked_until >= $3 GROUP BY endpoint_id
                 ), busy_tenants AS MATERIALIZED (
                     SELECT tenant_id, COUNT(*) AS n FROM webhook_deliveries
                     WHERE status = 'pending' AND locked_until >= $3 GROUP BY tenant_id
                 )
                 SELECT d.id FROM webhook_deliveries d
                 LEFT JOIN busy_endpoints e ON e.endpoint_id = d.endpoint_id
                 LEFT JOIN busy_tenants t ON t.tenant_id = d.tenant_id
                 WHERE {is_head} AND d.status = 'pending' AND d.next_attempt_at <= $3
                   AND (d.locked_until IS NULL OR d.locked_until < $3)
                   AND COALESCE(e.n, 0) < $5 AND COALESCE(t.n, 0) < $6
                 ORDER BY d.next_attempt_at, d.id
                 LIMIT $4 {lock})
             RETURNING id"
        );
        let ids: Vec<i64> = on_pool!(self.db(), pool => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(worker)
                .bind(locked_until)
                .bind(now)
                .bind(limit)
                .bind(per_endpoint)
                .bind(per_tenant)
                .fetch_all(pool)
                .await
        })?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Integers only, so formatting them into the statement is safe.
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let sql = format!(
            "SELECT d.id, d.event_id, d.tenant_id, d.endpoint_id, e.flow_type, e.entity_type, d.attempts, e.body,
                    p.url, p.secret, p.enabled
             FROM webhook_deliveries d
             JOIN webhook_events e ON e.id = d.event_id
             LEFT JOIN webhook_endpoints p ON p.id = d.endpoint_id
             WHERE d.id IN ({list}) AND d.locked_by = $1
             ORDER BY d.next_attempt_at, d.id"
        );
        let rows: Vec<ClaimedRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(worker).fetch_all(pool).await
        })?;
        rows.into_iter()
            .map(|mut r| {
                if let Some(stored) = r.secret.take() {
                    let context = crate::webhook_endpoints::secret_context(&r.endpoint_id);
                    r.secret = Some(self.sealer().open_or_plain(&stored, &context).unwrap_or_else(|e| {
                        // Not base64 after `whsec_`: the engine abandons the delivery as unsignable.
                        tracing::error!(endpoint = %r.endpoint_id, error = %e, "webhook signing secret cannot be opened");
                        UNREADABLE_SECRET.to_owned()
                    }));
                }
                ClaimedDelivery::try_from(r)
            })
            .collect()
    }

    /// Gives a claim back without an attempt (the endpoint was already at its concurrency limit).
    pub async fn release_delivery(&self, id: i64, worker: &str) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query(
                "UPDATE webhook_deliveries SET locked_by = NULL, locked_until = NULL
                 WHERE id = $1 AND locked_by = $2 AND status = 'pending'",
            )
            .bind(id)
            .bind(worker)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Records one attempt and its effect: delivered, pending again at `retry_at`, or failed.
    /// Returns the new status, or `None` when the claim was lost (lease expired and re-claimed).
    pub async fn finish_delivery_attempt(
        &self,
        id: i64,
        worker: &str,
        outcome: &AttemptOutcome<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DeliveryStatus>> {
        let status = match (outcome.delivered, outcome.retry_at) {
            (true, _) => DeliveryStatus::Delivered,
            (false, Some(_)) => DeliveryStatus::Pending,
            (false, None) => DeliveryStatus::Failed,
        };
        let code = outcome.status_code.map(i32::from);
        let mut tx = self.begin().await?;
        let updated = on_tx!(&mut tx, conn => {
            sqlx::query(
                "UPDATE webhook_deliveries SET
                    status = $3, attempts = attempts + 1, next_attempt_at = $4,
                    last_status_code = $5, last_error = $6, locked_by = NULL, locked_until = NULL,
                    updated_at = $7,
                    delivered_at = CASE WHEN $3 = 'delivered' THEN $7 ELSE delivered_at END,
                    failed_at = CASE WHEN $3 = 'failed' THEN $7 ELSE failed_at END
                 WHERE id = $1 AND locked_by = $2 AND status = 'pending'",
            )
            .bind(id)
            .bind(worker)
            .bind(status.as_str())
            .bind(outcome.retry_at.unwrap_or(now))
            .bind(code)
            .bind(outcome.error)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
        if updated != 1 {
            return Ok(None);
        }
        let duration_ms = i64::try_from(outcome.duration.as_millis()).unwrap_or(i64::MAX);
        on_tx!(&mut tx, conn => {
            sqlx::query(
                "INSERT INTO webhook_delivery_attempts (delivery_id, attempted_at, status_code, error, duration_ms)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(now)
            .bind(code)
            .bind(outcome.error)
            .bind(duration_ms)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        Ok(Some(status))
    }

    /// Switches an endpoint off (the receiver answered 410 Gone).
    pub async fn disable_webhook_endpoint(&self, endpoint: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query("UPDATE webhook_endpoints SET enabled = FALSE, updated_at = $2 WHERE id = $1")
                .bind(endpoint.to_string())
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn delivery(&self, id: i64) -> StoreResult<Option<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
             WHERE d.id = $1"
        );
        let row: Option<DeliveryRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await
        })?;
        row.map(Delivery::try_from).transpose()
    }

    /// The attempts of a delivery, oldest first.
    pub async fn delivery_attempts(&self, id: i64) -> StoreResult<Vec<DeliveryAttempt>> {
        let rows = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT attempted_at, status_code, error, duration_ms FROM webhook_delivery_attempts
                 WHERE delivery_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// A page of deliveries matching `filter`, oldest first, and the total count.
    pub async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Delivery>, i64)> {
        let condition = "($1 IS NULL OR d.status = $1) AND ($2 IS NULL OR d.tenant_id = $2)
             AND ($3 IS NULL OR d.endpoint_id = $3) AND ($4 IS NULL OR e.flow_type = $4)
             AND ($5 IS NULL OR e.entity_type = $5) AND ($6 IS NULL OR e.entity_id = $6)";
        let from = "FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id";
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS}, COUNT(*) OVER () AS total {from} WHERE {condition}
             ORDER BY d.id LIMIT $7 OFFSET $8"
        );
        let status = filter.status.map(DeliveryStatus::as_str);
        let tenant = filter.tenant_id.map(|t| t.to_string());
        let endpoint = filter.endpoint_id.map(|e| e.to_string());
        let rows: Vec<Counted<DeliveryRow>> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(status)
                .bind(&tenant)
                .bind(&endpoint)
                .bind(&filter.flow_type)
                .bind(&filter.entity_type)
                .bind(&filter.entity_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
        })?;
        let total = match rows.first() {
            Some(first) => first.total,
            None if offset == 0 => 0,
            None => {
                let count = format!("SELECT COUNT(*) {from} WHERE {condition}");
                on_pool!(self.db(), pool => {
                    sqlx::query_scalar(sqlx::AssertSqlSafe(count.as_str()))
                        .bind(status)
                        .bind(&tenant)
                        .bind(&endpoint)
                        .bind(&filter.flow_type)
                        .bind(&filter.entity_type)
                        .bind(&filter.entity_id)
                        .fetch_one(pool)
                        .await
                })?
            }
        };
        Ok((rows.into_iter().map(|r| Delivery::try_from(r.row)).collect::<StoreResult<_>>()?, total))
    }

    /// Sends a delivery again now. A delivered or failed one starts a new round with a fresh
    /// attempt budget; a pending one is just made due now (its lease, if any, is kept).
    pub async fn redeliver(&self, id: i64, now: DateTime<Utc>) -> StoreResult<Delivery> {
        let done = on_pool!(self.db(), pool => {
            sqlx::query(
                "UPDATE webhook_deliveries SET
                    attempts = CASE WHEN status = 'pending' THEN attempts ELSE 0 END,
                    redeliveries = CASE WHEN status = 'pending' THEN redeliveries ELSE redeliveries + 1 END,
                    status = 'pending', next_attempt_at = $2, failed_at = NULL, updated_at = $2
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if done != 1 {
            return Err(StoreError::NotFound);
        }
        self.delivery(id).await?.ok_or(StoreError::NotFound)
    }

    /// Redelivers every failed delivery (optionally of one tenant and/or endpoint); returns how many.
    pub async fn redeliver_failed(
        &self,
        tenant: Option<Uuid>,
        endpoint: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let done = on_pool!(self.db(), pool => {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, redeliveries = redeliveries + 1,
                        next_attempt_at = $1, failed_at = NULL, updated_at = $1
                 WHERE status = 'failed' AND ($2 IS NULL OR tenant_id = $2) AND ($3 IS NULL OR endpoint_id = $3)",
            )
            .bind(now)
            .bind(tenant.map(|t| t.to_string()))
            .bind(endpoint.map(|e| e.to_string()))
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done)
    }
}

/// The tenant's endpoints that could receive an event of `flow` and `entity`, read in `tx`.
pub async fn route_candidates(tx: &mut Tx, tenant: Uuid, flow: &str, entity: &str) -> StoreResult<Vec<RouteCandidate>> {
    let rows: Vec<(String, Option<String>, Option<String>, bool)> = on_tx!(tx, conn => {
        sqlx::query_as(
            "SELECT id, flow_type, entity_type, enabled FROM webhook_endpoints
             WHERE tenant_id = $1 AND (flow_type IS NULL OR flow_type = $2)
               AND (entity_type IS NULL OR entity_type = $3)
             ORDER BY created_at, id",
        )
        .bind(tenant.to_string())
        .bind(flow)
        .bind(entity)
        .fetch_all(conn)
        .await
    })?;
    rows.into_iter()
        .map(|(id, flow_type, entity_type, enabled)| {
            Ok(RouteCandidate { id: parse_uuid(&id)?, flow_type, entity_type, enabled })
        })
        .collect()
}

/// Records `event` and one pending delivery per endpoint in `tx`. `false` when the event was
/// already recorded: nothing changes.
pub async fn insert_webhook_event(
    tx: &mut Tx,
    event: &NewWebhookEvent<'_>,
    routing: EventRouting,
    endpoints: &[Uuid],
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let inserted: Option<String> = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "INSERT INTO webhook_events
                (id, tenant_id, flow_type, entity_type, entity_id, body, routing, occurred_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO NOTHING
             RETURNING id",
        )
        .bind(event.id.to_string())
        .bind(event.tenant_id.to_string())
        .bind(event.flow_type)
        .bind(event.entity_type)
        .bind(event.entity_id)
        .bind(event.body)
        .bind(routing.as_str())
        .bind(event.occurred_at)
        .bind(now)
        .fetch_optional(conn)
        .await
    })?;
    if inserted.is_none() {
        return Ok(false);
    }
    insert_deliveries(tx, event, endpoints, now).await?;
    Ok(true)
}

/// Sets the routing of the recorded `event` and adds one pending delivery per endpoint, in `tx`.
pub async fn set_event_routing(
    tx: &mut Tx,
    event: &NewWebhookEvent<'_>,
    routing: EventRouting,
    endpoints: &[Uuid],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query("UPDATE webhook_events SET routing = $2 WHERE id = $1")
            .bind(event.id.to_string())
            .bind(routing.as_str())
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    insert_deliveries(tx, event, endpoints, now).await
}

async fn insert_deliveries(
    tx: &mut Tx,
    event: &NewWebhookEvent<'_>,
    endpoints: &[Uuid],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let ordering_key = format!("{}:{}:{}", event.flow_type, event.entity_type, event.entity_id);
    for endpoint in endpoints {
        on_tx!(tx, conn => {
            sqlx::query(
                "INSERT INTO webhook_deliveries
                    (event_id, tenant_id, endpoint_id, ordering_key, status, next_attempt_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $5, $5)",
            )
            .bind(event.id.to_string())
            .bind(event.tenant_id.to_string())
            .bind(endpoint.to_string())
            .bind(&ordering_key)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}
