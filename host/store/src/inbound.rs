//! Raw inbound events (BTG webhooks). An event is stored and its processing job enqueued in one
//! transaction before the sender gets its 2xx, so an accepted event is never lost; a redelivery
//! of a known event id only counts the delivery, so each event is processed once.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use crate::jobs::{NewJob, enqueue};
use crate::{Store, StoreError, StoreResult, Tx, on_pool, on_tx, parse_uuid};

/// The queue and job kind that process inbound events.
pub const INBOUND_QUEUE: &str = "inbound";
pub const PROCESS_INBOUND: &str = "process_inbound_event";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundStatus {
    Pending,
    Processed,
    /// No handler knows this event type: kept and reported, not dropped.
    Unhandled,
    Failed,
}

impl InboundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InboundStatus::Pending => "pending",
            InboundStatus::Processed => "processed",
            InboundStatus::Unhandled => "unhandled",
            InboundStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<InboundStatus> {
        Some(match s {
            "pending" => InboundStatus::Pending,
            "processed" => InboundStatus::Processed,
            "unhandled" => InboundStatus::Unhandled,
            "failed" => InboundStatus::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundEvent {
    pub id: i64,
    pub tenant_id: Uuid,
    pub source: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub status: InboundStatus,
    pub deliveries: i32,
    pub last_error: Option<String>,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    tenant_id: String,
    source: String,
    event_id: String,
    event_type: String,
    payload: Json<serde_json::Value>,
    status: String,
    deliveries: i32,
    last_error: Option<String>,
    received_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for InboundEvent {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<Self> {
        Ok(InboundEvent {
            id: r.id,
            tenant_id: parse_uuid(&r.tenant_id)?,
            source: r.source,
            event_id: r.event_id,
            event_type: r.event_type,
            payload: r.payload.0,
            status: InboundStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("inbound status {:?}", r.status)))?,
            deliveries: r.deliveries,
            last_error: r.last_error,
            received_at: r.received_at,
            processed_at: r.processed_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, source, event_id, event_type, payload, status, deliveries, \
     last_error, received_at, processed_at";

/// Whether a delivery brought a new event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New(i64),
    Duplicate(i64),
}

/// A raw event as received.
#[derive(Debug, Clone)]
pub struct NewInboundEvent<'a> {
    pub tenant_id: Uuid,
    pub source: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub payload: &'a serde_json::Value,
}

impl Store {
    pub async fn record_inbound_event(&self, event: &NewInboundEvent<'_>, now: DateTime<Utc>) -> StoreResult<Recorded> {
        let mut tx = self.begin().await?;
        let recorded = record_inbound_event(&mut tx, event, now).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    pub async fn inbound_event(&self, id: i64) -> StoreResult<Option<InboundEvent>> {
        let sql = format!("SELECT {COLUMNS} FROM inbound_events WHERE id = $1");
        let row: Option<Row> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await
        })?;
        row.map(InboundEvent::try_from).transpose()
    }

    /// Records how processing ended (`processed`, `unhandled` or `failed`).
    pub async fn finish_inbound_event(
        &self,
        id: i64,
        status: InboundStatus,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query("UPDATE inbound_events SET status = $2, last_error = $3, processed_at = $4 WHERE id = $1")
                .bind(id)
                .bind(status.as_str())
                .bind(error)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Newest first; optionally only one status (operators look for `unhandled` and `failed`).
    pub async fn list_inbound_events(
        &self,
        status: Option<InboundStatus>,
        limit: i64,
    ) -> StoreResult<Vec<InboundEvent>> {
        let sql =
            format!("SELECT {COLUMNS} FROM inbound_events WHERE ($1 IS NULL OR status = $1) ORDER BY id DESC LIMIT $2");
        let rows: Vec<Row> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(status.map(InboundStatus::as_str))
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(InboundEvent::try_from).collect()
    }
}

/// Records an event in the inbound queue within `tx` (a duplicate only counts a delivery), and
/// queues its processing: what the host writes to itself (intra-PSP deliveries) goes in the
/// transaction of the state that needs it.
pub async fn record_inbound_event(
    tx: &mut Tx,
    event: &NewInboundEvent<'_>,
    now: DateTime<Utc>,
) -> StoreResult<Recorded> {
    let tenant = event.tenant_id.to_string();
    let id: Option<i64> = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "INSERT INTO inbound_events (tenant_id, source, event_id, event_type, payload, status, received_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6)
             ON CONFLICT (tenant_id, source, event_id) DO NOTHING
             RETURNING id",
        )
        .bind(&tenant)
        .bind(event.source)
        .bind(event.event_id)
        .bind(event.event_type)
        .bind(Json(event.payload))
        .bind(now)
        .fetch_optional(conn)
        .await
    })?;
    let recorded = match id {
        Some(id) => {
            let job = NewJob::new(INBOUND_QUEUE, PROCESS_INBOUND, serde_json::json!({ "inboundEventId": id }))
                .with_tenant(event.tenant_id)
                .with_dedupe_key(format!("inbound:{id}"));
            enqueue(tx, &job, now).await?;
            Recorded::New(id)
        }
        None => {
            let id: i64 = on_tx!(tx, conn => {
                sqlx::query_scalar(
                    "UPDATE inbound_events SET deliveries = deliveries + 1
                     WHERE tenant_id = $1 AND source = $2 AND event_id = $3 RETURNING id",
                )
                .bind(&tenant)
                .bind(event.source)
                .bind(event.event_id)
                .fetch_one(conn)
                .await
            })?;
            Recorded::Duplicate(id)
        }
    };
    Ok(recorded)
}
